"""Statistics of outcomes (DESIGN.md §5). Pure: numpy and scipy, no Django.

Every test works on sufficient statistics of a sample — n, Σx, Σx² and, where the values are
at hand, the centred sum of squares Σ(x − x̄)² — held in frozen dataclasses, so the database
can aggregate and this module only does arithmetic.

**Undefined is not certain** (§5.2). Every function answers NaN (None for the scalar
helpers that say so) where its statistic is undefined, never a p of 0 or 1 or a zero-width
interval that the data cannot support:

* an empty sample has mean NaN; a sample of one has a mean and no variance (NaN);
* a test whose standard error is zero or undefined (constant samples, a side of one) has
  t, p and interval NaN: the difference is still reported;
* Pearson r is defined from one value per side as long as the values are not all equal.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import stats as scipy_stats

REWARD_WEIGHTS = {
    "retention_score": 0.3,
    "performance_score": 0.3,
    "completion_rate": 0.2,
    "engagement_score": 0.2,
}
NAN = float("nan")
# Two means closer than this (relative) are equal: sums of identical values rounded in
# different orders differ in the last bits, and a "difference" of 1e-17 is no effect.
EQUAL_MEANS_RTOL = 1e-12


def reward(
    scores: Mapping[str, float | None], weights: Mapping[str, float] = REWARD_WEIGHTS
) -> float:
    """§5.1: the weighted mean of the scores present, weights renormalised over them:
    reward = Σ w_m·s_m / Σ w_m over the metrics m with a score. No score: ValueError."""
    present = {m: s for m, s in scores.items() if s is not None and m in weights}
    if not present:
        raise ValueError("a reward needs at least one score")
    total_weight = sum(weights[m] for m in present)
    return sum(weights[m] * s for m, s in present.items()) / total_weight


# Σx² − (Σx)²/n below this share of Σx² is rounding, not spread (constant samples).
CANCELLATION_RTOL = 1e-10


def _centred(values: np.ndarray) -> float:
    """Σ(x − x̄)², two-pass: exact for values far from zero (1e9 + [0, 1, 2] gives 2) and
    exactly 0 for a constant sample."""
    if values.size == 0 or np.ptp(values) == 0:
        return 0.0
    return float(((values - values.mean()) ** 2).sum())


def _from_sums(total: np.ndarray | float, total_sq: np.ndarray | float, n: np.ndarray | float):
    """Σ(x − x̄)² from Σx and Σx² alone: Σx² − (Σx)²/n, where a remainder below the
    rounding of Σx² counts as 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        raw = np.asarray(total_sq - np.asarray(total) ** 2 / n, dtype=float)
    return np.where(raw > CANCELLATION_RTOL * np.abs(total_sq), raw, 0.0)


@dataclass(frozen=True)
class Sample:
    """Sufficient statistics of one sample: n, Σx, Σx² and optionally the centred sum of
    squares Σ(x − x̄)², which makes the variance exact where Σx² − n·x̄² cancels.

    Empty: mean and variance NaN. One value: mean defined, variance NaN. Constant: variance
    0 (exactly, when built from values or moments)."""

    n: int
    total: float
    total_sq: float
    centred_sq: float | None = None

    def __post_init__(self) -> None:
        if self.n < 0:
            raise ValueError("n must be non-negative")

    @classmethod
    def of(cls, values: Sequence[float] | np.ndarray) -> "Sample":
        array = np.asarray(values, dtype=float)
        return cls(
            n=int(array.size),
            total=float(array.sum()),
            total_sq=float((array**2).sum()),
            centred_sq=_centred(array),
        )

    @classmethod
    def from_moments(cls, n: int, mean: float, variance: float | None) -> "Sample":
        """From n, x̄ and s² as a database computes them stably (`avg`, `var_samp`);
        a variance of None (n < 2) counts as 0 spread."""
        spread = 0.0 if variance is None or not np.isfinite(variance) else variance
        centred = spread * max(n - 1, 0)
        return cls(
            n=n,
            total=mean * n if n else 0.0,
            total_sq=centred + (mean**2 * n if n else 0.0),
            centred_sq=centred,
        )

    @property
    def mean(self) -> float:
        """x̄ = Σx / n; NaN when empty."""
        return self.total / self.n if self.n else NAN

    @property
    def variance(self) -> float:
        """s² = Σ(x − x̄)² / (n − 1), from the centred sum when known, else
        (Σx² − (Σx)²/n) / (n − 1) clipped at 0; NaN below two values."""
        if self.n < 2:
            return NAN
        if self.centred_sq is not None:
            return max(self.centred_sq, 0.0) / (self.n - 1)
        return float(_from_sums(self.total, self.total_sq, self.n)) / (self.n - 1)


