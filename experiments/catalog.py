"""Cached reads for the decide call (DESIGN.md §4 budget): each context's strategies and
its active experiment, and the population model (mean reward per strategy, the prior
strength and within-learner variance of §5.5). Held in the shared
cache (Redis in production) and dropped by every write that changes them, after commit."""

import math
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Count, F, FloatField, Q, Sum, Value
from django.db.models.functions import Cast

from experiments import bandits
from experiments.models import Context, Experiment, Strategy, StrategyConfig

CATALOG_KEY = "experiments:catalog:{context}"
POPULATION_KEY = "experiments:population:{context}"


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

    def variant(self, variant_id: int) -> VariantEntry | None:
        return next((v for v in self.variants if v.id == variant_id), None)


@dataclass(frozen=True)
class ContextCatalog:
    context: str
    strategies: tuple[StrategyEntry, ...]
    experiment: ExperimentEntry | None

    @property
    def baseline(self) -> StrategyEntry | None:
        return next((s for s in self.strategies if s.is_baseline), None)

    def strategy(self, strategy_id: int) -> StrategyEntry | None:
        return next((s for s in self.strategies if s.id == strategy_id), None)


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
    experiment = (
        Experiment.objects.filter(context=context, status=Experiment.Status.ACTIVE)
        .prefetch_related("variants")
        .first()
    )
    entry = None
    if experiment is not None:
        entry = ExperimentEntry(
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
        )
    return ContextCatalog(context=context, strategies=strategies, experiment=entry)


def context_catalog(context: str) -> ContextCatalog:
    key = CATALOG_KEY.format(context=context)
    catalog = cache.get(key)
    if catalog is None:
        catalog = _load_catalog(context)
        cache.set(key, catalog, settings.CATALOG_CACHE_SECONDS)
    return catalog


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


def population_model(context: str) -> PopulationModel:
    """Cached like the catalog, dropped when rewards are recomputed."""
    key = POPULATION_KEY.format(context=context)
    model = cache.get(key)
    if model is None:
        sums = _strategy_sums(context)
        model = PopulationModel(
            means={sid: arm.total / arm.rewards for sid, arm in sums.items() if arm.rewards},
            rewards={sid: arm.rewards for sid, arm in sums.items()},
            prior=bandits.population_prior_from_sums(
                list(sums.values()), fallback=settings.BANDIT_PRIOR_STRENGTH
            ),
        )
        cache.set(key, model, settings.POPULATION_CACHE_SECONDS)
    return model


def _drop(keys: list[str]) -> None:
    # Now, and again after commit: a request that reloads the catalog between the two would
    # otherwise cache what the transaction is about to replace.
    cache.delete_many(keys)
    transaction.on_commit(lambda: cache.delete_many(keys))


def catalog_invalidate() -> None:
    """Drop every context's cached strategies and active experiment."""
    _drop([CATALOG_KEY.format(context=c) for c in Context.values])


def population_invalidate() -> None:
    """Drop the cached population means (after rewards are recomputed)."""
    _drop([POPULATION_KEY.format(context=c) for c in Context.values])
