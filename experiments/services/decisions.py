"""The decide call (DESIGN.md §4).

On a warm cache a decision costs two SQL statements beside authentication: one read of
everything it needs about the learner in the context (preferences, skill profile, the
assignment to the context's active experiment, the strategy configs, and the versions that
validate this process's cached catalog and population model; `_learner_state`), and the
INSERT of the decision. Configs are created, an assignment stored and the active config
switched only when they change."""

import functools
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Field
from django.utils import timezone

from config.errors import ConflictError, PermissionDeniedError
from experiments import assignment as hashing
from experiments import bandits, contextual
from experiments.catalog import (
    CATALOG,
    POPULATION,
    ContextCatalog,
    ExperimentEntry,
    HoldoutEntry,
    StrategyEntry,
    VariantEntry,
    context_catalog,
    contextual_model,
    population_model,
)
from experiments.models import Assignment, CacheVersion, Decision, Experiment, StrategyConfig
from experiments.params import overlay
from experiments.services.configs import config_activate, configs_for_context
from experiments.targeting import targeting_matches
from personalization.models import Preferences, SkillProfile
from personalization.roles import LEARNER_REQUIRED, LEARNER_REQUIRED_MESSAGE, is_learner

Source = Decision.Source


@dataclass(frozen=True)
class DecisionResult:
    """The stored decision with the catalog entries it names, so the answer needs no query."""

    decision: Decision
    strategy: StrategyEntry
    variant: VariantEntry | None


@dataclass(frozen=True)
class Choice:
    strategy: StrategyEntry
    source: str
    propensity: float
    experiment: ExperimentEntry | None = None
    variant: VariantEntry | None = None
    params: dict[str, Any] | None = None  # a rollout's overrides (the shipped variant's)


@dataclass(frozen=True, slots=True)
class LearnerPreferences:
    """The Preferences fields the decide call reads (the model's defaults when none are
    stored)."""

    personalization_level: str
    auto_adapt_enabled: bool
    mission_personalization_enabled: bool
    content_personalization_enabled: bool
    assessment_personalization_enabled: bool
    session_personalization_enabled: bool
    disabled_features: tuple[str, ...]
    learning_style: str
    preferred_language: str
    reading_length: str
    tone_preference: str


@dataclass(slots=True)
class ConfigState:
    """A StrategyConfig as the decide call reads it."""

    id: int
    strategy_id: int
    params: dict[str, Any]
    is_active: bool
    times_rewarded: int
    avg_reward: float


@dataclass(frozen=True, slots=True)
class LearnerState:
    preferences: LearnerPreferences
    # (experiment id, variant id, propensity) of the assignment to an ACTIVE experiment of
    # the context, if any (at most one: their namespace ranges are disjoint).
    assignment: tuple[int, int, float] | None
    configs: dict[int, ConfigState]  # by strategy id
    # The skill profile's ratings {skill: score} and weaknesses (empty: none stored).
    skill_ratings: dict[str, Any] = field(default_factory=dict)
    weaknesses: tuple[str, ...] = ()
    # The stored versions of the cached catalog and population model (None: not read).
    catalog_version: int | None = None
    population_version: int | None = None


PREFERENCE_FIELDS = tuple(LearnerPreferences.__dataclass_fields__)
_FLAGS = tuple(name for name in PREFERENCE_FIELDS if name.endswith("_enabled"))
CONFIG_FIELDS = tuple(ConfigState.__dataclass_fields__)
# What Decision rows are inserted with; columns left out (ids, database defaults) are the
# database's to fill.
DECISION_FIELDS = (
    "user",
    "context",
    "strategy",
    "config",
    "experiment",
    "variant",
    "source",
    "params",
    "propensity",
    "personalization_applied",
    "latency_ms",
    "created_at",
    "updated_at",
)

# The fields whose Python value each database needs adapted (JSON, aware datetimes).
ADAPTED = frozenset({"params", "created_at", "updated_at"})
STAMPS = frozenset({"created_at", "updated_at"})


