"""The decide call (DESIGN.md §4)."""

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.db import IntegrityError, transaction
from django.utils import timezone

from config.errors import ConflictError, PermissionDeniedError
from experiments import assignment as hashing
from experiments import bandits
from experiments.catalog import (
    ContextCatalog,
    ExperimentEntry,
    StrategyEntry,
    VariantEntry,
    context_catalog,
    population_model,
)
from experiments.models import Assignment, Decision, Experiment, StrategyConfig
from experiments.params import overlay
from experiments.services.configs import config_activate, configs_for_context
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


def decision_make(
    *, user: Any, context: str, rng: np.random.Generator | None = None
) -> DecisionResult:
    """Choose the strategy for `user` in `context`, store the Decision and answer it.
    Only learners are decided for (staff and service accounts: 403 `learner_required`)."""
    from personalization.selectors import preferences_get

    started = time.perf_counter()
    if not is_learner(user):
        raise PermissionDeniedError(LEARNER_REQUIRED_MESSAGE, code=LEARNER_REQUIRED)
    rng = rng or new_generator()
    catalog = context_catalog(context)
    baseline = catalog.baseline
    if baseline is None:
        raise ConflictError(
            f"No active baseline strategy in {context}: activate the context's strategies "
            "in the admin (manage.py seed loads the catalog).",
            code="no_active_strategy",
        )
    preferences = preferences_get(user=user)
    if consent_denied(preferences, context):
        return _record(
            user=user,
            catalog=catalog,
            choice=Choice(strategy=baseline, source=Source.DISABLED, propensity=1.0),
            config=None,
            started=started,
        )

    configs = configs_for_context(user=user, catalog=catalog)
    choice = (
        _experiment_choice(user=user, catalog=catalog, rng=rng)
        or _adaptive_choice(
            user=user, preferences=preferences, catalog=catalog, configs=configs, rng=rng
        )
        or _fixed_choice(catalog=catalog, configs=configs)
    )
    config = configs[choice.strategy.id]
    if not config.is_active:
        config_activate(config=config)
    return _record(
        user=user,
        catalog=catalog,
        choice=choice,
        config=config,
        started=started,
    )


def _experiment_choice(
    *, user: Any, catalog: ContextCatalog, rng: np.random.Generator
) -> Choice | None:
    """§4 step 2: an existing assignment wins; else eligible users are assigned (sticky)."""
    experiment = catalog.experiment
    if experiment is None or not experiment.variants:
        return None
    stored = (
        Assignment.objects.filter(experiment_id=experiment.id, user=user)
        .values_list("variant_id", "propensity")
        .first()
    )
    if stored is None:
        if not hashing.is_eligible(experiment.salt, user.pk, experiment.traffic_percent):
            return None
        stored = _assign(user=user, catalog=catalog, experiment=experiment, rng=rng)
        if stored is None:
            return None
    variant = experiment.variant(stored[0])
    strategy = catalog.strategy(variant.strategy_id) if variant else None
    if variant is None or strategy is None:
        return None
    return Choice(
        strategy=strategy,
        source=Source.EXPERIMENT,
        propensity=stored[1],
        experiment=experiment,
        variant=variant,
    )


def _assign(
    *,
    user: Any,
    catalog: ContextCatalog,
    experiment: ExperimentEntry,
    rng: np.random.Generator,
) -> tuple[int, float] | None:
    """Store the user's sticky assignment. None, and nothing stored, when the chosen variant
    cannot be served (its strategy is inactive): the user would be counted in a variant
    whose strategy they never received."""
    weights = hashing.normalized([v.weight for v in experiment.variants])
    if experiment.experiment_type == Experiment.Type.MULTI_ARMED_BANDIT:
        index = int(rng.choice(len(weights), p=weights))
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
    configs: dict[int, StrategyConfig],
    rng: np.random.Generator,
) -> Choice | None:
    """§4 step 3: the per-user epsilon-greedy bandit, shrunk toward the population."""
    if not (preferences.auto_adapt_enabled and user.behavioral_analysis_enabled):
        return None
    level = preferences.personalization_level
    population = population_model(catalog.context)
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
        rng=rng,
    )
    return Choice(strategy=catalog.strategies[index], source=Source.BANDIT, propensity=propensity)


def _fixed_choice(*, catalog: ContextCatalog, configs: dict[int, StrategyConfig]) -> Choice:
    """§4 step 4: the user's active config, or the baseline."""
    active = next((c for c in configs.values() if c.is_active), None)
    strategy = catalog.strategy(active.strategy_id) if active else None
    fallback = strategy or catalog.baseline
    if fallback is None:  # decision_make answers 409 before this
        raise ConflictError(f"No baseline strategy in {catalog.context}.")
    return Choice(strategy=fallback, source=Source.BASELINE, propensity=1.0)


def _record(
    *,
    user: Any,
    catalog: ContextCatalog,
    choice: Choice,
    config: StrategyConfig | None,
    started: float,
) -> DecisionResult:
    params = overlay(
        choice.strategy.default_params,
        choice.variant.params if choice.variant else None,
        config.params if config else None,
    )
    decision = Decision(
        user=user,
        context=catalog.context,
        strategy_id=choice.strategy.id,
        config=config,
        experiment_id=choice.experiment.id if choice.experiment else None,
        variant_id=choice.variant.id if choice.variant else None,
        source=choice.source,
        params=params,
        propensity=choice.propensity,
        personalization_applied=not choice.strategy.is_baseline,
        latency_ms=(time.perf_counter() - started) * 1000.0,
    )
    decision.save()
    return DecisionResult(decision=decision, strategy=choice.strategy, variant=choice.variant)
