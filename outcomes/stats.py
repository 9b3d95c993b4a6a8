"""Statistics of outcomes (DESIGN.md §5). Pure: numpy and scipy, no Django.

Every test works on sufficient statistics — n, Σx and Σx² of a sample — held in frozen
dataclasses, so the database can aggregate and this module only does arithmetic.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats

REWARD_WEIGHTS = {
    "retention_score": 0.3,
    "performance_score": 0.3,
    "completion_rate": 0.2,
    "engagement_score": 0.2,
}


def reward(
    scores: Mapping[str, float | None], weights: Mapping[str, float] = REWARD_WEIGHTS
) -> float:
    """§5.1: the weighted mean of the scores present, weights renormalised over them:
    reward = Σ w_m·s_m / Σ w_m over the metrics m with a score."""
    present = {m: s for m, s in scores.items() if s is not None and m in weights}
    if not present:
        raise ValueError("a reward needs at least one score")
    total_weight = sum(weights[m] for m in present)
    return sum(weights[m] * s for m, s in present.items()) / total_weight


@dataclass(frozen=True)
class Sample:
    """Sufficient statistics of one sample: n, Σx, Σx²."""

    n: int
    total: float
    total_sq: float

    def __post_init__(self) -> None:
        if self.n < 0:
            raise ValueError("n must be non-negative")

    @classmethod
    def of(cls, values: Sequence[float] | np.ndarray) -> "Sample":
        array = np.asarray(values, dtype=float)
        return cls(n=int(array.size), total=float(array.sum()), total_sq=float((array**2).sum()))

    @property
    def mean(self) -> float:
        """x̄ = Σx / n."""
        return self.total / self.n if self.n else float("nan")

    @property
    def variance(self) -> float:
        """s² = (Σx² − n·x̄²) / (n − 1), never below 0 (rounding)."""
        if self.n < 2:
            return float("nan")
        return max((self.total_sq - self.n * self.mean**2) / (self.n - 1), 0.0)


@dataclass(frozen=True)
class Samples:
    """Sufficient statistics of many samples at once (arrays of equal length), for the
    effectiveness windows where every group is tested in one vectorised pass."""

    n: np.ndarray
    total: np.ndarray
    total_sq: np.ndarray

    @classmethod
    def of(cls, *samples: Sample) -> "Samples":
        return cls(
            n=np.array([s.n for s in samples], dtype=float),
            total=np.array([s.total for s in samples], dtype=float),
            total_sq=np.array([s.total_sq for s in samples], dtype=float),
        )

    @property
    def mean(self) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.n > 0, self.total / np.where(self.n > 0, self.n, 1), np.nan)

    @property
    def variance(self) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            raw = (self.total_sq - self.n * self.mean**2) / (self.n - 1)
        return np.where(self.n >= 2, np.maximum(raw, 0.0), np.nan)


@dataclass(frozen=True)
class WelchResult:
    difference: float
    standard_error: float
    degrees_of_freedom: float
    t: float
    p_value: float
    ci_lower: float
    ci_upper: float


def welch_many(
    treatment: Samples, control: Samples, *, confidence: float = 0.95
) -> dict[str, np.ndarray]:
    """Welch's t-test of Δ = x̄_t − x̄_c for every pair of samples at once.

    se = √(s²_t/n_t + s²_c/n_c);
    ν = (s²_t/n_t + s²_c/n_c)² / ((s²_t/n_t)²/(n_t − 1) + (s²_c/n_c)²/(n_c − 1))
    (Welch–Satterthwaite); t = Δ/se; p = 2·P(T_ν > |t|); CI = Δ ± t_{ν,1−α/2}·se.
    Pairs with fewer than two values on a side give NaN; a zero standard error gives p = 1
    for no difference and 0 otherwise, and a zero-width interval.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        a = treatment.variance / treatment.n
        b = control.variance / control.n
        se = np.sqrt(a + b)
        difference = treatment.mean - control.mean
        df = (a + b) ** 2 / (a**2 / (treatment.n - 1) + b**2 / (control.n - 1))
        df = np.where(se > 0, df, treatment.n + control.n - 2)
        t = np.where(se > 0, difference / se, np.where(difference == 0, 0.0, np.inf))
        p = np.where(
            se > 0, 2 * scipy_stats.t.sf(np.abs(t), df), np.where(difference == 0, 1.0, 0.0)
        )
        quantile = scipy_stats.t.ppf(0.5 + confidence / 2, df)
        half = np.where(se > 0, quantile * se, 0.0)
    return {
        "difference": difference,
        "standard_error": se,
        "degrees_of_freedom": df,
        "t": t,
        "p_value": p,
        "ci_lower": difference - half,
        "ci_upper": difference + half,
    }