def new_generator() -> np.random.Generator:
    """Fresh entropy for each decision; tests pass their own seeded generator."""
    return np.random.default_rng()


def consent_denied(preferences: Any, context: str) -> bool:
    """§4 step 1: level NONE, the context's switch off, or the context named in
    `disabled_features`."""
    return (
        preferences.personalization_level == "NONE"
        or not getattr(preferences, f"{context.lower()}_personalization_enabled")
        or context.lower() in {str(f).lower() for f in preferences.disabled_features or []}
    )


_statements: dict[str, tuple[str, str]] = {}


def _sql() -> tuple[str, str]:
    """The two statements of the warm path, written once per database vendor from the models'
    table and column names: the learner read and the decision INSERT."""
    statements = _statements.get(connection.vendor)
    if statements is None:
        statements = _statements[connection.vendor] = (_learner_sql(), _insert_sql())
    return statements


def decision_insert_sql() -> str:
    """The decision INSERT of the warm path, for this connection's database."""
    return _sql()[1]


def _field(model: Any, name: str) -> "Field[Any, Any]":
    return cast("Field[Any, Any]", model._meta.get_field(name))


def _quoted(model: Any, name: str) -> str:
    return connection.ops.quote_name(str(_field(model, name).column))


def _column(model: Any, alias: str, name: str) -> str:
    return f"{alias}.{_quoted(model, name)}"


def _table(model: Any, alias: str) -> str:
    return f"{connection.ops.quote_name(model._meta.db_table)} {alias}"


def _version_column(name: str) -> str:
    return (
        f"COALESCE((SELECT {_column(CacheVersion, 'v', 'version')}"  # noqa: S608 (model names)
        f" FROM {_table(CacheVersion, 'v')} WHERE {_column(CacheVersion, 'v', 'name')}"
        f" = '{name}'), 0)"
    )


def _configs_column(user_id: str) -> str:
    """The learner's configs in the context as one JSON array of [CONFIG_FIELDS…] arrays (NULL
    or [] when none): one row per learner, whatever the number of strategies."""
    table, columns = (
        _table(StrategyConfig, "c"),
        [_column(StrategyConfig, "c", name) for name in CONFIG_FIELDS],
    )
    if connection.vendor == "postgresql":
        aggregate = f"json_agg(json_build_array({', '.join(columns)}))"
    else:  # SQLite: params is JSON text, embedded as JSON; the mean as text of 17 digits
        # (json_array writes a REAL with 15)
        params = _column(StrategyConfig, "c", "params")
        mean = _column(StrategyConfig, "c", "avg_reward")
        listed = ", ".join(columns).replace(params, f"json({params})")
        listed = listed.replace(mean, f"printf('%%!.17g', {mean})")
        aggregate = f"json_group_array(json_array({listed}))"
    return (
        f"(SELECT {aggregate} FROM {table}"  # noqa: S608 (model names)
        f" WHERE {_column(StrategyConfig, 'c', 'user')} = {user_id}"
        f" AND {_column(StrategyConfig, 'c', 'context')} = %s)"
    )


