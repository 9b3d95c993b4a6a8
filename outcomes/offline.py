"""Off-policy evaluation of a context's decision log (DESIGN.md §5.6), behind
`effectiveness/offline/` and the admin page.

The log of a window is summarised in SQL, one row per (learner, strategy, deterministic or
not): decisions n, Σ r, Σ r/p, Σ 1/p and Σ 1/p², with r a decision's reward — the mean reward
of its outcomes, or OPE_DEFAULT_REWARD for a decision without one (None: such decisions are
left out). Every target policy here gives a learner the same probabilities throughout the
window (π_u), so the row sums of outcomes/ope.py follow by one multiplication: Σ w·r = π·Σ r/p,
Σ w = π·Σ 1/p, Σ w² = π²·Σ 1/p². Intervals are clustered by learner.

Support: a decision logged with propensity 1 (consent withheld, a holdout, a rollout, a fixed
strategy, an experiment's assignment drawn without chance) says nothing about the strategies
the logging could not have chosen, so it is used only for a target that chooses its logged
strategy with certainty; a per-learner policy, which explores, uses only the decisions logged
with chance. Each estimate is of the value over the decisions it uses, as `decisions_used`
says.

Targets: each active strategy always on, and each personalization level's per-learner policy
(§4 step 3: ε-greedy on the learner's shrunk estimates with the level's confidence gate), with
every learner's figures and the population's as they stand now."""

import datetime
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.conf import settings
from django.db.models import Avg, Case, Count, F, FloatField, OuterRef, Subquery, Sum, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from experiments import bandits
from experiments.catalog import context_catalog, population_model
from experiments.models import Decision, StrategyConfig
from outcomes import ope
from outcomes.models import Outcome
from outcomes.windows import window_bounds, window_index

LEVELS = ("LOW", "MEDIUM", "HIGH")


@dataclass(frozen=True)
class GroupedLog:
    """The window's log by (learner, strategy, deterministic): arrays of one length."""

    strategies: list[Any]  # catalog StrategyEntry, in catalog order
    learner: np.ndarray
    action: np.ndarray  # index into strategies
    deterministic: np.ndarray
    decisions: np.ndarray
    reward_sum: np.ndarray
    inverse_reward_sum: np.ndarray  # Σ r/p
    inverse_sum: np.ndarray  # Σ 1/p
    inverse_sq_sum: np.ndarray  # Σ 1/p²


def window_of(start: datetime.date | None, *, now: datetime.datetime | None = None):
    """[start, end) of the window beginning on `start` (a date, at 00:00 UTC), else of the
    last complete effectiveness window."""
    days = settings.EFFECTIVENESS_WINDOW_DAYS
    if start is None:
        return window_bounds(window_index(now or timezone.now(), days) - 1, days)
    begin = datetime.datetime.combine(start, datetime.time(), tzinfo=datetime.UTC)
    return begin, begin + datetime.timedelta(days=days)


def grouped_log(*, context: str, start: datetime.datetime, end: datetime.datetime) -> GroupedLog:
    """One aggregate query over the window's decisions joined to their outcomes' mean
    reward; learners only (staff and service accounts are never decided for)."""
    strategies = list(context_catalog(context).strategies)
    index = {strategy.id: i for i, strategy in enumerate(strategies)}
    default = settings.OPE_DEFAULT_REWARD
    mean_reward = Subquery(
        Outcome.objects.filter(decision=OuterRef("pk"))
        .order_by()
        .values("decision")
        .annotate(mean=Avg("reward"))
        .values("mean"),
        output_field=FloatField(),
    )
    decisions = Decision.objects.filter(
        context=context, created_at__gte=start, created_at__lt=end, strategy_id__in=index
    ).annotate(r=mean_reward if default is None else Coalesce(mean_reward, Value(float(default))))
    if default is None:
        decisions = decisions.filter(r__isnull=False)
    rows = list(
        decisions.annotate(
            deterministic=Case(When(propensity__gte=1.0, then=Value(1)), default=Value(0))
        )
        .values("user_id", "strategy_id", "deterministic")
        .annotate(
            n=Count("id"),
            total=Sum("r"),
            inverse_total=Sum(F("r") / F("propensity"), output_field=FloatField()),
            inverse=Sum(Value(1.0) / F("propensity"), output_field=FloatField()),
            inverse_sq=Sum(
                Value(1.0) / (F("propensity") * F("propensity")), output_field=FloatField()
            ),
        )
        .order_by()
        .values_list(
            "user_id",
            "strategy_id",
            "deterministic",
            "n",
            "total",
            "inverse_total",
            "inverse",
            "inverse_sq",
        )
    )
    table = np.array(rows, dtype=float).reshape(-1, 8)
    return GroupedLog(
        strategies=strategies,
        learner=table[:, 0].astype(np.int64),
        action=np.array([index[int(s)] for s in table[:, 1]], dtype=np.int64),
        deterministic=table[:, 2] > 0,
        decisions=table[:, 3],
        reward_sum=table[:, 4],
        inverse_reward_sum=table[:, 5],
        inverse_sum=table[:, 6],
        inverse_sq_sum=table[:, 7],
    )


