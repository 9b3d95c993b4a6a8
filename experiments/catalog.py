"""Cached reads for the decide call (DESIGN.md §4 budget): each context's strategies and
its active experiment, and the population model (mean reward per strategy, the prior
strength and within-learner variance of §5.5).

Each process keeps what it read in its own memory, valid while a version number held in the
database (experiments.CacheVersion) is unchanged. The decide call reads the versions in the
same statement as the learner (experiments/services/decisions.py), so a warm decision checks
its copies without a round trip of its own, and what it uses is never older than what that
statement saw committed; other callers read them with one small query. A process that misses
reads the shared copy stored in the cache (Redis in production) under the current version, so
one database load serves every process, else loads from the database. A change writes a new
random version in its own transaction, so the version and the change commit together (and a
rollback undoes both); with Redis unreachable every process still keeps and validates its own
copies."""

import math
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np
from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, F, FloatField, Q, Sum, Value
from django.db.models.functions import Cast

from experiments import bandits, contextual
from experiments.models import (
    CacheVersion,
    Experiment,
    Holdout,
    Rollout,
    Strategy,
    StrategyConfig,
)

CATALOG = "catalog"
POPULATION = "population"
CATALOG_KEY = "experiments:catalog:{version}:{context}"
POPULATION_KEY = "experiments:population:{version}:{context}"
CONTEXTUAL_KEY = "experiments:contextual:{version}:{context}"

T = TypeVar("T")


def stored_version(name: str) -> int:
    """The version of `name` as this transaction sees it; a random one is stored first where
    none is (a database flushed since its migration), so that no two databases sharing a
    cache file their copies under the same version."""
    found = CacheVersion.objects.filter(name=name).values_list("version", flat=True).first()
    if found:
        return int(found)
    created, _ = CacheVersion.objects.get_or_create(
        name=name, defaults={"version": secrets.randbits(62)}
    )
    return int(created.version)


def version_replace(name: str) -> None:
    """A new random version of `name`, written in the current transaction (one upsert): it
    becomes everyone's version when the change it versions commits, and never if that rolls
    back. Writers of the same name wait for each other from here to their commit."""
    CacheVersion.objects.bulk_create(
        [CacheVersion(name=name, version=secrets.randbits(62))],
        update_conflicts=True,
        unique_fields=["name"],
        update_fields=["version"],
    )


class VersionedCache(Generic[T]):
    """One value per context, held in this process while the stored version of `name` is the
    one it was read under and its lifetime (`seconds_setting`) has not run out. Several caches
    may share a name (and so their version)."""

    def __init__(
        self,
        *,
        name: str,
        data_key: str,
        seconds_setting: str,
        load: Callable[[str], T],
    ) -> None:
        self.name = name
        self.data_key = data_key
        self.seconds_setting = seconds_setting
        self.load = load
        self.local: dict[str, tuple[int, float, T]] = {}
        self.lock = threading.Lock()

    def get(self, context: str, *, version: int | None = None) -> T:
        """The context's value under `version` (read from the database when not given, or
        0: none stored)."""
        if not version:
            version = stored_version(self.name)
        entry = self.local.get(context)
        if entry is not None and entry[0] == version and time.time() < entry[1]:
            return entry[2]
        key = self.data_key.format(version=version, context=context)
        shared = cache.get(key)
        if shared is not None and time.time() < shared[0]:
            expires, value = shared
        else:
            seconds = getattr(settings, self.seconds_setting)
            expires, value = time.time() + seconds, self.load(context)
            cache.set(key, (expires, value), seconds)
        with self.lock:
            self.local[context] = (version, expires, value)
        return value

    def forget(self) -> None:
        """Drop this process's copies (their versions are no longer read)."""
        with self.lock:
            self.local.clear()


def _invalidate(name: str, *caches: VersionedCache[Any]) -> None:
    # The new version is written in the changing transaction, so it commits with the change:
    # other processes keep using the committed state's copies until then, and what this
    # transaction reads meanwhile is filed under a version nobody else can see before the
    # commit (nor ever, after a rollback).
    version_replace(name)
    for versioned in caches:
        versioned.forget()