def _learner_sql(user_source: str | None = None) -> str:
    """One row (none: no such user) of the catalog and population versions, the learner's
    preferences (NULL: none stored), skill profile (NULL: none), assignment to an ACTIVE
    experiment of the context (NULL: none) and configs in the context. Parameters:
    learner_read_params.

    With `user_source`, a query of one user row, the learner is that row instead of a user
    id, and the row starts with the source's columns (learner_read_sql)."""
    user_model = Preferences._meta.get_field("user").related_model
    user_id = _column(user_model, "u", "id")
    select = [
        _version_column(CATALOG),
        _version_column(POPULATION),
        _column(Preferences, "p", "id"),
        *(_column(Preferences, "p", name) for name in PREFERENCE_FIELDS),
        _column(SkillProfile, "s", "skill_ratings"),
        _column(SkillProfile, "s", "weaknesses"),
        _column(Assignment, "a", "experiment"),
        _column(Assignment, "a", "variant"),
        _column(Assignment, "a", "propensity"),
        _configs_column(user_id),
    ]
    if user_source is None:
        source, where = _table(user_model, "u"), f" WHERE {user_id} = %s"
    else:
        source, where = f"({user_source}) u", ""
        select.insert(0, "u.*")
    return (
        f"SELECT {', '.join(select)} FROM {source}"  # noqa: S608 (model names)
        f" LEFT JOIN {_table(Preferences, 'p')} ON {_column(Preferences, 'p', 'user')} = {user_id}"
        f" LEFT JOIN {_table(SkillProfile, 's')}"
        f" ON {_column(SkillProfile, 's', 'user')} = {user_id}"
        f" LEFT JOIN {_table(Assignment, 'a')} ON {_column(Assignment, 'a', 'user')} = {user_id}"
        f" AND {_column(Assignment, 'a', 'experiment')} IN (SELECT"
        f" {_column(Experiment, 'e', 'id')} FROM {_table(Experiment, 'e')}"
        f" WHERE {_column(Experiment, 'e', 'context')} = %s"
        f" AND {_column(Experiment, 'e', 'status')} = %s)"
        f"{where}"
    )


def learner_read_sql(user_source: str) -> str:
    """The learner read of the decide call joined to `user_source`, a query of one user row
    (the token's user: experiments/api/authentication.py), so that authentication and the
    read are one statement. Its row: the source's columns, then what learner_state_from_row
    reads."""
    return _learner_sql(user_source)


def learner_read_params(
    context: str, *, source_params: Sequence[Any] = (), user_id: Any = None
) -> list[Any]:
    """The parameters of the learner read, in the order of their placeholders: the
    configs' context, the source's (learner_read_sql), the assignment's context and status,
    and the user id (the read without a source)."""
    params = [context, *source_params, context, Experiment.Status.ACTIVE]
    return params if user_id is None else [*params, user_id]


@functools.cache
def _decision_fields() -> tuple[tuple[str, "Field[Any, Any]"], ...]:
    return tuple((name, _field(Decision, name)) for name in DECISION_FIELDS)


def _server_stamped() -> bool:
    """PostgreSQL stamps the decision itself (one `statement_timestamp()` for created_at and
    updated_at, returned with the id): two datetimes fewer to adapt and send."""
    return connection.vendor == "postgresql"


def _insert_sql() -> str:
    quote = connection.ops.quote_name
    columns = ", ".join(_quoted(Decision, name) for name in DECISION_FIELDS)
    values = [
        "statement_timestamp()" if _server_stamped() and name in STAMPS else "%s"
        for name in DECISION_FIELDS
    ]
    sql = (
        f"INSERT INTO {quote(Decision._meta.db_table)} ({columns}) "  # noqa: S608 (model names)
        f"VALUES ({', '.join(values)})"
    )
    if connection.features.can_return_columns_from_insert:
        sql += f" RETURNING {_quoted(Decision, 'id')}"
        if _server_stamped():
            sql += f", {_quoted(Decision, 'created_at')}"
    return sql


_default_preferences: LearnerPreferences | None = None


def _preferences_defaults() -> LearnerPreferences:
    global _default_preferences
    if _default_preferences is None:
        values = {name: _field(Preferences, name).get_default() for name in PREFERENCE_FIELDS}
        values["disabled_features"] = tuple(values["disabled_features"])
        _default_preferences = LearnerPreferences(**values)
    return _default_preferences


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value


def _learner_state(*, user: Any, context: str) -> LearnerState:
    """Preferences, assignment and configs of `user` in `context`, and the cache versions:
    one query."""
    with connection.cursor() as cursor:
        cursor.execute(_sql()[0], learner_read_params(context, user_id=user.pk))
        row = cursor.fetchone()
    return learner_state_from_row(row)


