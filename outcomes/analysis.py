"""Experiment analysis (DESIGN.md §5.3) from per-learner arrays. Pure: numpy and scipy, no
Django. The evaluation service reads the arrays from the database; the A/A and peeking
simulations call `analyse` directly, so the decision rule they measure is the one the
service applies.

Per assigned learner: the arm, the value (mean primary metric at or after assignment; NaN
without outcomes), the pre-period covariate (mean primary metric over the 14 days before
assignment; NaN without history) and, for bandits, the allocation period of the assignment.

* CUPED: y* = y − (X − X̄)·θ with X = [x] (or [x, has history] when only some learners have a
  history, x = 0 for the others), θ the pooled least-squares slope; the lift's denominator is
  the unadjusted control mean; the pooled variance reduction and a pre-period balance check
  (Welch on x, a warning at p < 0.001) are reported.
* Bandits are compared within allocation periods and the periods combined
  (`stats.stratified_effect`), never by a plain Welch test over adaptively allocated users.
* FIXED: Welch's test; SEQUENTIAL: the always-valid confidence sequence; BAYESIAN: the
  Gaussian effect model on the relative lift. MULTIVARIATE and MULTI_ARMED_BANDIT p-values
  are Holm-adjusted.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from outcomes import stats

SRM_THRESHOLD = 0.001
BALANCE_THRESHOLD = 0.001
WINNER_CHANCE = 0.95
WINNER_RISK = 0.0025  # of the control mean (the relative scale)


@dataclass(frozen=True)
class Design:
    experiment_type: str = "AB_TEST"
    analysis: str = "SEQUENTIAL"
    engine: str = "FREQUENTIST"
    cuped: bool = True
    alpha: float = 0.05
    sequential_tuning: float = 5000.0
    prior_mean: float | None = None
    prior_sd: float | None = None

    @property
    def is_bandit(self) -> bool:
        return self.experiment_type == "MULTI_ARMED_BANDIT"

    @property
    def method(self) -> str:
        if self.engine == "BAYESIAN":
            prior = "flat prior" if self.prior_sd is None else "Gaussian prior on the lift"
            return f"Bayesian Gaussian effect model ({prior})"
        if self.analysis == "SEQUENTIAL":
            return f"always-valid confidence sequences (N* = {self.sequential_tuning:g})"
        return "fixed-horizon Welch t-test"


@dataclass(frozen=True)
class Arm:
    key: str
    name: str = ""
    is_control: bool = False
    weight: float = 1.0


@dataclass(frozen=True)
class Cuped:
    applied: bool
    theta: list[float]
    variance_reduction: float
    adjusted: np.ndarray  # y* (NaN where y is NaN)
    reason: str = ""


def _number(value: Any) -> float | None:
    return float(value) if value is not None and np.isfinite(value) else None


def cuped(values: np.ndarray, covariate: np.ndarray) -> Cuped:
    """Regression adjustment over the learners with outcomes, all arms pooled (§5.3)."""
    observed = ~np.isnan(values)
    y = values[observed]
    history = ~np.isnan(covariate[observed])
    if y.size < 3 or not history.any():
        return Cuped(False, [], float("nan"), values.copy(), "no learner has a pre-period")
    x = np.where(history, covariate[observed], 0.0)
    columns = [x] if history.all() else [x, history.astype(float)]
    design = np.column_stack(columns)
    centred = design - design.mean(axis=0)
    y_centred = y - y.mean()
    if not np.any(centred.std(axis=0) > 0) or not y_centred.any():
        return Cuped(False, [], float("nan"), values.copy(), "the pre-period has no spread")
    theta, *_ = np.linalg.lstsq(centred, y_centred, rcond=None)
    adjusted_observed = y - centred @ theta
    adjusted = np.full(values.shape, np.nan)
    adjusted[observed] = adjusted_observed
    before, after = np.var(y, ddof=1), np.var(adjusted_observed, ddof=1)
    reduction = 1.0 - after / before if before > 0 else float("nan")
    return Cuped(True, [float(t) for t in theta], float(reduction), adjusted)


def _arm_sample(adjusted: np.ndarray, raw: np.ndarray) -> stats.AdjustedSample:
    y, y_star = raw[~np.isnan(raw)], adjusted[~np.isnan(raw)]
    plain, star = stats.Sample.of(y), stats.Sample.of(y_star)
    return stats.AdjustedSample(
        n=plain.n,
        mean=star.mean,
        variance=star.variance,
        unadjusted_mean=plain.mean,
        unadjusted_variance=plain.variance,
    )


def _period_samples(values: np.ndarray, period: np.ndarray, periods: np.ndarray):
    return [stats.Sample.of(values[(period == k) & ~np.isnan(values)]) for k in periods]


def _test(design: Design, estimate: stats.EffectEstimate, n_total: int) -> stats.TestResult:
    if design.analysis == "SEQUENTIAL":
        return stats.sequential_test(
            estimate, n_total, alpha=design.alpha, tuning=design.sequential_tuning
        )
    return stats.fixed_horizon_test(estimate, alpha=design.alpha)


def analyse(
    design: Design,
    arms: Sequence[Arm],
    arm_of: np.ndarray,
    values: np.ndarray,
    covariate: np.ndarray | None = None,
    period: np.ndarray | None = None,
) -> dict[str, Any]:
    """The results of §5.3 for one experiment. `arm_of` indexes `arms`; arrays are aligned
    per assigned learner. Undefined figures are None."""
    arm_of = np.asarray(arm_of, dtype=np.int64)
    values = np.asarray(values, dtype=float)
    covariate = np.full(values.shape, np.nan) if covariate is None else np.asarray(covariate)
    warnings: list[str] = []

    adjustment = Cuped(False, [], float("nan"), values.copy(), "switched off")
    if design.cuped and design.is_bandit:
        adjustment = Cuped(
            False, [], float("nan"), values.copy(), "bandits are compared within periods"
        )
    elif design.cuped:
        adjustment = cuped(values, covariate)
    adjusted = adjustment.adjusted

    variants: list[dict[str, Any]] = []
    samples: list[stats.AdjustedSample] = []
    for index, arm in enumerate(arms):
        mine = arm_of == index
        raw = values[mine]
        sample = _arm_sample(adjusted[mine], raw)
        samples.append(sample)
        observed = raw[~np.isnan(raw)]
        variants.append(
            {
                "key": arm.key,
                "name": arm.name,
                "is_control": arm.is_control,
                "weight": arm.weight,
                "assigned": int(mine.sum()),
                "with_outcomes": int(observed.size),
                "mean": _number(sample.unadjusted_mean),
                "variance": _number(sample.unadjusted_variance),
                "adjusted_mean": _number(sample.mean) if adjustment.applied else None,
                "sum": float(observed.sum()),
                "sum_of_squares": float((observed**2).sum()),
            }
        )

    control_index = next((i for i, arm in enumerate(arms) if arm.is_control), None)
    comparisons: list[dict[str, Any]] = []
    if control_index is not None:
        periods = (
            np.unique(period[~np.isnan(values)])
            if design.is_bandit and period is not None
            else None
        )
        for index, arm in enumerate(arms):
            if index == control_index:
                continue
            comparisons.append(
                _compare(
                    design,
                    arm,
                    samples[index],
                    samples[control_index],
                    treatment_values=adjusted[arm_of == index],
                    control_values=adjusted[arm_of == control_index],
                    periods=periods,
                    treatment_period=None if period is None else period[arm_of == index],
                    control_period=None if period is None else period[arm_of == control_index],
                    covariates=(covariate[arm_of == index], covariate[arm_of == control_index])
                    if adjustment.applied
                    else None,
                    warnings=warnings,
                )
            )

    testable = [row for row in comparisons if row["p_value"] is not None]
    if design.experiment_type in ("MULTIVARIATE", "MULTI_ARMED_BANDIT") and testable:
        adjusted_p = stats.holm([row["p_value"] for row in testable])
        for row, p in zip(testable, adjusted_p, strict=True):
            row["adjusted_p_value"] = _number(p)

    srm_p = None
    if not design.is_bandit and arms:
        srm_p = _number(
            stats.sample_ratio_p_value(
                [v["assigned"] for v in variants], [arm.weight for arm in arms]
            )
        )
        if srm_p is not None and srm_p < SRM_THRESHOLD:
            warnings.append(
                f"Sample ratio mismatch (p = {srm_p:.2g}): assignments do not follow the "
                "weights, so the comparison may be biased."
            )
    winner, reason = _winner(design, comparisons)
    return {
        "method": {
            "analysis": design.analysis,
            "engine": design.engine,
            "description": design.method,
            "estimator": "period-stratified difference of means"
            if design.is_bandit
            else "difference of learner means",
            "multiple_comparisons": "Holm"
            if design.experiment_type in ("MULTIVARIATE", "MULTI_ARMED_BANDIT")
            else "none",
            "alpha": design.alpha,
        },
        "cuped": {
            "enabled": design.cuped,
            "applied": adjustment.applied,
            "theta": adjustment.theta,
            "variance_reduction": _number(adjustment.variance_reduction),
            "reason": adjustment.reason,
        },
        "variants": variants,
        "comparisons": comparisons,
        "sample_ratio": {
            "p_value": srm_p,
            "mismatch": srm_p is not None and srm_p < SRM_THRESHOLD,
        },
        "winner": winner,
        "winner_reason": reason,
        "warnings": warnings,
    }


def _compare(
    design: Design,
    arm: Arm,
    treatment: stats.AdjustedSample,
    control: stats.AdjustedSample,
    *,
    treatment_values: np.ndarray,
    control_values: np.ndarray,
    periods: np.ndarray | None,
    treatment_period: np.ndarray | None,
    control_period: np.ndarray | None,
    covariates: tuple[np.ndarray, np.ndarray] | None,
    warnings: list[str],
) -> dict[str, Any]:
    n_total = treatment.n + control.n
    if periods is not None and treatment_period is not None and control_period is not None:
        t_periods = _period_samples(treatment_values, treatment_period, periods)
        c_periods = _period_samples(control_values, control_period, periods)
        absolute = stats.stratified_effect(t_periods, c_periods, relative=False)
        relative = stats.stratified_effect(t_periods, c_periods, relative=True)
    else:
        absolute = stats.effect(treatment, control, relative=False)
        relative = stats.effect(treatment, control, relative=True)
    test = _test(design, absolute, n_total)
    lift = _test(design, relative, n_total)
    chance = (
        stats.confidence_many(np.array([absolute.estimate]), np.array([absolute.standard_error]))[0]
        if absolute.defined
        else float("nan")
    )
    row: dict[str, Any] = {
        "variant": arm.key,
        "difference": _number(absolute.estimate),
        "standard_error": _number(absolute.standard_error),
        "ci_lower": _number(test.ci_lower),
        "ci_upper": _number(test.ci_upper),
        "p_value": _number(test.p_value),
        "adjusted_p_value": _number(test.p_value),
        "relative_lift": _number(relative.estimate),
        "lift_ci_lower": _number(lift.ci_lower),
        "lift_ci_upper": _number(lift.ci_upper),
        "lift_p_value": _number(lift.p_value),
        "chance_to_beat_control": _number(chance),
    }
    if design.engine == "BAYESIAN":
        prior_sd = design.prior_sd
        posterior = stats.bayesian_effect(
            relative,
            alpha=design.alpha,
            prior_mean=design.prior_mean or 0.0,
            prior_sd=prior_sd,
        )
        row.update(
            posterior_mean=_number(posterior.posterior_mean),
            credible_lower=_number(posterior.ci_lower),
            credible_upper=_number(posterior.ci_upper),
            chance_to_win=_number(posterior.chance_to_win),
            risk=_number(posterior.risk_treatment),
            risk_control=_number(posterior.risk_control),
        )
    if covariates is not None:
        x_t, x_c = covariates
        balance = stats.welch(
            stats.Sample.of(np.nan_to_num(x_t[~np.isnan(treatment_values)])),
            stats.Sample.of(np.nan_to_num(x_c[~np.isnan(control_values)])),
        )
        row["balance_p_value"] = _number(balance.p_value)
        if balance.p_value < BALANCE_THRESHOLD:
            warnings.append(
                f"The pre-period covariate differs between {arm.key} and control "
                f"(p = {balance.p_value:.2g}): check the assignment before trusting CUPED."
            )
    return row


def _winner(design: Design, comparisons: list[dict[str, Any]]) -> tuple[str | None, str]:
    """§5.3: frequentist — the best treatment whose adjusted p < alpha with a positive
    difference; Bayesian — the best whose chance to win ≥ 95 % and risk < 0.0025 of the
    control mean. Otherwise none, with the reason."""
    if not comparisons:
        return None, "There is no treatment to compare with a control."
    if design.engine == "BAYESIAN":
        defined = [row for row in comparisons if row.get("chance_to_win") is not None]
        if not defined:
            return None, "No treatment has outcomes from two or more learners beside the control."
        passing = [
            row
            for row in defined
            if row["chance_to_win"] >= WINNER_CHANCE and (row["risk"] or 0.0) < WINNER_RISK
        ]
        if passing:
            best = max(passing, key=lambda row: row["posterior_mean"])
            return best["variant"], (
                f"{best['variant']} has a {best['chance_to_win']:.1%} chance to win with risk "
                f"{best['risk']:.2%} of the control mean."
            )
        best = max(defined, key=lambda row: row["chance_to_win"])
        return None, (
            f"No treatment reaches a {WINNER_CHANCE:.0%} chance to win with risk below "
            f"{WINNER_RISK:.2%} (best: {best['variant']}, {best['chance_to_win']:.1%}, "
            f"risk {best['risk']:.2%})."
        )
    defined = [row for row in comparisons if row["adjusted_p_value"] is not None]
    if not defined:
        return None, (
            "No treatment can be tested yet: each side needs outcomes from two or more "
            "learners with some spread."
        )
    winners = [
        row
        for row in defined
        if row["adjusted_p_value"] < design.alpha and (row["difference"] or 0.0) > 0
    ]
    if winners:
        best = max(winners, key=lambda row: row["difference"])
        return best["variant"], (
            f"{best['variant']} beats control (p = {best['adjusted_p_value']:.2g} < "
            f"{design.alpha:g}, {design.method})."
        )
    best = min(defined, key=lambda row: row["adjusted_p_value"])
    direction = "above" if (best["difference"] or 0.0) > 0 else "not above"
    return None, (
        f"No treatment beats control at alpha {design.alpha:g} with {design.method}: the best "
        f"is {best['variant']}, {direction} control, p = {best['adjusted_p_value']:.2g}."
    )


def holdout_lift(
    held_out: np.ndarray, others: np.ndarray, *, alpha: float = 0.05, tuning: float = 5000.0
) -> dict[str, Any]:
    """What personalization as a whole is worth (DESIGN.md §3 Holdout): each learner's mean
    reward as one value, everyone else against the held-out learners — a randomised
    comparison, unlike the effectiveness windows. The difference's interval is the
    always-valid one of §5.3 (the hourly evaluation looks at it every hour), the relative
    lift's too; undefined figures are None."""
    held, rest = stats.Sample.of(held_out), stats.Sample.of(others)

    def unadjusted(sample: stats.Sample) -> stats.AdjustedSample:
        return stats.AdjustedSample(
            sample.n, sample.mean, sample.variance, sample.mean, sample.variance
        )

    n_total = held.n + rest.n
    absolute = stats.effect(unadjusted(rest), unadjusted(held), relative=False)
    relative = stats.effect(unadjusted(rest), unadjusted(held), relative=True)
    tested = stats.sequential_test(absolute, n_total, alpha=alpha, tuning=tuning)
    lift = stats.sequential_test(relative, n_total, alpha=alpha, tuning=tuning)

    def figure(value: float) -> float | None:
        return float(value) if np.isfinite(value) else None

    return {
        "method": "always-valid difference of learner means (sequential)",
        "holdout": {"learners": held.n, "mean": figure(held.mean)},
        "everyone_else": {"learners": rest.n, "mean": figure(rest.mean)},
        "difference": figure(tested.estimate),
        "ci_lower": figure(tested.ci_lower),
        "ci_upper": figure(tested.ci_upper),
        "p_value": figure(tested.p_value),
        "relative_lift": figure(lift.estimate),
        "relative_ci_lower": figure(lift.ci_lower),
        "relative_ci_upper": figure(lift.ci_upper),
        "significant": bool(np.isfinite(tested.p_value) and tested.p_value < alpha),
    }