@dataclass(frozen=True)
class StrategyEntry:
    id: int
    key: str
    name: str
    default_params: dict[str, Any]
    is_baseline: bool


@dataclass(frozen=True)
class VariantEntry:
    id: int
    key: str
    name: str
    strategy_id: int
    params: dict[str, Any]
    weight: float
    is_control: bool


@dataclass(frozen=True)
class ExperimentEntry:
    id: int
    name: str
    experiment_type: str
    salt: str
    traffic_percent: float
    variants: tuple[VariantEntry, ...]
    namespace_start: float = 0.0
    namespace_end: float = 1.0
    targeting: tuple[dict[str, Any], ...] = ()

    def variant(self, variant_id: int) -> VariantEntry | None:
        return next((v for v in self.variants if v.id == variant_id), None)


@dataclass(frozen=True)
class HoldoutEntry:
    id: int
    salt: str
    percent: float


@dataclass(frozen=True)
class RolloutEntry:
    id: int
    strategy_id: int
    params: dict[str, Any]


@dataclass(frozen=True)
class ContextCatalog:
    context: str
    strategies: tuple[StrategyEntry, ...]
    # The ACTIVE experiments, on disjoint namespace ranges, by range.
    experiments: tuple[ExperimentEntry, ...] = ()
    holdouts: tuple[HoldoutEntry, ...] = ()  # the active ones covering the context
    rollout: RolloutEntry | None = None

    @property
    def baseline(self) -> StrategyEntry | None:
        return next((s for s in self.strategies if s.is_baseline), None)

    def strategy(self, strategy_id: int) -> StrategyEntry | None:
        return next((s for s in self.strategies if s.id == strategy_id), None)

    def experiment(self, experiment_id: int) -> ExperimentEntry | None:
        return next((e for e in self.experiments if e.id == experiment_id), None)

    def experiment_at(self, position: float) -> ExperimentEntry | None:
        """The experiment whose namespace range [start, end) holds `position`."""
        return next(
            (e for e in self.experiments if e.namespace_start <= position < e.namespace_end),
            None,
        )


def _load_catalog(context: str) -> ContextCatalog:
    strategies = tuple(
        StrategyEntry(
            id=s.pk,
            key=s.key,
            name=s.name,
            default_params=s.default_params,
            is_baseline=s.is_baseline,
        )
        for s in Strategy.objects.filter(context=context, is_active=True).order_by("key")
    )
    experiments = tuple(
        ExperimentEntry(
            id=experiment.pk,
            name=experiment.name,
            experiment_type=experiment.experiment_type,
            salt=experiment.salt,
            traffic_percent=experiment.traffic_percent,
            variants=tuple(
                VariantEntry(
                    id=v.pk,
                    key=v.key,
                    name=v.name,
                    strategy_id=v.strategy_id,
                    params=v.params,
                    weight=v.weight,
                    is_control=v.is_control,
                )
                for v in sorted(experiment.variants.all(), key=lambda v: (v.pk,))
            ),
            namespace_start=experiment.namespace_start,
            namespace_end=experiment.namespace_end,
            targeting=tuple(experiment.targeting or ()),
        )
        for experiment in Experiment.objects.filter(
            context=context, status=Experiment.Status.ACTIVE
        )
        .prefetch_related("variants")
        .order_by("namespace_start", "pk")
    )
    holdouts = tuple(
        HoldoutEntry(id=h.pk, salt=h.salt, percent=h.percent)
        for h in Holdout.objects.filter(is_active=True).order_by("pk")
        if h.covers(context)
    )
    rollout = (
        Rollout.objects.filter(context=context, is_active=True, strategy__is_active=True)
        .order_by("-pk")
        .first()
    )
    return ContextCatalog(
        context=context,
        strategies=strategies,
        experiments=experiments,
        holdouts=holdouts,
        rollout=RolloutEntry(rollout.pk, rollout.strategy_id, rollout.params or {})
        if rollout
        else None,
    )


_catalogs: VersionedCache[ContextCatalog] = VersionedCache(
    name=CATALOG,
    data_key=CATALOG_KEY,
    seconds_setting="CATALOG_CACHE_SECONDS",
    load=_load_catalog,
)


