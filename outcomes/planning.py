"""Experiment planning (DESIGN.md §5.3): learners per variant and days at current traffic.
Pure: numpy and scipy, no Django.

Fixed horizon, two-sided, normal approximation, one treatment against the control:

    n per variant = 2·(z_{1−α'/2} + z_{power})²·σ² / δ²,   δ = baseline mean × relative MDE,

with α' = α / (variants − 1) when several treatments share the control (Bonferroni, the
bound Holm's adjustment never exceeds). Sequential (always-valid) analysis needs more
learners for the same power: the smallest n per variant at which the confidence sequence of
`stats.sequential_many` at N = 2n excludes 0 with probability `power` when the true effect
is δ, i.e. δ − half-width(N) ≥ z_{power}·se(n), se(n) = σ·√(2/n).
"""

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats

from outcomes import stats

MAX_LEARNERS = 10**9


class PlanError(ValueError):
    """The inputs cannot be planned; the message says why (the API answers 400)."""

    def __init__(self, message: str, *, attr: str):
        super().__init__(message)
        self.attr = attr


@dataclass(frozen=True)
class Plan:
    delta: float
    per_variant_fixed: int
    per_variant: int
    inflation: float
    total: int
    days: float | None


def fixed_horizon_per_variant(
    *, sd: float, delta: float, alpha: float, power: float, comparisons: int = 1
) -> int:
    """2·(z_{1−α'/2} + z_{power})²·σ²/δ² rounded up, α' = α / comparisons."""
    z_alpha = scipy_stats.norm.ppf(1 - alpha / comparisons / 2)
    z_power = scipy_stats.norm.ppf(power)
    return math.ceil(2 * (z_alpha + z_power) ** 2 * sd**2 / delta**2)


def _sequential_margin(n: np.ndarray, *, sd, delta, alpha, power, tuning) -> np.ndarray:
    """δ − half-width(2n) − z_{power}·se(n): ≥ 0 once n per variant is enough."""
    variance = 2 * sd**2 / n
    half = (
        stats.sequential_many(np.full(n.shape, delta), variance, 2 * n, alpha=alpha, tuning=tuning)[
            "ci_upper"
        ]
        - delta
    )
    return delta - half - scipy_stats.norm.ppf(power) * np.sqrt(variance)


def sequential_per_variant(
    *,
    sd: float,
    delta: float,
    alpha: float,
    power: float,
    tuning: float,
    comparisons: int = 1,
) -> int:
    """The smallest n per variant with enough power under the confidence sequence (found by
    doubling, then bisection on the integers)."""
    level = alpha / comparisons
    args = {"sd": sd, "delta": delta, "alpha": level, "power": power, "tuning": tuning}
    low, high = 1, 2
    while _sequential_margin(np.array([float(high)]), **args)[0] < 0:
        low, high = high, high * 2
        if high > MAX_LEARNERS:
            raise PlanError(
                "More than a billion learners per variant would be needed: raise the MDE.",
                attr="mde",
            )
    while high - low > 1:
        middle = (low + high) // 2
        if _sequential_margin(np.array([float(middle)]), **args)[0] >= 0:
            high = middle
        else:
            low = middle
    return high


def plan(
    *,
    baseline_mean: float,
    sd: float,
    mde: float,
    alpha: float = 0.05,
    power: float = 0.8,
    variants: int = 2,
    analysis: str = "SEQUENTIAL",
    tuning: float = 5000.0,
    daily_learners: float | None = None,
) -> Plan:
    """Learners per variant for a relative MDE, and the days at `daily_learners` new
    deciding learners a day (None: unknown)."""
    if not mde > 0:
        raise PlanError(
            "The minimum detectable effect must be above 0 (e.g. 0.05 for 5 %).", attr="mde"
        )
    if not sd > 0:
        raise PlanError("The standard deviation must be above 0.", attr="sd")
    if baseline_mean == 0:
        raise PlanError("A relative MDE needs a non-zero baseline mean.", attr="baseline_mean")
    if variants < 2:
        raise PlanError(
            "An experiment needs a control and at least one treatment.", attr="variants"
        )
    delta = abs(baseline_mean) * mde
    comparisons = variants - 1
    fixed = fixed_horizon_per_variant(
        sd=sd, delta=delta, alpha=alpha, power=power, comparisons=comparisons
    )
    per_variant = fixed
    if analysis == "SEQUENTIAL":
        per_variant = sequential_per_variant(
            sd=sd, delta=delta, alpha=alpha, power=power, tuning=tuning, comparisons=comparisons
        )
    total = per_variant * variants
    days = None if daily_learners is None else total / daily_learners
    return Plan(
        delta=delta,
        per_variant_fixed=fixed,
        per_variant=per_variant,
        inflation=per_variant / fixed,
        total=total,
        days=days,
    )
