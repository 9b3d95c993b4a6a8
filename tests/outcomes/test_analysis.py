"""outcomes/analysis.py: the decision rules of §5.3 judged by what they conclude (A/A and
known-truth simulations with fixed seeds; the rates are quoted with their standard errors)."""

import numpy as np
import pytest

from outcomes.analysis import Arm, Design, analyse
from outcomes.simulations import (
    BANDIT_ARMS,
    bandit_experiment,
    bandit_false_winners,
    learners,
    peeking,
)

ARMS = [Arm("control", is_control=True), Arm("treatment")]


def rate_and_se(hits: int, trials: int) -> tuple[float, float]:
    rate = hits / trials
    return rate, float(np.sqrt(rate * (1 - rate) / trials))


# --- CUPED ----------------------------------------------------------------------------------


def test_cuped__reduces_variance_and_keeps_the_estimate():
    rng = np.random.default_rng(1)
    arm, after, before = learners(rng, 2000, effect=0.02)
    plain = analyse(Design(analysis="FIXED", cuped=False), ARMS, arm, after, before)
    adjusted = analyse(Design(analysis="FIXED"), ARMS, arm, after, before)
    (p_row,), (a_row,) = plain["comparisons"], adjusted["comparisons"]
    assert adjusted["cuped"]["applied"] is True
    assert adjusted["cuped"]["variance_reduction"] > 0.5
    assert a_row["standard_error"] < 0.75 * p_row["standard_error"]
    assert a_row["difference"] == pytest.approx(0.02, abs=3 * a_row["standard_error"])
    # θ is the pooled least-squares slope of the value on the covariate
    slope = np.cov(before, after)[0, 1] / np.var(before, ddof=1)
    assert adjusted["cuped"]["theta"][0] == pytest.approx(slope, rel=1e-9)
    # the lift's denominator is the unadjusted control mean
    control_mean = after[arm == 0].mean()
    assert a_row["relative_lift"] == pytest.approx(a_row["difference"] / control_mean, rel=1e-9)


def test_cuped__learners_without_history__covariate_zero_with_an_indicator():
    rng = np.random.default_rng(2)
    arm, after, before = learners(rng, 1000)
    before[rng.random(1000) < 0.3] = np.nan
    results = analyse(Design(analysis="FIXED"), ARMS, arm, after, before)
    assert results["cuped"]["applied"] is True
    assert len(results["cuped"]["theta"]) == 2  # the covariate and the has-history indicator
    observed = ~np.isnan(before)
    design = np.column_stack([np.where(observed, before, 0.0), observed.astype(float)])
    centred = design - design.mean(axis=0)
    expected, *_ = np.linalg.lstsq(centred, after - after.mean(), rcond=None)
    assert results["cuped"]["theta"] == pytest.approx(expected.tolist(), rel=1e-9)


def test_cuped__nobody_has_history__not_applied_and_says_why():
    rng = np.random.default_rng(3)
    arm, after, _ = learners(rng, 200)
    results = analyse(Design(), ARMS, arm, after, np.full(200, np.nan))
    assert results["cuped"]["applied"] is False
    assert "pre-period" in results["cuped"]["reason"]


def test_cuped__imbalanced_pre_period__warning():
    rng = np.random.default_rng(4)
    arm, after, before = learners(rng, 2000)
    before[arm == 1] += 0.2  # the treatment's learners were stronger before
    results = analyse(Design(analysis="FIXED"), ARMS, arm, after, before)
    assert results["comparisons"][0]["balance_p_value"] < 0.001
    assert any("pre-period covariate differs" in w for w in results["warnings"])


# --- A/A: fixed-horizon experiment results ------------------------------------------------