def context_catalog(context: str, *, version: int | None = None) -> ContextCatalog:
    """The context's active strategies, experiments, holdouts and rollout: no query when warm
    and `version` (the stored catalog version) is given, one small query otherwise."""
    return _catalogs.get(context, version=version)


@dataclass(frozen=True)
class PopulationModel:
    """What every learner of a context says (§4 step 3, §5.5): per strategy the mean reward
    and the number of rewards, and the prior k and within-learner variance σ²_w."""

    means: dict[int, float]
    rewards: dict[int, float]
    prior: bandits.PopulationPrior


# How far a population model may move before every stored confidence of its context is
# recomputed: a tenth of the prior sd of a learner with no rewards of their own, which moves
# no confidence_score by more than about 0.04 (φ(0)·0.1·√2).
CONFIDENCE_DRIFT = 0.1
PRIOR_STRENGTH_DRIFT = 0.1  # relative


def population_drift(before: PopulationModel | None, after: PopulationModel) -> float:
    """The largest move of an arm's population mean from `before` to `after`, in prior sds
    √(σ²_w/k_a); infinite when there is no `before`, the rewarded arms or σ²_w are not
    comparable, or k moved by more than PRIOR_STRENGTH_DRIFT."""
    if before is None or set(before.means) != set(after.means):
        return math.inf
    within, strength = after.prior.within_variance, after.prior.prior_strength
    old_strength = before.prior.prior_strength
    if not (math.isfinite(within) and within > 0 and math.isfinite(before.prior.within_variance)):
        return 0.0 if before == after else math.inf
    if abs(strength - old_strength) > PRIOR_STRENGTH_DRIFT * old_strength:
        return math.inf
    if abs(within - before.prior.within_variance) > PRIOR_STRENGTH_DRIFT * within:
        return math.inf
    drift = 0.0
    for sid, mean in after.means.items():
        rewards = after.rewards.get(sid, 0.0)
        arm_strength = strength * rewards / (strength + rewards) if rewards else 0.0
        drift = max(drift, abs(mean - before.means[sid]) * math.sqrt(arm_strength / within))
    return drift


def _strategy_sums(context: str) -> dict[int, bandits.ArmSums]:
    """One aggregate query over the context's configs, per strategy (the ArmSums terms)."""
    rewarded = Q(times_rewarded__gt=0)
    several = Q(times_rewarded__gt=1)
    n = Cast(F("times_rewarded"), FloatField())
    rows = (
        StrategyConfig.objects.filter(rewarded, context=context)
        .values("strategy_id")
        .annotate(
            learners=Count("id"),
            sum_means=Sum(F("total_reward") / n),
            sum_means_sq=Sum(F("total_reward") * F("total_reward") / (n * n)),
            sum_inverse_n=Sum(Value(1.0) / n),
            several=Count("id", filter=several),
            dof=Sum(n - Value(1.0), filter=several),
            spread=Sum(
                F("total_reward_sq") - F("total_reward") * F("total_reward") / n, filter=several
            ),
            rewards=Sum(n),
            total=Sum("total_reward"),
            total_sq=Sum("total_reward_sq"),
        )
        .order_by()
    )
    fields = list(bandits.ArmSums.__dataclass_fields__)
    result: dict[int, bandits.ArmSums] = {}
    for row in rows:
        values: dict[str, Any] = dict(row)
        result[values["strategy_id"]] = bandits.ArmSums(
            **{f: float(values[f] or 0.0) for f in fields}
        )
    return result


def _load_population(context: str) -> PopulationModel:
    sums = _strategy_sums(context)
    return PopulationModel(
        means={sid: arm.total / arm.rewards for sid, arm in sums.items() if arm.rewards},
        rewards={sid: arm.rewards for sid, arm in sums.items()},
        prior=bandits.population_prior_from_sums(
            list(sums.values()), fallback=settings.BANDIT_PRIOR_STRENGTH
        ),
    )