def learner_state_from_row(row: Sequence[Any] | None) -> LearnerState:
    """The LearnerState of the learner read's row (None: the user is gone)."""
    if row is None:
        return LearnerState(preferences=_preferences_defaults(), assignment=None, configs={})
    catalog_version, population_version, preferences_id = row[:3]
    count = len(PREFERENCE_FIELDS)
    if preferences_id is None:
        preferences = _preferences_defaults()
    else:
        values = dict(zip(PREFERENCE_FIELDS, row[3 : count + 3], strict=True))
        preferences = LearnerPreferences(
            **values
            | {name: bool(values[name]) for name in _FLAGS}
            | {"disabled_features": tuple(_json(values["disabled_features"]) or ())}
        )
    ratings, weaknesses, experiment_id, variant_id, propensity, stored = row[count + 3 :]
    configs: dict[int, ConfigState] = {}
    for config_id, strategy_id, params, active, rewarded, avg in _json(stored) or ():
        configs[strategy_id] = ConfigState(
            id=config_id,
            strategy_id=strategy_id,
            params=_json(params) or {},
            is_active=bool(active),
            times_rewarded=rewarded,
            avg_reward=float(avg),
        )
    return LearnerState(
        preferences=preferences,
        assignment=None if variant_id is None else (experiment_id, variant_id, propensity),
        configs=configs,
        skill_ratings=_json(ratings) or {},
        weaknesses=tuple(_json(weaknesses) or ()),
        catalog_version=catalog_version,
        population_version=population_version,
    )


def _configs_created(*, user: Any, catalog: ContextCatalog) -> dict[int, ConfigState]:
    """The first decision in a context (or a strategy added since): every config exists."""
    return {
        strategy_id: ConfigState(
            id=c.pk,
            strategy_id=c.strategy_id,
            params=c.params or {},
            is_active=c.is_active,
            times_rewarded=c.times_rewarded,
            avg_reward=c.avg_reward,
        )
        for strategy_id, c in configs_for_context(user=user, catalog=catalog).items()
    }


def decision_make(
    *,
    user: Any,
    context: str,
    rng: np.random.Generator | None = None,
    state: LearnerState | None = None,
    started: float | None = None,
) -> DecisionResult:
    """Choose the strategy for `user` in `context`, store the Decision and answer it.
    Only learners are decided for (staff and service accounts: 403 `learner_required`).
    `state`: the learner read, when the caller made it with another (the authentication of
    the decide route), and `started` its `time.perf_counter()` before it, so `latency_ms`
    counts it on either path; read here otherwise."""
    if state is None or started is None:
        started = time.perf_counter()
    if not is_learner(user):
        raise PermissionDeniedError(LEARNER_REQUIRED_MESSAGE, code=LEARNER_REQUIRED)
    # Drawn from only when a bandit assigns or explores: a fresh generator costs more than
    # the rest of a decision for an assigned learner.
    draw = new_generator if rng is None else lambda: rng
    if state is None:
        state = _learner_state(user=user, context=context)
    catalog = context_catalog(context, version=state.catalog_version)
    baseline = catalog.baseline
    if baseline is None:
        raise ConflictError(
            f"No active baseline strategy in {context}: activate the context's strategies "
            "in the admin (manage.py seed loads the catalog).",
            code="no_active_strategy",
        )
    preferences = state.preferences
    if consent_denied(preferences, context):
        return _record(
            user=user,
            catalog=catalog,
            choice=Choice(strategy=baseline, source=Source.DISABLED, propensity=1.0),
            config=None,
            started=started,
        )
    if any(in_holdout(h, user.pk) for h in catalog.holdouts):
        # §4 step 1b: a randomised control group for personalization as a whole.
        return _record(
            user=user,
            catalog=catalog,
            choice=Choice(strategy=baseline, source=Source.HOLDOUT, propensity=1.0),
            config=None,
            started=started,
        )

    configs = state.configs
    if any(s.id not in configs for s in catalog.strategies):
        configs = _configs_created(user=user, catalog=catalog)
    choice = (
        _experiment_choice(
            user=user,
            catalog=catalog,
            stored=state.assignment,
            preferences=preferences,
            draw=draw,
        )
        or _adaptive_choice(
            user=user,
            preferences=preferences,
            catalog=catalog,
            configs=configs,
            draw=draw,
            state=state,
        )
        or _fixed_choice(catalog=catalog, configs=configs)
    )
    config = configs[choice.strategy.id]
    # A rollout serves its strategy without making it the learner's own: deactivating the
    # rollout returns them to the baseline.
    if not config.is_active and choice.source != Source.ROLLOUT:
        config_activate(
            config=StrategyConfig(
                pk=config.id,
                user_id=user.pk,
                context=context,
                strategy_id=config.strategy_id,
            )
        )
        config.is_active = True
    return _record(
        user=user,
        catalog=catalog,
        choice=choice,
        config=config,
        started=started,
    )