@dataclass(frozen=True)
class Samples:
    """Sufficient statistics of many samples at once (arrays of equal length), for the
    effectiveness windows where every group is tested in one vectorised pass. Each row
    follows `Sample`'s rules; `centred_sq` may hold NaN where a row has none."""

    n: np.ndarray
    total: np.ndarray
    total_sq: np.ndarray
    centred_sq: np.ndarray | None = field(default=None)

    @classmethod
    def of(cls, *samples: Sample) -> "Samples":
        return cls(
            n=np.array([s.n for s in samples], dtype=float),
            total=np.array([s.total for s in samples], dtype=float),
            total_sq=np.array([s.total_sq for s in samples], dtype=float),
            centred_sq=np.array(
                [NAN if s.centred_sq is None else s.centred_sq for s in samples], dtype=float
            ),
        )

    @classmethod
    def from_moments(cls, n: np.ndarray, mean: np.ndarray, variance: np.ndarray) -> "Samples":
        """Rows of n, x̄, s² (NaN variance for rows under two values)."""
        n = np.asarray(n, dtype=float)
        mean = np.where(n > 0, np.asarray(mean, dtype=float), 0.0)
        spread = np.nan_to_num(np.asarray(variance, dtype=float), nan=0.0)
        centred = spread * np.maximum(n - 1, 0)
        return cls(n=n, total=mean * n, total_sq=centred + mean**2 * n, centred_sq=centred)

    @property
    def mean(self) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.n > 0, self.total / np.where(self.n > 0, self.n, 1), np.nan)

    @property
    def spread(self) -> np.ndarray:
        """Σ(x − x̄)² per row (0 for rows of one value, NaN for empty rows)."""
        raw = _from_sums(self.total, self.total_sq, self.n)
        if self.centred_sq is not None:
            raw = np.where(np.isnan(self.centred_sq), raw, np.maximum(self.centred_sq, 0.0))
        return np.where(self.n > 0, np.where(self.n >= 2, raw, 0.0), np.nan)

    @property
    def variance(self) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.n >= 2, self.spread / (self.n - 1), np.nan)


