"""`experiments/plan/` (DESIGN.md §5.3): the planner's inputs measured from the context when
they are not given, and the traffic that turns learners into days."""

import datetime
from typing import Any

import numpy as np
from django.db.models import Avg
from django.utils import timezone

from config.errors import DomainError
from experiments.models import Decision
from outcomes import planning
from outcomes.models import Outcome

LOOKBACK = datetime.timedelta(days=28)


def _learner_rewards(context: str, since: datetime.datetime) -> np.ndarray:
    """Each learner's mean reward in the context over the lookback."""
    means = (
        Outcome.objects.filter(context=context, occurred_at__gte=since)
        .values("user_id")
        .annotate(mean=Avg("reward"))
        .order_by()
        .values_list("mean", flat=True)
    )
    return np.array(list(means), dtype=float)


def daily_learners(context: str, *, now: datetime.datetime | None = None) -> float:
    """Distinct learners decided for in the context over the last 28 days, per day."""
    since = (now or timezone.now()) - LOOKBACK
    count = (
        Decision.objects.filter(context=context, created_at__gte=since)
        .values("user_id")
        .distinct()
        .count()
    )
    return count / LOOKBACK.days


def experiment_plan(
    *,
    context: str,
    mde: float,
    baseline_mean: float | None = None,
    sd: float | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
    variants: int = 2,
    analysis: str = "SEQUENTIAL",
    sequential_tuning: float = 5000.0,
    now: datetime.datetime | None = None,
) -> dict[str, Any]:
    now = now or timezone.now()
    measured = {"baseline_mean": baseline_mean is None, "sd": sd is None}
    if baseline_mean is None or sd is None:
        rewards = _learner_rewards(context, now - LOOKBACK)
        if rewards.size < 2:
            raise DomainError(
                f"{context} has outcomes from {rewards.size} learner(s) in the last 28 days: "
                "give baseline_mean and sd, or plan once learners have reported outcomes.",
                code="not_measurable",
                attr="baseline_mean" if baseline_mean is None else "sd",
            )
        baseline_mean = float(rewards.mean()) if baseline_mean is None else baseline_mean
        sd = float(rewards.std(ddof=1)) if sd is None else sd
    traffic = daily_learners(context, now=now)
    if traffic <= 0:
        raise DomainError(
            f"No learner was decided for in {context} in the last 28 days, so the days at "
            "current traffic cannot be estimated: plan once the context has traffic.",
            code="no_traffic",
            attr="context",
        )
    try:
        result = planning.plan(
            baseline_mean=baseline_mean,
            sd=sd,
            mde=mde,
            alpha=alpha,
            power=power,
            variants=variants,
            analysis=analysis,
            tuning=sequential_tuning,
            daily_learners=traffic,
        )
    except planning.PlanError as exc:
        raise DomainError(str(exc), code="cannot_plan", attr=exc.attr) from exc
    return {
        "context": context,
        "baseline_mean": baseline_mean,
        "sd": sd,
        "measured": measured,
        "mde": mde,
        "delta": result.delta,
        "alpha": alpha,
        "power": power,
        "variants": variants,
        "analysis": analysis,
        "sequential_tuning": sequential_tuning if analysis == "SEQUENTIAL" else None,
        "learners_per_variant": result.per_variant,
        "learners_per_variant_fixed_horizon": result.per_variant_fixed,
        "sequential_inflation": result.inflation if analysis == "SEQUENTIAL" else None,
        "total_learners": result.total,
        "daily_learners": traffic,
        "days": result.days,
        "formula": "n = 2(z_{1-α/(2(k-1))} + z_power)² σ² / δ², δ = baseline_mean × mde; "
        "SEQUENTIAL: the smallest n whose confidence sequence at 2n learners excludes 0 "
        "with probability power",
    }