def in_holdout(holdout: HoldoutEntry, user_id: int) -> bool:
    return hashing.bucket(holdout.salt, user_id) < holdout.percent / 100.0


def learner_facts(user: Any, preferences: LearnerPreferences) -> dict[str, Any]:
    """What targeting rules read about the learner (DESIGN.md §4.1)."""
    joined = getattr(user, "date_joined", None)
    return {
        "software_level": (user.software_background or {}).get("level"),
        "hardware_level": (user.hardware_background or {}).get("level"),
        "learning_style": preferences.learning_style,
        "preferred_language": preferences.preferred_language,
        "personalization_level": preferences.personalization_level,
        "profile_completed": bool(user.profile_completed),
        "days_since_joined": (timezone.now() - joined).days if joined else None,
        "attributes": user.attributes or {},
    }


def _experiment_choice(
    *,
    user: Any,
    catalog: ContextCatalog,
    stored: tuple[int, int, float] | None,
    preferences: LearnerPreferences,
    draw: Callable[[], np.random.Generator],
) -> Choice | None:
    """§4 step 2: an existing assignment to an ACTIVE experiment of the context (`stored`)
    wins; else the experiment whose namespace range holds the learner's namespace bucket is
    the candidate, and an eligible learner (targeting holds, within traffic) is assigned
    (sticky). Targeting is read only here, at assignment."""
    if stored is not None:
        experiment = catalog.experiment(stored[0])
        if experiment is None:  # stopped since the read: decide without it
            return None
        assigned: tuple[int, float] = (stored[1], stored[2])
    else:
        experiment = catalog.experiment_at(hashing.bucket(f"namespace:{catalog.context}", user.pk))
        if experiment is None or not experiment.variants:
            return None
        if experiment.targeting and not targeting_matches(
            experiment.targeting, learner_facts(user, preferences)
        ):
            return None
        if not hashing.is_eligible(experiment.salt, user.pk, experiment.traffic_percent):
            return None
        made = _assign(user=user, catalog=catalog, experiment=experiment, draw=draw)
        if made is None:
            return None
        assigned = made
    variant = experiment.variant(assigned[0])
    strategy = catalog.strategy(variant.strategy_id) if variant else None
    if variant is None or strategy is None:
        return None
    return Choice(
        strategy=strategy,
        source=Source.EXPERIMENT,
        propensity=assigned[1],
        experiment=experiment,
        variant=variant,
    )