def test_aa__fixed_horizon_ab_results__false_positive_rate_at_alpha():
    """1,200 A/A experiments of 200 heterogeneous learners, CUPED on, Welch at α = 0.05:
    the rate of p < α stays within 5 % ± 2 SE and the rate of a declared winner (which
    needs a positive difference) within 2.5 % ± 2 SE."""
    rng = np.random.default_rng(20261201)
    trials, significant, winners = 1200, 0, 0
    design = Design(analysis="FIXED")
    for _ in range(trials):
        arm, after, before = learners(rng, 200)
        results = analyse(design, ARMS, arm, after, before)
        p = results["comparisons"][0]["p_value"]
        significant += p is not None and p < design.alpha
        winners += results["winner"] is not None
    rate, se = rate_and_se(significant, trials)
    assert abs(rate - 0.05) <= 2 * se + 0.005, f"false-positive rate {rate:.3f} ± {se:.3f}"
    w_rate, w_se = rate_and_se(winners, trials)
    assert w_rate <= 0.025 + 2 * w_se, f"false-winner rate {w_rate:.3f} ± {w_se:.3f}"


def test_known_truth__fixed_horizon_finds_a_real_effect():
    rng = np.random.default_rng(7)
    found = sum(
        analyse(Design(analysis="FIXED"), ARMS, *learners(rng, 400, effect=0.05))["winner"]
        == "treatment"
        for _ in range(100)
    )
    assert found >= 90, f"power {found}/100"


# --- Bayesian engine -----------------------------------------------------------------------


def test_bayesian__winner_rule_and_reason():
    rng = np.random.default_rng(8)
    arm, after, before = learners(rng, 3000, effect=0.05)
    results = analyse(Design(engine="BAYESIAN"), ARMS, arm, after, before)
    row = results["comparisons"][0]
    assert row["chance_to_win"] > 0.95
    assert row["risk"] < 0.0025
    assert results["winner"] == "treatment"
    assert "chance to win" in results["winner_reason"]
    worse = analyse(Design(engine="BAYESIAN"), ARMS, *learners(rng, 400, effect=-0.05))
    assert worse["winner"] is None
    assert "No treatment reaches" in worse["winner_reason"]


def test_aa__bayesian_winner_rule__false_winner_rate_at_most_five_percent():
    """600 A/A experiments of 200 learners: chance to win ≥ 95 % and risk < 0.25 % of the
    control mean declares a winner in at most 5 % (± 2 SE) of them."""
    rng = np.random.default_rng(31)
    trials = 600
    winners = sum(
        analyse(Design(engine="BAYESIAN"), ARMS, *learners(rng, 200))["winner"] is not None
        for _ in range(trials)
    )
    rate, se = rate_and_se(winners, trials)
    assert rate <= 0.05 + 2 * se, f"Bayesian false-winner rate {rate:.3f} ± {se:.3f}"


# --- Bandit experiments: valid under changing allocation -----------------------------------

BANDIT = Design(experiment_type="MULTI_ARMED_BANDIT", analysis="FIXED")


def test_bandit__equal_arms_with_time_trend__false_winner_rate_at_most_alpha():
    """600 simulated bandit experiments (3 equal arms, reward trend, Thompson allocation
    moving every period): the period-stratified, Holm-adjusted analysis declares a winner in
    at most 5 % (± 2 SE); a plain Welch test over the pooled learners does not hold it."""
    ours, plain = bandit_false_winners(trials=600, seed=20261201)
    assert ours.rate <= 0.05 + 2 * ours.standard_error, str(ours)
    assert plain.rate > 0.05 + 2 * plain.standard_error, str(plain)
    arm, values, period = bandit_experiment(np.random.default_rng(1))
    method = analyse(BANDIT, BANDIT_ARMS, arm, values, period=period)["method"]
    assert method["estimator"] == "period-stratified difference of means"
    assert method["multiple_comparisons"] == "Holm"


# --- Peeking: hourly looks for 28 days -------------------------------------------------------


def test_peeking__sequential_holds_alpha_half_fixed_does_not():
    """1,000 A/A experiments each evaluated every simulated hour for 28 days (1,680
    learners): SEQUENTIAL declares a winner at some look in at most α/2 = 2.5 % (+ 2 SE);
    FIXED, the same data and looks, far more often."""
    sequential = peeking(trials=1000, analysis="SEQUENTIAL", seed=7)
    fixed = peeking(trials=1000, analysis="FIXED", seed=7)
    assert sequential.rate <= 0.025 + 2 * sequential.standard_error, str(sequential)
    assert fixed.rate > 0.025 + 2 * fixed.standard_error, str(fixed)