def _same(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.isclose(a, b, rtol=EQUAL_MEANS_RTOL, atol=0.0)


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

    Δ is NaN when a side is empty. se, ν, t, p and the interval are NaN when a side has
    fewer than two values or se = 0 (both samples constant): undefined, not certain.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        a = treatment.variance / treatment.n
        b = control.variance / control.n
        se = np.sqrt(a + b)
        difference = treatment.mean - control.mean
        difference = np.where(_same(treatment.mean, control.mean), 0.0, difference)
        # A standard error below the rounding of the means is no spread at all.
        scale = np.fmax(np.abs(treatment.mean), np.abs(control.mean))
        defined = np.isfinite(se) & (se > EQUAL_MEANS_RTOL * np.nan_to_num(scale))
        df = (a + b) ** 2 / (a**2 / (treatment.n - 1) + b**2 / (control.n - 1))
        df = np.where(defined, df, np.nan)
        t = np.where(defined, difference / se, np.nan)
        p = np.where(defined, 2 * scipy_stats.t.sf(np.abs(t), df), np.nan)
        half = np.where(defined, scipy_stats.t.ppf(0.5 + confidence / 2, df) * se, np.nan)
    return {
        "difference": difference,
        "standard_error": np.where(defined | ~np.isfinite(se), se, 0.0),
        "degrees_of_freedom": df,
        "t": t,
        "p_value": p,
        "ci_lower": difference - half,
        "ci_upper": difference + half,
    }


def welch(treatment: Sample, control: Sample, *, confidence: float = 0.95) -> WelchResult:
    """Welch's t-test of one pair; see `welch_many` for the formulas and the NaNs."""
    result = welch_many(Samples.of(treatment), Samples.of(control), confidence=confidence)
    return WelchResult(**{name: float(values[0]) for name, values in result.items()})


@dataclass(frozen=True)
class LiftResult:
    lift: float
    standard_error: float
    p_value: float
    ci_lower: float
    ci_upper: float


def relative_variance(
    treatment_mean: float,
    treatment_variance_of_mean: float,
    control_mean: float,
    control_variance_of_mean: float,
) -> float:
    """Delta-method variance of L = μ_t/μ_c − 1 (§5.3), written without μ_c⁴ (which
    underflows for tiny means): Var(L) ≈ (v_t + v_c·(μ_t/μ_c)²) / μ_c², where v = s²/n is
    the variance of each mean. NaN for a zero control mean."""
    if control_mean == 0 or not np.isfinite(control_mean):
        return NAN
    ratio = treatment_mean / control_mean
    scale = abs(control_mean)
    # Divided before squaring: (√v/|μ_c|)² stays representable where μ_c² underflows.
    with np.errstate(invalid="ignore"):
        sd_t = np.sqrt(treatment_variance_of_mean) / scale
        sd_c = np.sqrt(control_variance_of_mean) * abs(ratio) / scale
    return float(sd_t**2 + sd_c**2)


def relative_lift(treatment: Sample, control: Sample, *, confidence: float = 0.95) -> LiftResult:
    """Relative lift L = x̄_t / x̄_c − 1 with the delta-method variance

        Var(L) ≈ s²_t/(x̄_c²·n_t) + s²_c·x̄_t²/(x̄_c⁴·n_c),

    the interval L ± q·se and the two-sided p of L/se, where q and p use Student's t with
    the Welch–Satterthwaite degrees of freedom of the two samples (which the published
    reference vector pins; with n in the thousands it differs from the normal in the
    fourth decimal). L is NaN for a zero or empty control; se, p and the interval are NaN
    where Welch's are (zero or undefined spread)."""
    welch_result = welch(treatment, control)
    mean_t, mean_c = treatment.mean, control.mean
    if not np.isfinite(mean_c) or mean_c == 0 or not np.isfinite(mean_t):
        return LiftResult(NAN, NAN, NAN, NAN, NAN)
    lift = 0.0 if welch_result.difference == 0 else mean_t / mean_c - 1
    variance = relative_variance(
        mean_t, treatment.variance / treatment.n, mean_c, control.variance / control.n
    )
    se = float(np.sqrt(variance)) if np.isfinite(variance) else NAN
    df = welch_result.degrees_of_freedom
    if not (np.isfinite(se) and se > 0 and np.isfinite(df)):
        return LiftResult(lift, NAN, NAN, NAN, NAN)
    quantile = float(scipy_stats.t.ppf(0.5 + confidence / 2, df))
    return LiftResult(
        lift=lift,
        standard_error=se,
        p_value=float(2 * scipy_stats.t.sf(abs(lift / se), df)),
        ci_lower=lift - quantile * se,
        ci_upper=lift + quantile * se,
    )


def chance_to_beat(treatment: Sample, control: Sample) -> float:
    """P(treatment beats control) ≈ Φ(Δ / se) with Welch's standard error; NaN where se is
    zero or undefined (two constant samples say nothing about which is better)."""
    result = welch(treatment, control)
    if not np.isfinite(result.standard_error) or result.standard_error == 0:
        return NAN
    return float(scipy_stats.norm.cdf(result.difference / result.standard_error))


@dataclass(frozen=True)
class CorrelationResult:
    r: float
    p_value: float


def point_biserial_many(personalized: Samples, baseline: Samples) -> dict[str, np.ndarray]:
    """Pearson r between the indicator (1 personalized, 0 baseline) and the value, for every
    pair at once, from the pooled two-sample t-test it equals:

        s²_p = (Σ(x₁ − x̄₁)² + Σ(x₀ − x̄₀)²) / (n₁ + n₀ − 2),
        t = (x̄₁ − x̄₀) / √(s²_p (1/n₁ + 1/n₀)),   r = t / √(t² + n₁ + n₀ − 2),

    p two-sided from Student's t with n₁ + n₀ − 2 degrees of freedom. Defined from one value
    per side as long as n₁ + n₀ ≥ 3 (scipy's `pearsonr` agrees). Zero pooled spread: r = ±1
    when the means differ (every value of one side above the other), NaN when they are
    equal; p NaN either way. An empty side: NaN.
    """
    n1, n0 = personalized.n, baseline.n
    df = n1 + n0 - 2
    with np.errstate(divide="ignore", invalid="ignore"):
        pooled = (personalized.spread + baseline.spread) / df
        difference = personalized.mean - baseline.mean
        equal = _same(personalized.mean, baseline.mean)
        difference = np.where(equal, 0.0, difference)
        usable = (n1 >= 1) & (n0 >= 1) & (df >= 1)
        spread = usable & (pooled > 0)
        t = difference / np.sqrt(pooled * (1 / n1 + 1 / n0))
        r = np.where(
            spread,
            t / np.sqrt(t**2 + df),
            np.where(usable & (pooled == 0) & ~equal, np.sign(difference), np.nan),
        )
        p = np.where(spread, 2 * scipy_stats.t.sf(np.abs(t), df), np.nan)
    return {"r": r, "p_value": p}


def point_biserial(personalized: Sample, baseline: Sample) -> CorrelationResult:
    """One pair; see `point_biserial_many` for the formulas and the NaNs."""
    result = point_biserial_many(Samples.of(personalized), Samples.of(baseline))
    return CorrelationResult(r=float(result["r"][0]), p_value=float(result["p_value"][0]))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment over the defined p-values (NaN stays NaN and does not
    count in m): sort ascending, p̃₍ᵢ₎ = max_{j≤i} min(1, (m − j + 1)·p₍ⱼ₎). Empty: []."""
    values = np.asarray(p_values, dtype=float)
    adjusted = np.full(values.size, np.nan)
    defined = np.flatnonzero(~np.isnan(values))
    m = defined.size
    if m:
        order = defined[np.argsort(values[defined], kind="stable")]
        scaled = np.minimum(1.0, (m - np.arange(m)) * values[order])
        adjusted[order] = np.maximum.accumulate(scaled)
    return adjusted.tolist()


def sample_ratio_p_value(counts: Sequence[int], weights: Sequence[float]) -> float:
    """Pearson χ² of observed assignment counts against the normalised weights over the arms
    with a positive weight, k − 1 degrees of freedom: χ² = Σ (O − E)² / E, E = N·w/Σw.
    NaN when nobody is assigned or fewer than two arms have weight; 0 when an arm of weight
    0 received users (certainly a mismatch)."""
    observed = np.asarray(counts, dtype=float)
    share = np.asarray(weights, dtype=float)
    positive = share > 0
    if observed.sum() == 0 or positive.sum() < 2:
        return NAN
    if observed[~positive].sum() > 0:
        return 0.0
    observed, share = observed[positive], share[positive]
    expected = observed.sum() * share / share.sum()
    return float(scipy_stats.chisquare(observed, expected).pvalue)


def improvement_many(mean_personalized: np.ndarray, mean_baseline: np.ndarray) -> np.ndarray:
    """(x̄_p − x̄_b) / x̄_b × 100 per pair; NaN when undefined (no data, zero baseline)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        value = (mean_personalized - mean_baseline) / mean_baseline * 100.0
    value = np.where(_same(mean_personalized, mean_baseline), 0.0, value)
    return np.where(np.isfinite(value) & np.isfinite(mean_baseline), value, np.nan)


def improvement(mean_personalized: float, mean_baseline: float) -> float | None:
    """One pair; None when undefined."""
    value = improvement_many(np.array([mean_personalized]), np.array([mean_baseline]))[0]
    return None if np.isnan(value) else float(value)


def composite_many(
    improvements: Mapping[str, np.ndarray], weights: Mapping[str, float] = REWARD_WEIGHTS
) -> np.ndarray:
    """clamp(50 + 50·Σ w_m·improvement_m/100, 0, 100) per row, the weights renormalised over
    the metrics with an improvement (not NaN); NaN where no metric has one. No metric at
    all: an empty array."""
    names = [m for m in improvements if m in weights]
    if not names:
        return np.empty(0)
    values = np.vstack([np.asarray(improvements[m], dtype=float) for m in names])
    w = np.array([weights[m] for m in names])[:, None] * ~np.isnan(values)
    with np.errstate(divide="ignore", invalid="ignore"):
        weighted = np.nansum(np.nan_to_num(values) * w, axis=0) / w.sum(axis=0)
    return np.where(w.sum(axis=0) > 0, np.clip(50.0 + 0.5 * weighted, 0.0, 100.0), np.nan)


def composite_score(
    improvements: Mapping[str, float | None], weights: Mapping[str, float] = REWARD_WEIGHTS
) -> float | None:
    """One row; see `composite_many`. None when no metric has an improvement (also for {})."""
    arrays = {
        m: np.array([np.nan if v is None else v], dtype=float) for m, v in improvements.items()
    }
    values = composite_many(arrays, weights)
    if values.size == 0 or np.isnan(values[0]):
        return None
    return float(values[0])


def confidence_many(difference: np.ndarray, standard_error: np.ndarray) -> np.ndarray:
    """Φ(difference / se), the confidence that a strategy beats the baseline; NaN where se
    is zero or undefined."""
    with np.errstate(divide="ignore", invalid="ignore"):
        z = difference / standard_error
    return np.where(np.isfinite(z) & (standard_error > 0), scipy_stats.norm.cdf(z), np.nan)


# --- CUPED (§5.3) ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PairedSample:
    """Sufficient statistics of (x, y) pairs: the metric y after assignment and the
    covariate x before it, for CUPED: n, Σy, Σy², Σx, Σx², Σxy."""

    n: int
    y_total: float
    y_total_sq: float
    x_total: float
    x_total_sq: float
    xy_total: float

    @classmethod
    def of(cls, y: Sequence[float] | np.ndarray, x: Sequence[float] | np.ndarray) -> "PairedSample":
        ys, xs = np.asarray(y, dtype=float), np.asarray(x, dtype=float)
        return cls(
            n=int(ys.size),
            y_total=float(ys.sum()),
            y_total_sq=float((ys**2).sum()),
            x_total=float(xs.sum()),
            x_total_sq=float((xs**2).sum()),
            xy_total=float((xs * ys).sum()),
        )

    @property
    def y(self) -> Sample:
        return Sample(self.n, self.y_total, self.y_total_sq)

    @property
    def x(self) -> Sample:
        return Sample(self.n, self.x_total, self.x_total_sq)

    @property
    def covariance(self) -> float:
        """(Σxy − Σx·Σy/n) / (n − 1); NaN below two pairs."""
        if self.n < 2:
            return NAN
        return (self.xy_total - self.x_total * self.y_total / self.n) / (self.n - 1)

    def __add__(self, other: "PairedSample") -> "PairedSample":
        return PairedSample(
            self.n + other.n,
            self.y_total + other.y_total,
            self.y_total_sq + other.y_total_sq,
            self.x_total + other.x_total,
            self.x_total_sq + other.x_total_sq,
            self.xy_total + other.xy_total,
        )


def cuped_theta(samples: Sequence[PairedSample]) -> float:
    """θ = cov(x, y) / var(x) over all arms pooled (§5.3); 0 when the pooled covariate or
    metric has no spread (no adjustment is possible, none is made)."""
    pooled = samples[0]
    for sample in samples[1:]:
        pooled = pooled + sample
    var_x, var_y = pooled.x.variance, pooled.y.variance
    if not (np.isfinite(var_x) and var_x > 0 and np.isfinite(var_y) and var_y > 0):
        return 0.0
    return pooled.covariance / var_x


@dataclass(frozen=True)
class AdjustedSample:
    """One arm after CUPED: the adjusted mean ȳ − θ·x̄, its variance
    s²_y + θ²·s²_x − 2θ·cov(x, y), the unadjusted mean ȳ (the lift's denominator) and n."""

    n: int
    mean: float
    variance: float
    unadjusted_mean: float
    unadjusted_variance: float


def cuped_adjust(sample: PairedSample, theta: float) -> AdjustedSample:
    """The arm's adjusted statistics (see `AdjustedSample`); variances NaN below two pairs."""
    y, x = sample.y, sample.x
    if sample.n < 2:
        variance = NAN
    else:
        variance = max(y.variance + theta**2 * x.variance - 2 * theta * sample.covariance, 0.0)
    return AdjustedSample(
        n=sample.n,
        mean=y.mean - theta * x.mean,
        variance=variance,
        unadjusted_mean=y.mean,
        unadjusted_variance=y.variance,
    )


@dataclass(frozen=True)
class EffectEstimate:
    """A treatment-vs-control effect: the estimate, the variance of the estimate and the
    Welch–Satterthwaite degrees of freedom (NaN where undefined)."""

    estimate: float
    variance: float
    degrees_of_freedom: float

    @property
    def standard_error(self) -> float:
        return float(np.sqrt(self.variance)) if np.isfinite(self.variance) else NAN

    @property
    def defined(self) -> bool:
        return bool(np.isfinite(self.estimate) and np.isfinite(self.variance) and self.variance > 0)


def _satterthwaite(var_mean_t: float, n_t: int, var_mean_c: float, n_c: int) -> float:
    if n_t < 2 or n_c < 2:
        return NAN
    denominator = var_mean_t**2 / (n_t - 1) + var_mean_c**2 / (n_c - 1)
    return (var_mean_t + var_mean_c) ** 2 / denominator if denominator > 0 else NAN


def effect(treatment: AdjustedSample, control: AdjustedSample, *, relative: bool) -> EffectEstimate:
    """Δ = m_t − m_c (absolute) or Δ / ȳ_c (relative, the unadjusted control mean as the
    denominator, §5.3) with its variance

        absolute: s²_t/n_t + s²_c/n_c;
        relative: s²_t/(ȳ_c²·n_t) + s²_c·ȳ_t²/(ȳ_c⁴·n_c)   (delta method, as gbstats 0.8.0).

    Without CUPED pass θ = 0 and this is Welch's. NaN where a side has fewer than two
    values, or the control mean is zero (relative)."""
    if treatment.n < 1 or control.n < 1:
        return EffectEstimate(NAN, NAN, NAN)
    var_mean_t = treatment.variance / treatment.n if treatment.n >= 2 else NAN
    var_mean_c = control.variance / control.n if control.n >= 2 else NAN
    df = _satterthwaite(var_mean_t, treatment.n, var_mean_c, control.n)
    difference = treatment.mean - control.mean
    if np.isclose(treatment.mean, control.mean, rtol=EQUAL_MEANS_RTOL, atol=0.0):
        difference = 0.0
    if not relative:
        return EffectEstimate(difference, var_mean_t + var_mean_c, df)
    denominator = control.unadjusted_mean
    if not np.isfinite(denominator) or denominator == 0:
        return EffectEstimate(NAN, NAN, df)
    variance = relative_variance(treatment.unadjusted_mean, var_mean_t, denominator, var_mean_c)
    return EffectEstimate(difference / denominator, variance, df)


def variance_reduction(samples: Sequence[PairedSample], theta: float) -> float:
    """1 − Var(adjusted) / Var(unadjusted) of the pooled metric, the share of variance
    CUPED removed (≥ 0 up to rounding); NaN where the metric has no spread."""
    pooled = samples[0]
    for sample in samples[1:]:
        pooled = pooled + sample
    adjusted = cuped_adjust(pooled, theta)
    if not (np.isfinite(adjusted.unadjusted_variance) and adjusted.unadjusted_variance > 0):
        return NAN
    return 1.0 - adjusted.variance / adjusted.unadjusted_variance


# --- Frequentist decisions (§5.3, fixed horizon and sequential) ------------------------------


@dataclass(frozen=True)
class TestResult:
    """An interval and a two-sided p-value for an effect; NaN where undefined."""

    estimate: float
    standard_error: float
    p_value: float
    ci_lower: float
    ci_upper: float


UNDEFINED = TestResult(NAN, NAN, NAN, NAN, NAN)


def fixed_horizon_many(
    estimate: np.ndarray, variance: np.ndarray, df: np.ndarray, *, alpha: float = 0.05
) -> dict[str, np.ndarray]:
    """The fixed-horizon Welch test for many estimates at once (e.g. every hourly look):
    Δ ± t_{ν,1−α/2}·se and p = 2·P(T_ν > |Δ/se|); NaN where se is zero or undefined."""
    with np.errstate(divide="ignore", invalid="ignore"):
        se = np.sqrt(variance)
        defined = np.isfinite(estimate) & np.isfinite(se) & (se > 0) & np.isfinite(df)
        half = np.where(defined, scipy_stats.t.ppf(1 - alpha / 2, df) * se, np.nan)
        p = np.where(defined, 2 * scipy_stats.t.sf(np.abs(estimate / se), df), np.nan)
    return {"p_value": p, "ci_lower": estimate - half, "ci_upper": estimate + half}


def fixed_horizon_test(estimate: EffectEstimate, *, alpha: float = 0.05) -> TestResult:
    """One estimate; see `fixed_horizon_many`."""
    result = fixed_horizon_many(
        np.array([estimate.estimate]),
        np.array([estimate.variance]),
        np.array([estimate.degrees_of_freedom]),
        alpha=alpha,
    )
    return TestResult(
        estimate=estimate.estimate,
        standard_error=estimate.standard_error,
        p_value=float(result["p_value"][0]),
        ci_lower=float(result["ci_lower"][0]),
        ci_upper=float(result["ci_upper"][0]),
    )


def sequential_many(
    estimate: np.ndarray,
    variance: np.ndarray,
    n_total: np.ndarray,
    *,
    alpha: float = 0.05,
    tuning: float = 5000.0,
) -> dict[str, np.ndarray]:
    """An always-valid test (§5.3) for many estimates at once: the asymptotic confidence
    sequence of Waudby-Smith et al. (2023, eq. 9, as gbstats' SequentialTwoSidedTTest
    computes it), valid at every look.

        ρ = √((−2 ln α + ln(−2 ln α + 1)) / N*),   N = n_t + n_c,   s² = Var(Δ)·N,
        half-width = s · √(2(Nρ² + 1) · ln(√(Nρ² + 1) / α) / (Nρ)²),
        p = min(1, 1/E),   E = exp(ρ²·z²N / (2(Nρ² + 1))) / √(Nρ² + 1),   z = Δ/se
        (E is the e-value of eq. 155, so p is valid at every look).

    N* (`tuning`) is the sample size at which the sequence is tightest. NaN where Var(Δ) is
    zero or undefined or N < 2."""
    n = np.asarray(n_total, dtype=float)
    rho2 = (-2 * np.log(alpha) + np.log(-2 * np.log(alpha) + 1)) / tuning
    with np.errstate(divide="ignore", invalid="ignore"):
        defined = np.isfinite(estimate) & np.isfinite(variance) & (variance > 0) & (n >= 2)
        scale = n * rho2 + 1
        half = np.sqrt(variance * n) * np.sqrt(
            2 * scale * np.log(np.sqrt(scale) / alpha) / (n**2 * rho2)
        )
        st2 = estimate**2 * n / variance
        log_e = rho2 * st2 / (2 * scale) - 0.5 * np.log(scale)
        p = np.minimum(1.0, np.exp(-log_e))
    half = np.where(defined, half, np.nan)
    return {
        "p_value": np.where(defined, p, np.nan),
        "ci_lower": estimate - half,
        "ci_upper": estimate + half,
    }


def sequential_test(
    estimate: EffectEstimate, n_total: int, *, alpha: float = 0.05, tuning: float = 5000.0
) -> TestResult:
    """One estimate; see `sequential_many`."""
    if tuning <= 0:
        return TestResult(estimate.estimate, estimate.standard_error, NAN, NAN, NAN)
    result = sequential_many(
        np.array([estimate.estimate]),
        np.array([estimate.variance]),
        np.array([n_total]),
        alpha=alpha,
        tuning=tuning,
    )
    return TestResult(
        estimate=estimate.estimate,
        standard_error=estimate.standard_error,
        p_value=float(result["p_value"][0]),
        ci_lower=float(result["ci_lower"][0]),
        ci_upper=float(result["ci_upper"][0]),
    )


# --- Bayesian engine (§5.3) -----------------------------------------------------------------


@dataclass(frozen=True)
class BayesianResult:
    """Posterior of the effect under a Gaussian model: mean, sd, the (1 − α) credible
    interval, the chance to win P(effect > 0) and the expected loss of each choice (risk
    of shipping the treatment, risk of keeping the control); NaN where undefined."""

    posterior_mean: float
    posterior_sd: float
    ci_lower: float
    ci_upper: float
    chance_to_win: float
    risk_treatment: float
    risk_control: float


def _truncated_normal_mean(mu: float, sigma: float, lower: float, upper: float) -> float:
    a, b = (lower - mu) / sigma, (upper - mu) / sigma
    return float(scipy_stats.truncnorm.mean(a, b, loc=mu, scale=sigma))


def bayesian_effect(
    estimate: EffectEstimate,
    *,
    alpha: float = 0.05,
    prior_mean: float = 0.0,
    prior_sd: float | None = None,
) -> BayesianResult:
    """Gaussian effect model: data Δ̂ ~ N(Δ, se²), prior Δ ~ N(μ₀, σ₀²) or flat (σ₀ None).

        precision = 1/se² + 1/σ₀²,   mean = (Δ̂/se² + μ₀/σ₀²) / precision (Δ̂ when flat),
        sd = √(1/precision),   interval = mean ± z_{1−α/2}·sd,   chance to win = Φ(mean/sd),
        risk(treatment) = −P(Δ < 0)·E[Δ | Δ < 0],   risk(control) = P(Δ > 0)·E[Δ | Δ > 0].

    Undefined (zero or unknown se): every figure NaN."""
    if not estimate.defined:
        return BayesianResult(NAN, NAN, NAN, NAN, NAN, NAN, NAN)
    precision = 1.0 / estimate.variance
    mean = estimate.estimate
    if prior_sd is not None and prior_sd > 0:
        prior_precision = 1.0 / prior_sd**2
        mean = (estimate.estimate * precision + prior_mean * prior_precision) / (
            precision + prior_precision
        )
        precision += prior_precision
    sd = float(np.sqrt(1.0 / precision))
    z = float(scipy_stats.norm.ppf(1 - alpha / 2))
    chance = float(scipy_stats.norm.sf(0.0, loc=mean, scale=sd))
    below = 1.0 - chance
    risk_treatment = -below * _truncated_normal_mean(mean, sd, -np.inf, 0.0) if below > 0 else 0.0
    risk_control = chance * _truncated_normal_mean(mean, sd, 0.0, np.inf) if chance > 0 else 0.0
    return BayesianResult(
        posterior_mean=float(mean),
        posterior_sd=sd,
        ci_lower=float(mean - z * sd),
        ci_upper=float(mean + z * sd),
        chance_to_win=chance,
        risk_treatment=float(risk_treatment),
        risk_control=float(risk_control),
    )


# --- Bandit experiments: inference under changing allocation (§5.3) ---------------------------


def stratified_effect(
    treatment: Sequence[Sample], control: Sequence[Sample], *, relative: bool
) -> EffectEstimate:
    """The treatment-vs-control effect combined over allocation periods, valid when a
    bandit changes its weights between periods: within a period every learner was assigned
    with the same probabilities, so the period's difference of means is unbiased even when
    rewards drift over time, while pooling learners across periods is not (an arm that got
    more traffic late would inherit the late rewards).

        Δ = Σ_k w_k·(x̄_t,k − x̄_c,k),   Var(Δ) = Σ_k w_k²·(s²_t,k/n_t,k + s²_c,k/n_c,k),
        w_k = n_k / Σ n_j over the periods where both arms have two or more learners
        (n_k = n_t,k + n_c,k), ν by Welch–Satterthwaite over the period variances.

    Relative: Δ / x̄_c with x̄_c the same period-weighted control mean, by the delta method
    (the control's variance share as in `relative_variance`). NaN with no usable period."""
    rows = [
        (t, c)
        for t, c in zip(treatment, control, strict=True)
        if t.n >= 2 and c.n >= 2 and np.isfinite(t.variance) and np.isfinite(c.variance)
    ]
    if not rows:
        return EffectEstimate(NAN, NAN, NAN)
    sizes = np.array([t.n + c.n for t, c in rows], dtype=float)
    w = sizes / sizes.sum()
    mean_t = np.array([t.mean for t, _ in rows])
    mean_c = np.array([c.mean for _, c in rows])
    var_mean_t = np.array([t.variance / t.n for t, _ in rows])
    var_mean_c = np.array([c.variance / c.n for _, c in rows])
    n_t = np.array([t.n for t, _ in rows], dtype=float)
    n_c = np.array([c.n for _, c in rows], dtype=float)
    pieces = np.concatenate([w**2 * var_mean_t, w**2 * var_mean_c])
    dof_parts = np.concatenate(
        [(w**2 * var_mean_t) ** 2 / (n_t - 1), (w**2 * var_mean_c) ** 2 / (n_c - 1)]
    )
    df = float(pieces.sum() ** 2 / dof_parts.sum()) if dof_parts.sum() > 0 else NAN
    treated, controlled = float(w @ mean_t), float(w @ mean_c)
    difference = treated - controlled
    if np.isclose(treated, controlled, rtol=EQUAL_MEANS_RTOL, atol=0.0):
        difference = 0.0
    variance_t, variance_c = float(w**2 @ var_mean_t), float(w**2 @ var_mean_c)
    if not relative:
        return EffectEstimate(difference, variance_t + variance_c, df)
    if controlled == 0:
        return EffectEstimate(NAN, NAN, df)
    return EffectEstimate(
        difference / controlled, relative_variance(treated, variance_t, controlled, variance_c), df
    )