_populations: VersionedCache[PopulationModel] = VersionedCache(
    name=POPULATION,
    data_key=POPULATION_KEY,
    seconds_setting="POPULATION_CACHE_SECONDS",
    load=_load_population,
)


def population_model(context: str, *, version: int | None = None) -> PopulationModel:
    """Cached like the catalog (under the stored population version), dropped when rewards
    are recomputed."""
    return _populations.get(context, version=version)


def _load_contextual(context: str) -> contextual.ContextualModel:
    """The contextual policy's model (experiments/contextual.py) fitted to every learner of
    the context with a reward: their figures per strategy and the facts their features come
    from. Four queries, in the cached path only (dropped with the population model)."""
    from personalization.models import Preferences, SkillProfile, User

    strategies = context_catalog(context).strategies
    column = {strategy.id: i for i, strategy in enumerate(strategies)}
    rewarded = StrategyConfig.objects.filter(
        context=context, times_rewarded__gt=0, strategy_id__in=list(column)
    )
    learners = rewarded.values("user_id")
    rows = list(rewarded.values_list("user_id", "strategy_id", "times_rewarded", "avg_reward"))
    position: dict[int, int] = {}
    for user_id, *_ in rows:
        position.setdefault(user_id, len(position))
    n = np.zeros((len(position), len(strategies)))
    means = np.zeros_like(n)
    for user_id, strategy_id, count, average in rows:
        n[position[user_id], column[strategy_id]] = count
        means[position[user_id], column[strategy_id]] = average
    facts: list[dict[str, Any]] = [{} for _ in position]
    for user_id, software, hardware, attributes, style_profiling in User.objects.filter(
        pk__in=learners
    ).values_list(
        "id",
        "software_background",
        "hardware_background",
        "attributes",
        "learning_style_profiling_enabled",
    ):
        facts[position[user_id]] |= {
            "software_level": (software or {}).get("level"),
            "hardware_level": (hardware or {}).get("level"),
            "attributes": attributes or {},
            "style_profiling": style_profiling,
        }
    for user_id, level, style, length, tone in Preferences.objects.filter(
        user_id__in=learners
    ).values_list(
        "user_id", "personalization_level", "learning_style", "reading_length", "tone_preference"
    ):
        facts[position[user_id]] |= {
            "personalization_level": level,
            "learning_style": style,
            "reading_length": length,
            "tone_preference": tone,
        }
    for user_id, ratings, weaknesses in SkillProfile.objects.filter(
        user_id__in=learners
    ).values_list("user_id", "skill_ratings", "weaknesses"):
        facts[position[user_id]] |= {"skill_ratings": ratings, "weaknesses": weaknesses}
    for fact in facts:
        fact.setdefault("personalization_level", "MEDIUM")
        fact.setdefault("learning_style", "MIXED")
        if not fact.pop("style_profiling", True):
            fact["learning_style"] = None
    features = np.array([contextual.learner_features(fact) for fact in facts], dtype=float).reshape(
        len(facts), contextual.FEATURES
    )
    population = population_model(context)
    return contextual.fit_model(
        features,
        n,
        means,
        np.array([population.means.get(s.id, 0.0) for s in strategies]),
        population.prior,
        keys=[s.id for s in strategies],
    )


_contextual: VersionedCache[contextual.ContextualModel] = VersionedCache(
    # The population's version: a reward recompute refreshes both.
    name=POPULATION,
    data_key=CONTEXTUAL_KEY,
    seconds_setting="POPULATION_CACHE_SECONDS",
    load=_load_contextual,
)


def contextual_model(context: str, *, version: int | None = None) -> contextual.ContextualModel:
    """The context's fitted contextual model, cached like the population means."""
    return _contextual.get(context, version=version)


def catalog_invalidate() -> None:
    """Drop every context's cached strategies and active experiment."""
    _invalidate(CATALOG, _catalogs)


def population_invalidate() -> None:
    """Drop the cached population means and contextual models (after rewards are
    recomputed)."""
    _invalidate(POPULATION, _populations, _contextual)


def local_copies_clear() -> None:
    """Forget every copy this process holds (tests: each starts from the database)."""
    for versioned in (_catalogs, _populations, _contextual):
        versioned.forget()