def _assign(
    *,
    user: Any,
    catalog: ContextCatalog,
    experiment: ExperimentEntry,
    draw: Callable[[], np.random.Generator],
) -> tuple[int, float] | None:
    """Store the user's sticky assignment. None, and nothing stored, when the chosen variant
    cannot be served (its strategy is inactive): the user would be counted in a variant
    whose strategy they never received."""
    weights = hashing.normalized([v.weight for v in experiment.variants])
    if experiment.experiment_type == Experiment.Type.MULTI_ARMED_BANDIT:
        index = int(draw().choice(len(weights), p=weights))
    else:
        index = hashing.index_by_bucket(weights, hashing.variant_bucket(experiment.salt, user.pk))
    variant = experiment.variants[index]
    if catalog.strategy(variant.strategy_id) is None:
        return None
    try:
        with transaction.atomic():
            assignment, _created = Assignment.objects.get_or_create(
                experiment_id=experiment.id,
                user=user,
                defaults={
                    "variant_id": variant.id,
                    "propensity": float(weights[index]),
                    "assigned_at": timezone.now(),
                },
            )
    except IntegrityError:  # a concurrent first decision stored it first: that one counts
        assignment = Assignment.objects.get(experiment_id=experiment.id, user=user)
    return assignment.variant_id, assignment.propensity


def _adaptive_choice(
    *,
    user: Any,
    preferences: Any,
    catalog: ContextCatalog,
    configs: dict[int, ConfigState],
    draw: Callable[[], np.random.Generator],
    state: LearnerState | None = None,
) -> Choice | None:
    """§4 step 3: the per-user epsilon-greedy bandit, shrunk toward the population, or with
    ADAPTIVE_POLICY = CONTEXTUAL_THOMPSON the contextual policy."""
    if not (preferences.auto_adapt_enabled and user.behavioral_analysis_enabled):
        return None
    level = preferences.personalization_level
    if settings.ADAPTIVE_POLICY == "CONTEXTUAL_THOMPSON":
        choice = _contextual_choice(
            user=user,
            preferences=preferences,
            catalog=catalog,
            configs=configs,
            draw=draw,
            state=state,
        )
        if choice is not None:
            return choice
    population = population_model(
        catalog.context, version=state.population_version if state else None
    )
    strategies = catalog.strategies
    n = np.array([[configs[s.id].times_rewarded for s in strategies]], dtype=float)
    own = np.array([[configs[s.id].avg_reward for s in strategies]], dtype=float)
    means = np.array([population.means.get(s.id, 0.0) for s in strategies])
    strength = bandits.arm_prior_strengths(
        population.prior.prior_strength,
        np.array([population.rewards.get(s.id, 0.0) for s in strategies]),
    )
    baseline = next(i for i, s in enumerate(strategies) if s.is_baseline)
    # §5.5: the posterior probability that each arm beats the baseline for this learner,
    # from the learner's own rewards and the population's, computed now (never stale).
    confidence = bandits.posterior_confidence(
        n,
        own,
        means,
        baseline,
        prior_strength=strength,
        within_variance=population.prior.within_variance,
    )[0]
    arms = [
        bandits.UserArm(
            key=strategy.key,
            n_user=int(n[0, i]),
            mean_user=float(own[0, i]),
            mean_population=float(means[i]),
            confidence=float(confidence[i]) if np.isfinite(confidence[i]) else 0.0,
            is_baseline=strategy.is_baseline,
        )
        for i, strategy in enumerate(strategies)
    ]
    index, propensity = bandits.epsilon_greedy_choose(
        arms,
        epsilon=bandits.EPSILON_BY_LEVEL[level],
        threshold=bandits.CONFIDENCE_THRESHOLD_BY_LEVEL[level],
        prior_strength=strength,
        rng=draw(),
    )
    return Choice(strategy=catalog.strategies[index], source=Source.BANDIT, propensity=propensity)