def welch(treatment: Sample, control: Sample, *, confidence: float = 0.95) -> WelchResult:
    """Welch's t-test of one pair; see `welch_many` for the formulas."""
    if treatment.n < 2 or control.n < 2:
        raise ValueError("each sample needs at least two values")
    result = welch_many(Samples.of(treatment), Samples.of(control), confidence=confidence)
    return WelchResult(**{name: float(values[0]) for name, values in result.items()})


@dataclass(frozen=True)
class LiftResult:
    lift: float
    standard_error: float
    p_value: float
    ci_lower: float
    ci_upper: float


def relative_lift(treatment: Sample, control: Sample, *, confidence: float = 0.95) -> LiftResult:
    """Relative lift L = x̄_t / x̄_c − 1 with the delta-method variance (§5.3)

        Var(L) ≈ s²_t/(x̄_c²·n_t) + s²_c·x̄_t²/(x̄_c⁴·n_c),

    the interval L ± q·se and the two-sided p of L/se, where q and p use Student's t with
    the Welch–Satterthwaite degrees of freedom of the two samples (which the published
    reference vector pins; with n in the thousands it differs from the normal in the
    fourth decimal).
    """
    if control.mean == 0:
        raise ValueError("relative lift is undefined for a zero control mean")
    mean_t, mean_c = treatment.mean, control.mean
    ratio = mean_t / mean_c
    lift = ratio - 1
    # The same variance written without μ_c⁴, which underflows for tiny means:
    # √(s²_t/n_t + s²_c·(μ_t/μ_c)²/n_c) / |μ_c|.
    se = float(
        np.sqrt(treatment.variance / treatment.n + control.variance * ratio**2 / control.n)
        / abs(mean_c)
    )
    df = welch(treatment, control).degrees_of_freedom
    if not np.isfinite(se) or not np.isfinite(lift):
        raise ValueError("relative lift is not finite for these samples")
    if se == 0:
        return LiftResult(lift, 0.0, 1.0 if lift == 0 else 0.0, lift, lift)
    quantile = float(scipy_stats.t.ppf(0.5 + confidence / 2, df))
    return LiftResult(
        lift=lift,
        standard_error=se,
        p_value=float(2 * scipy_stats.t.sf(abs(lift / se), df)),
        ci_lower=lift - quantile * se,
        ci_upper=lift + quantile * se,
    )


def chance_to_beat(treatment: Sample, control: Sample) -> float:
    """P(treatment beats control) ≈ Φ(Δ / se) with Welch's standard error."""
    result = welch(treatment, control)
    if result.standard_error == 0:
        return 0.5 if result.difference == 0 else float(result.difference > 0)
    return float(scipy_stats.norm.cdf(result.difference / result.standard_error))


@dataclass(frozen=True)
class CorrelationResult:
    r: float
    p_value: float


def point_biserial_many(personalized: Samples, baseline: Samples) -> dict[str, np.ndarray]:
    """Pearson r between the indicator (1 personalized, 0 baseline) and the value, for every
    pair at once, from the pooled two-sample t-test it equals:

        s²_p = ((n₁ − 1)s²₁ + (n₀ − 1)s²₀) / (n₁ + n₀ − 2),
        t = (x̄₁ − x̄₀) / √(s²_p (1/n₁ + 1/n₀)),   r = t / √(t² + n₁ + n₀ − 2),

    p two-sided from Student's t with n₁ + n₀ − 2 degrees of freedom.
    """
    n1, n0 = personalized.n, baseline.n
    df = n1 + n0 - 2
    with np.errstate(divide="ignore", invalid="ignore"):
        pooled = ((n1 - 1) * personalized.variance + (n0 - 1) * baseline.variance) / df
        difference = personalized.mean - baseline.mean
        t = difference / np.sqrt(pooled * (1 / n1 + 1 / n0))
        degenerate = pooled == 0
        r = np.where(degenerate, np.sign(difference), t / np.sqrt(t**2 + df))
        p = np.where(
            degenerate, np.where(difference == 0, 1.0, 0.0), 2 * scipy_stats.t.sf(np.abs(t), df)
        )
    return {"r": r, "p_value": p}