def evaluate_targets(log: GroupedLog, targets: np.ndarray) -> ope.PolicyValue:
    """The estimates for a target given per row of `log` as π_u over the strategies."""
    chosen = targets[np.arange(log.action.size), log.action]
    used = ~log.deterministic | (chosen >= 1.0)
    rows = ope.LogRows(
        actions=log.action[used],
        clusters=log.learner[used],
        decisions=log.decisions[used],
        reward_sum=log.reward_sum[used],
        weighted_reward_sum=(chosen * log.inverse_reward_sum)[used],
        weight_sum=(chosen * log.inverse_sum)[used],
        weight_sq_sum=(chosen**2 * log.inverse_sq_sum)[used],
        target_sum=(targets * log.decisions[:, None])[used],
    )
    return ope.policy_value_of_rows(rows)


def level_targets(*, context: str, log: GroupedLog, level: str) -> np.ndarray:
    """π_u of the level's per-learner policy for every row's learner, from the learners'
    stored figures and the population's now (the decide call's own computation, §5.5)."""
    strategies = log.strategies
    k = len(strategies)
    learners, row_learner = np.unique(log.learner, return_inverse=True)
    column = {strategy.id: i for i, strategy in enumerate(strategies)}
    n = np.zeros((learners.size, k))
    own = np.zeros((learners.size, k))
    position = {int(u): i for i, u in enumerate(learners)}
    figures = StrategyConfig.objects.filter(
        context=context, user_id__in=learners.tolist(), strategy_id__in=column
    ).values_list("user_id", "strategy_id", "times_rewarded", "avg_reward")
    for user_id, strategy_id, rewarded, average in figures.iterator(chunk_size=5000):
        n[position[user_id], column[strategy_id]] = rewarded
        own[position[user_id], column[strategy_id]] = average
    population = population_model(context)
    means = np.array([population.means.get(s.id, 0.0) for s in strategies])
    strength = bandits.arm_prior_strengths(
        population.prior.prior_strength,
        np.array([population.rewards.get(s.id, 0.0) for s in strategies]),
    )
    baseline = next(i for i, s in enumerate(strategies) if s.is_baseline)
    estimates = bandits.posterior_means(n, own, means, strength)
    confidence = bandits.posterior_confidence(
        n,
        own,
        means,
        baseline,
        prior_strength=strength,
        within_variance=population.prior.within_variance,
    )
    exploit = bandits.exploit_indices(
        estimates, confidence, baseline, bandits.CONFIDENCE_THRESHOLD_BY_LEVEL[level]
    )
    epsilon = bandits.EPSILON_BY_LEVEL[level]
    targets = np.full((learners.size, k), epsilon / k)
    targets[np.arange(learners.size), exploit] += 1.0 - epsilon
    return targets[row_learner]


def _number(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def _estimate(estimate: ope.Estimate) -> dict[str, Any]:
    return {
        "value": _number(estimate.value),
        "ci_lower": _number(estimate.ci_lower),
        "ci_upper": _number(estimate.ci_upper),
        "standard_error": _number(estimate.standard_error),
    }


def _policy(key: str, name: str, kind: str, value: ope.PolicyValue) -> dict[str, Any]:
    ess = value.ips.effective_sample_size
    reliable = value.ips.reliable
    return {
        "policy": key,
        "name": name,
        "kind": kind,
        "ips": _estimate(value.ips),
        "snips": _estimate(value.snips),
        "dr": _estimate(value.dr),
        "effective_sample_size": round(float(ess), 1),
        "decisions_used": value.ips.decisions,
        "reliable": reliable,
        "warning": None
        if reliable
        else f"Effective sample size {ess:,.0f} is under {ope.MIN_EFFECTIVE_SAMPLE}: "
        "too few decisions like this policy's to estimate its value.",
    }


def offline_evaluation(
    *, context: str, window_start: datetime.date | None = None
) -> dict[str, Any]:
    """The §5.6 report for a context and window: the logged policy's own mean reward, then
    IPS, SNIPS and DR of every target with 95% intervals and effective sample sizes."""
    start, end = window_of(window_start)
    log = grouped_log(context=context, start=start, end=end)
    k = len(log.strategies)
    rows = log.action.size
    logged = ope.policy_value_of_rows(
        ope.LogRows(
            actions=log.action,
            clusters=log.learner,
            decisions=log.decisions,
            reward_sum=log.reward_sum,
            weighted_reward_sum=log.reward_sum,
            weight_sum=log.decisions,
            weight_sq_sum=log.decisions,
            target_sum=np.zeros((rows, max(k, 1))),
        )
    )
    policies = []
    for index, strategy in enumerate(log.strategies):
        targets = np.zeros((rows, k))
        targets[:, index] = 1.0
        policies.append(
            _policy(
                f"always:{strategy.key}",
                f"{strategy.name} for everyone",
                "STRATEGY",
                evaluate_targets(log, targets),
            )
        )
    if rows and any(s.is_baseline for s in log.strategies):
        for level in LEVELS:
            policies.append(
                _policy(
                    f"level:{level}",
                    f"Per learner, level {level}",
                    "LEVEL",
                    evaluate_targets(log, level_targets(context=context, log=log, level=level)),
                )
            )
    default = settings.OPE_DEFAULT_REWARD
    return {
        "context": context,
        "window_start": start.date().isoformat(),
        "window_end": end.date().isoformat(),
        "decisions": int(log.decisions.sum()),
        "learners": int(np.unique(log.learner).size),
        "missing_outcome": "excluded" if default is None else f"counted as reward {default:g}",
        "interval": "95% normal interval, sandwich variance clustered by learner",
        "logged": {
            **_estimate(logged.ips),
            "decisions": int(log.decisions.sum()),
        },
        "policies": policies,
    }