def _contextual_choice(
    *,
    user: Any,
    preferences: LearnerPreferences,
    catalog: ContextCatalog,
    configs: dict[int, ConfigState],
    draw: Callable[[], np.random.Generator],
    state: LearnerState | None,
) -> Choice | None:
    """Linear Thompson sampling over the learner's features (experiments/contextual.py),
    with the level's ε of uniform exploration; the strategy is drawn from the policy's
    probabilities, so the logged propensity is exactly the one it was drawn with. None (the
    epsilon-greedy rule decides) while the cached model predates a change of the strategies."""
    strategies = catalog.strategies
    model = contextual_model(catalog.context, version=state.population_version if state else None)
    if model.keys != tuple(s.id for s in strategies):
        return None
    facts = {
        "personalization_level": preferences.personalization_level,
        "learning_style": preferences.learning_style
        if user.learning_style_profiling_enabled
        else None,
        "reading_length": preferences.reading_length,
        "tone_preference": preferences.tone_preference,
        "software_level": (user.software_background or {}).get("level"),
        "hardware_level": (user.hardware_background or {}).get("level"),
        "skill_ratings": state.skill_ratings if state else None,
        "weaknesses": list(state.weaknesses) if state else None,
        "attributes": user.attributes or {},
    }
    index, propensity, _ = contextual.contextual_policy(
        model,
        contextual.learner_features(facts),
        np.array([configs[s.id].times_rewarded for s in strategies], dtype=float),
        np.array([configs[s.id].avg_reward for s in strategies], dtype=float),
        epsilon=bandits.EPSILON_BY_LEVEL[preferences.personalization_level],
        rng=draw(),
    )
    return Choice(strategy=strategies[index], source=Source.BANDIT, propensity=propensity)


def _fixed_choice(*, catalog: ContextCatalog, configs: dict[int, ConfigState]) -> Choice:
    """§4 step 4: the learner's own active config (a strategy other than the baseline); with
    none, the context's active rollout; else the baseline."""
    active = next((c for c in configs.values() if c.is_active), None)
    strategy = catalog.strategy(active.strategy_id) if active else None
    if strategy is not None and not strategy.is_baseline:
        return Choice(strategy=strategy, source=Source.BASELINE, propensity=1.0)
    rollout = catalog.rollout
    shipped = catalog.strategy(rollout.strategy_id) if rollout else None
    if rollout is not None and shipped is not None:
        return Choice(
            strategy=shipped, source=Source.ROLLOUT, propensity=1.0, params=rollout.params
        )
    fallback = strategy or catalog.baseline
    if fallback is None:  # decision_make answers 409 before this
        raise ConflictError(f"No baseline strategy in {catalog.context}.")
    return Choice(strategy=fallback, source=Source.BASELINE, propensity=1.0)


def _record(
    *,
    user: Any,
    catalog: ContextCatalog,
    choice: Choice,
    config: ConfigState | None,
    started: float,
) -> DecisionResult:
    """INSERT the decision (its id from RETURNING, in the same round trip) and answer it as
    a saved Decision."""
    params = overlay(
        choice.strategy.default_params,
        choice.variant.params if choice.variant else choice.params,
        config.params if config else None,
    )
    now = timezone.now()
    decision = Decision(
        user=user,
        context=catalog.context,
        strategy_id=choice.strategy.id,
        config_id=config.id if config else None,
        experiment_id=choice.experiment.id if choice.experiment else None,
        variant_id=choice.variant.id if choice.variant else None,
        source=choice.source,
        params=params,
        propensity=choice.propensity,
        personalization_applied=not choice.strategy.is_baseline,
        latency_ms=(time.perf_counter() - started) * 1000.0,
        created_at=now,
        updated_at=now,
    )
    stamped = _server_stamped()
    values = [
        # Ids, text, numbers and booleans go to both databases as they are.
        field.get_db_prep_save(getattr(decision, field.attname), connection)
        if name in ADAPTED
        else getattr(decision, field.attname)
        for name, field in _decision_fields()
        if not (stamped and name in STAMPS)
    ]
    with connection.cursor() as cursor:
        cursor.execute(_sql()[1], values)
        if connection.features.can_return_columns_from_insert:
            returned = cursor.fetchone()
            decision.pk = returned[0]
            if stamped:
                decision.created_at = decision.updated_at = returned[1]
        else:
            decision.pk = cursor.lastrowid
    decision._state.adding = False
    decision._state.db = connection.alias
    return DecisionResult(decision=decision, strategy=choice.strategy, variant=choice.variant)