def point_biserial(personalized: Sample, baseline: Sample) -> CorrelationResult:
    """One pair; see `point_biserial_many` for the formulas."""
    if personalized.n < 2 or baseline.n < 2:
        raise ValueError("each sample needs at least two values")
    result = point_biserial_many(Samples.of(personalized), Samples.of(baseline))
    return CorrelationResult(r=float(result["r"][0]), p_value=float(result["p_value"][0]))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment: sort ascending, p̃₍ᵢ₎ = max_{j≤i} min(1, (m − j + 1)·p₍ⱼ₎)."""
    values = np.asarray(p_values, dtype=float)
    m = values.size
    if m == 0:
        return []
    order = np.argsort(values, kind="stable")
    scaled = np.minimum(1.0, (m - np.arange(m)) * values[order])
    adjusted = np.empty(m)
    adjusted[order] = np.maximum.accumulate(scaled)
    return adjusted.tolist()


def sample_ratio_p_value(counts: Sequence[int], weights: Sequence[float]) -> float:
    """Pearson χ² of observed assignment counts against the normalised weights, k − 1
    degrees of freedom: χ² = Σ (O − E)² / E with E = N·w/Σw."""
    observed = np.asarray(counts, dtype=float)
    expected_share = np.asarray(weights, dtype=float)
    expected = observed.sum() * expected_share / expected_share.sum()
    if observed.sum() == 0:
        return 1.0
    return float(scipy_stats.chisquare(observed, expected).pvalue)


def improvement_many(mean_personalized: np.ndarray, mean_baseline: np.ndarray) -> np.ndarray:
    """(x̄_p − x̄_b) / x̄_b × 100 per pair; NaN when undefined (no data, zero baseline)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        value = (mean_personalized - mean_baseline) / mean_baseline * 100.0
    return np.where(np.isfinite(value), value, np.nan)


def improvement(mean_personalized: float, mean_baseline: float) -> float | None:
    """One pair; None when undefined."""
    value = improvement_many(np.array([mean_personalized]), np.array([mean_baseline]))[0]
    return None if np.isnan(value) else float(value)


def composite_many(
    improvements: Mapping[str, np.ndarray], weights: Mapping[str, float] = REWARD_WEIGHTS
) -> np.ndarray:
    """clamp(50 + 50·Σ w_m·improvement_m/100, 0, 100) per row, the weights renormalised over
    the metrics with an improvement (not NaN); NaN where no metric has one."""
    names = [m for m in improvements if m in weights]
    values = np.vstack([improvements[m] for m in names])
    w = np.array([weights[m] for m in names])[:, None] * ~np.isnan(values)
    with np.errstate(divide="ignore", invalid="ignore"):
        weighted = np.nansum(np.nan_to_num(values) * w, axis=0) / w.sum(axis=0)
    return np.where(w.sum(axis=0) > 0, np.clip(50.0 + 0.5 * weighted, 0.0, 100.0), np.nan)


def composite_score(
    improvements: Mapping[str, float | None], weights: Mapping[str, float] = REWARD_WEIGHTS
) -> float | None:
    """One row; see `composite_many`. None when no metric has an improvement."""
    arrays = {
        m: np.array([np.nan if v is None else v], dtype=float) for m, v in improvements.items()
    }
    value = composite_many(arrays, weights)[0]
    return None if np.isnan(value) else float(value)


def confidence_many(difference: np.ndarray, standard_error: np.ndarray) -> np.ndarray:
    """Φ(difference / se), the confidence that a strategy beats the baseline (§5.2)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        z = difference / standard_error
    degenerate = np.where(difference == 0, 0.5, (difference > 0).astype(float))
    return np.where(standard_error > 0, scipy_stats.norm.cdf(z), degenerate)
