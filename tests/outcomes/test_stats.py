"""outcomes/stats.py against the public vectors, scipy and hand-computed values."""

import numpy as np
import pytest
from scipy import stats as scipy_stats

from outcomes.stats import (
    AdjustedSample,
    EffectEstimate,
    PairedSample,
    Sample,
    Samples,
    bayesian_effect,
    chance_to_beat,
    composite_many,
    composite_score,
    confidence_many,
    cuped_adjust,
    cuped_theta,
    effect,
    fixed_horizon_test,
    holm,
    improvement,
    point_biserial,
    relative_lift,
    reward,
    sample_ratio_p_value,
    sequential_test,
    stratified_effect,
    variance_reduction,
    welch,
    welch_many,
)

CONTROL = Sample(n=3407, total=1396.87, total_sq=52377.9767)
TREATMENT = Sample(n=3461, total=2422.7, total_sq=134698.29)


def test_public_vector__welch():
    result = welch(TREATMENT, CONTROL)
    assert result.difference == pytest.approx(0.29, abs=1e-12)
    assert result.ci_lower == pytest.approx(0.04538, abs=5e-6)
    assert result.ci_upper == pytest.approx(0.53462, abs=5e-6)
    assert result.p_value == pytest.approx(0.02016, abs=5e-6)


def test_public_vector__relative_lift_delta_method():
    result = relative_lift(TREATMENT, CONTROL)
    assert result.lift == pytest.approx(0.70732, abs=5e-6)
    assert result.ci_lower == pytest.approx(-0.03526, abs=5e-6)
    assert result.ci_upper == pytest.approx(1.44989, abs=5e-6)
    assert result.p_value == pytest.approx(0.06191, abs=5e-6)


def test_public_vector__sample_ratio_mismatch():
    p = sample_ratio_p_value([1050, 950], [0.5, 0.5])
    assert p == pytest.approx(0.0253473, abs=5e-8)
    assert not p < 0.001  # not flagged


def _samples(seed=3):
    rng = np.random.default_rng(seed)
    return rng.normal(0.55, 0.2, 57), rng.normal(0.5, 0.3, 43)


def test_welch__matches_scipy():
    a, b = _samples()
    ours = welch(Sample.of(a), Sample.of(b))
    theirs = scipy_stats.ttest_ind(a, b, equal_var=False)
    assert ours.t == pytest.approx(theirs.statistic)
    assert ours.p_value == pytest.approx(theirs.pvalue)
    assert ours.degrees_of_freedom == pytest.approx(theirs.df)
    interval = theirs.confidence_interval(0.95)
    assert ours.ci_lower == pytest.approx(interval.low)
    assert ours.ci_upper == pytest.approx(interval.high)


def test_point_biserial__equals_pearson_and_pooled_t():
    a, b = _samples()
    ours = point_biserial(Sample.of(a), Sample.of(b))
    indicator = np.r_[np.ones(a.size), np.zeros(b.size)]
    pearson = scipy_stats.pearsonr(indicator, np.r_[a, b])
    pooled = scipy_stats.ttest_ind(a, b, equal_var=True)
    assert ours.r == pytest.approx(pearson.statistic)
    assert ours.p_value == pytest.approx(pearson.pvalue)
    assert ours.p_value == pytest.approx(pooled.pvalue)


def test_sample__hand_computed():
    sample = Sample.of([1.0, 2.0, 4.0])
    assert (sample.n, sample.total, sample.total_sq) == (3, 7.0, 21.0)
    assert sample.mean == pytest.approx(7 / 3)
    assert sample.variance == pytest.approx(np.var([1, 2, 4], ddof=1))


def test_chance_to_beat__normal_of_z():
    a, b = _samples()
    result = welch(Sample.of(a), Sample.of(b))
    expected = scipy_stats.norm.cdf(result.difference / result.standard_error)
    assert chance_to_beat(Sample.of(a), Sample.of(b)) == pytest.approx(expected)


def test_holm__matches_hand_computation():
    # sorted 0.01, 0.03, 0.04 → 3·0.01, 2·0.03, max(0.06, 1·0.04) → 0.03, 0.06, 0.06
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    assert holm([]) == []


def test_sample_ratio__matches_scipy_chisquare_unequal_weights():
    counts, weights = [330, 700], [1, 2]
    expected = scipy_stats.chisquare(counts, [1030 / 3, 2060 / 3]).pvalue
    assert sample_ratio_p_value(counts, weights) == pytest.approx(expected)


def test_reward__renormalised_over_present_scores():
    assert reward({"retention_score": 1.0, "performance_score": 0.5}) == pytest.approx(0.75)
    # (0.3·0.2 + 0.2·0.8) / 0.5 = 0.44
    assert reward({"retention_score": 0.2, "engagement_score": 0.8}) == pytest.approx(0.44)
    assert reward({"completion_rate": 0.6}) == pytest.approx(0.6)
    with pytest.raises(ValueError, match="at least one score"):
        reward({"retention_score": None})


def test_improvement_and_composite__hand_computed():
    assert improvement(0.6, 0.5) == pytest.approx(20.0)
    assert improvement(0.5, 0.0) is None
    # retention +10 %, completion −20 %: (0.3·10 − 0.2·20) / 0.5 = −2 → 50 − 1 = 49
    score = composite_score(
        {
            "retention_score": 10.0,
            "performance_score": None,
            "completion_rate": -20.0,
            "engagement_score": None,
        }
    )
    assert score == pytest.approx(49.0)
    assert composite_score({"retention_score": 500.0}) == 100.0
    assert composite_score({"retention_score": None}) is None


def test_vectorised_forms_agree_with_single():
    a, b = _samples(5)
    c, d = _samples(6)
    many = welch_many(
        Samples.of(Sample.of(a), Sample.of(c)), Samples.of(Sample.of(b), Sample.of(d))
    )
    assert many["p_value"][1] == pytest.approx(welch(Sample.of(c), Sample.of(d)).p_value)
    rows = composite_many(
        {"retention_score": np.array([10.0, np.nan]), "completion_rate": np.array([-20.0, np.nan])}
    )
    assert rows[0] == pytest.approx(49.0)
    assert np.isnan(rows[1])


# --- Degenerate cases: undefined is not certain (DESIGN.md §5.2) ----------------------------


def test_sample__empty_single_constant():
    empty, one, constant = Sample.of([]), Sample.of([0.4]), Sample.of([0.1] * 26)
    assert np.isnan(empty.mean)
    assert np.isnan(empty.variance)
    assert one.mean == 0.4
    assert np.isnan(one.variance)
    assert constant.variance == 0.0


def test_sample__variance_stable_far_from_zero():
    assert Sample.of(1e9 + np.array([0.0, 1.0, 2.0])).variance == pytest.approx(1.0, rel=1e-12)
    assert Sample.from_moments(3, 1e9 + 1, 1.0).variance == pytest.approx(1.0, rel=1e-12)
    tiny = Sample.of(np.array([1.0, 2.0, 3.0]) * 1e-150)
    assert tiny.variance == pytest.approx(1e-300, rel=1e-9)
    assert Sample.of(np.array([1.0, 2.0, 3.0]) * 1e-300).variance >= 0.0


def test_samples__from_sums_constant_rows_have_no_spread():
    """Σx² − (Σx)²/n of 26 copies of 0.1 is rounding (about 1e-18), not a variance."""
    values = [0.1] * 26
    rows = Samples(
        n=np.array([26.0, 1.0, 0.0]),
        total=np.array([sum(values), 0.3, 0.0]),
        total_sq=np.array([sum(v * v for v in values), 0.09, 0.0]),
    )
    assert rows.variance[0] == 0.0
    assert np.isnan(rows.variance[1])
    assert np.isnan(rows.variance[2])
    assert rows.spread[1] == 0.0
    assert np.isnan(rows.spread[2])


def test_welch__identical_constants__p_null_not_significant():
    """20 vs 26 outcomes that carry only completion_rate=0.1 once gave p = 0, t = +inf."""
    result = welch(Sample.of([0.1] * 20), Sample.of([0.1] * 26))
    assert result.difference == 0.0
    assert np.isnan(result.p_value)
    assert np.isnan(result.t)
    assert np.isnan(result.ci_lower)
    assert np.isnan(result.ci_upper)


def test_welch__different_constants__difference_kept_test_undefined():
    result = welch(Sample.of([0.1] * 5), Sample.of([0.3] * 5))
    assert result.difference == pytest.approx(-0.2)
    assert np.isnan(result.t)  # never +inf for a negative difference
    assert np.isnan(result.p_value)


def test_welch_many__sample_of_one__null_interval_not_zero_width():
    many = welch_many(Samples.of(Sample.of([0.7])), Samples.of(Sample.of([0.1, 0.5, 0.3])))
    assert many["difference"][0] == pytest.approx(0.4)
    for name in ("standard_error", "p_value", "ci_lower", "ci_upper", "t"):
        assert np.isnan(many[name][0]), name


def test_welch__empty_side__all_undefined():
    result = welch(Sample.of([]), Sample.of([0.1, 0.2]))
    assert np.isnan(result.difference)
    assert np.isnan(result.p_value)


def test_point_biserial__one_against_three__defined_as_scipy():
    one, three = [1.0], [0.2, 0.4, 0.3]
    ours = point_biserial(Sample.of(one), Sample.of(three))
    theirs = scipy_stats.pearsonr([1, 0, 0, 0], one + three)
    assert ours.r == pytest.approx(theirs.statistic, abs=1e-12)  # 0.974
    assert ours.p_value == pytest.approx(theirs.pvalue, abs=1e-12)  # 0.026


def test_point_biserial__degenerate():
    same = point_biserial(Sample.of([0.1] * 20), Sample.of([0.1] * 26))
    assert np.isnan(same.r)
    assert np.isnan(same.p_value)
    apart = point_biserial(Sample.of([0.3] * 4), Sample.of([0.1] * 4))
    assert apart.r == 1.0
    assert np.isnan(apart.p_value)
    assert np.isnan(point_biserial(Sample.of([1.0]), Sample.of([0.0])).r)  # n = 2: no df
    assert np.isnan(point_biserial(Sample.of([]), Sample.of([0.0, 1.0])).r)


def test_relative_lift__degenerate():
    zero_control = relative_lift(Sample.of([0.1, 0.2]), Sample.of([0.0, 0.0]))
    assert np.isnan(zero_control.lift)
    constants = relative_lift(Sample.of([0.2] * 3), Sample.of([0.1] * 3))
    assert constants.lift == pytest.approx(1.0)
    assert np.isnan(constants.p_value)
    assert np.isnan(constants.ci_lower)
    tiny = relative_lift(Sample.of([2e-300, 3e-300, 4e-300]), Sample.of([1e-300, 2e-300, 3e-300]))
    assert tiny.lift == pytest.approx(0.5)


def test_chance_to_beat__undefined_is_nan():
    assert np.isnan(chance_to_beat(Sample.of([0.2] * 3), Sample.of([0.1] * 3)))
    assert np.isnan(chance_to_beat(Sample.of([0.2]), Sample.of([0.1, 0.3])))


def test_holm__undefined_p_values_stay_undefined_and_do_not_count():
    adjusted = holm([0.01, float("nan"), 0.04])
    assert adjusted[0] == pytest.approx(0.02)
    assert adjusted[2] == pytest.approx(0.04)
    assert np.isnan(adjusted[1])


def test_sample_ratio__degenerate():
    assert np.isnan(sample_ratio_p_value([0, 0], [1, 1]))
    assert np.isnan(sample_ratio_p_value([10], [1]))
    assert sample_ratio_p_value([5, 5, 0], [1, 1, 0]) == pytest.approx(1.0)
    assert sample_ratio_p_value([5, 5, 3], [1, 1, 0]) == 0.0


def test_composite__empty_is_none_not_an_error():
    assert composite_score({}) is None
    assert composite_many({}).size == 0


def test_confidence__zero_se_is_nan():
    values = confidence_many(np.array([0.1, 0.0, 0.1]), np.array([0.0, 0.0, np.nan]))
    assert np.isnan(values).all()


# --- CUPED, sequential and Bayesian: published vectors ---------------------------------------


def adjusted(sample: Sample) -> AdjustedSample:
    return AdjustedSample(sample.n, sample.mean, sample.variance, sample.mean, sample.variance)


def test_public_vector__cuped_relative_lift():
    """gbstats 0.8.0 (RegressionAdjustedStatistic, TwoSidedTTest, relative): the pooled θ,
    the adjusted means over the unadjusted control mean, the delta-method variance of the
    adjusted samples with the unadjusted means."""
    control = PairedSample(3001, 300, 600, 210, 415, -20)
    treatment = PairedSample(3000, 222, 555, 120, 405, -10)
    theta = cuped_theta([control, treatment])
    result = fixed_horizon_test(
        effect(cuped_adjust(treatment, theta), cuped_adjust(control, theta), relative=True)
    )
    assert result.estimate == pytest.approx(-0.281707154, abs=1e-6)
    assert result.ci_lower == pytest.approx(-0.4721, abs=1e-4)
    assert result.ci_upper == pytest.approx(-0.0913, abs=1e-4)


def test_cuped__matches_regression_by_hand():
    rng = np.random.default_rng(11)
    x = rng.normal(0.5, 0.2, 400)
    y = 0.3 + 0.8 * x + rng.normal(0, 0.05, 400)
    arm = rng.random(400) < 0.5
    samples = [PairedSample.of(y[arm], x[arm]), PairedSample.of(y[~arm], x[~arm])]
    theta = cuped_theta(samples)
    assert theta == pytest.approx(np.cov(x, y)[0, 1] / np.var(x, ddof=1), rel=1e-9)
    one = cuped_adjust(samples[0], theta)
    expected = y[arm] - theta * x[arm]
    assert one.mean == pytest.approx(y[arm].mean() - theta * x[arm].mean(), rel=1e-12)
    assert one.variance == pytest.approx(np.var(expected, ddof=1), rel=1e-9)
    assert variance_reduction(samples, theta) > 0.8


def test_cuped__no_spread_in_covariate__theta_zero():
    flat = [PairedSample.of([0.1, 0.5, 0.3], [0.0, 0.0, 0.0]), PairedSample.of([0.2, 0.4], [0, 0])]
    assert cuped_theta(flat) == 0.0


def test_public_vector__sequential_confidence_sequence():
    """gbstats 0.8.0 SequentialTwoSidedTTest, relative, N* = 1000, α = 0.05."""
    control = Sample(n=3000, total=1396.87, total_sq=52377.9767)
    treatment = Sample(n=3461, total=2422.7, total_sq=134698.29)
    estimate = effect(adjusted(treatment), adjusted(control), relative=True)
    result = sequential_test(estimate, 3000 + 3461, alpha=0.05, tuning=1000)
    assert result.estimate == pytest.approx(0.50336, abs=1e-5)
    assert result.ci_lower == pytest.approx(-0.55844, abs=1e-5)
    assert result.ci_upper == pytest.approx(1.56516, abs=1e-5)
    assert result.p_value == 1.0  # the interval covers 0 by far


def test_sequential__wider_than_fixed_and_undefined_when_fixed_is():
    rng = np.random.default_rng(2)
    a, b = Sample.of(rng.normal(0.5, 0.2, 500)), Sample.of(rng.normal(0.55, 0.2, 500))
    estimate = effect(adjusted(b), adjusted(a), relative=False)
    fixed, always = fixed_horizon_test(estimate), sequential_test(estimate, 1000, tuning=5000)
    assert always.ci_lower < fixed.ci_lower
    assert always.ci_upper > fixed.ci_upper
    assert always.p_value >= fixed.p_value
    constant = effect(
        adjusted(Sample.of([0.1] * 5)), adjusted(Sample.of([0.1] * 5)), relative=False
    )
    assert np.isnan(sequential_test(constant, 10).p_value)


def test_public_vector__bayesian_relative_flat_prior():
    """A n=10, Σ=100, Σ²=1002.25; B n=10, Σ=105, Σ²=1111.5 (gbstats' EffectBayesianABTest)."""
    a = Sample(n=10, total=100, total_sq=1002.25)
    b = Sample(n=10, total=105, total_sq=1111.5)
    result = bayesian_effect(effect(adjusted(b), adjusted(a), relative=True))
    assert result.posterior_mean == pytest.approx(0.05, abs=1e-5)
    assert result.ci_lower == pytest.approx(-0.02, abs=1e-5)
    assert result.ci_upper == pytest.approx(0.12, abs=1e-5)
    assert result.chance_to_win == pytest.approx(0.91923, abs=1e-5)


def test_bayesian__risk_by_hand_and_proper_prior_shrinks():
    estimate = EffectEstimate(estimate=0.05, variance=0.03**2, degrees_of_freedom=100.0)
    result = bayesian_effect(estimate)
    mu, sd = 0.05, 0.03
    # E[max(−Δ, 0)] = σφ(μ/σ) − μΦ(−μ/σ)
    expected = sd * scipy_stats.norm.pdf(mu / sd) - mu * scipy_stats.norm.cdf(-mu / sd)
    assert result.risk_treatment == pytest.approx(expected, rel=1e-9)
    assert result.risk_control - result.risk_treatment == pytest.approx(mu, rel=1e-9)
    shrunk = bayesian_effect(estimate, prior_mean=0.0, prior_sd=0.03)
    assert shrunk.posterior_mean == pytest.approx(0.025, rel=1e-12)
    undefined = bayesian_effect(EffectEstimate(0.0, 0.0, float("nan")))
    assert np.isnan(undefined.chance_to_win)


def test_stratified_effect__one_period_is_welch():
    rng = np.random.default_rng(4)
    t, c = Sample.of(rng.normal(0.6, 0.2, 80)), Sample.of(rng.normal(0.5, 0.2, 70))
    one = stratified_effect([t], [c], relative=False)
    plain = welch(t, c)
    assert one.estimate == pytest.approx(plain.difference, rel=1e-12)
    assert one.standard_error == pytest.approx(plain.standard_error, rel=1e-12)
    assert one.degrees_of_freedom == pytest.approx(plain.degrees_of_freedom, rel=1e-9)


def test_stratified_effect__removes_a_time_trend_that_pooling_turns_into_an_effect():
    """Rewards rise by 0.3 between two periods while the allocation moves from 10 % to 90 %
    treatment; the arms are equal. Pooled Welch sees a large effect, the periods none."""
    rng = np.random.default_rng(5)
    early_t, early_c = rng.normal(0.3, 0.05, 20), rng.normal(0.3, 0.05, 180)
    late_t, late_c = rng.normal(0.6, 0.05, 180), rng.normal(0.6, 0.05, 20)
    pooled = welch(Sample.of(np.r_[early_t, late_t]), Sample.of(np.r_[early_c, late_c]))
    assert pooled.p_value < 1e-6
    periods = stratified_effect(
        [Sample.of(early_t), Sample.of(late_t)],
        [Sample.of(early_c), Sample.of(late_c)],
        relative=False,
    )
    assert fixed_horizon_test(periods).p_value > 0.01


def test_effect_cuped_stratified__degenerate_are_nan():
    one = AdjustedSample(1, 0.5, float("nan"), 0.5, float("nan"))
    two = adjusted(Sample.of([0.4, 0.6]))
    assert np.isnan(effect(one, two, relative=False).variance)
    assert not effect(one, two, relative=False).defined
    assert np.isnan(effect(two, adjusted(Sample.of([0.0, 0.0])), relative=True).estimate)
    assert np.isnan(effect(adjusted(Sample.of([])), two, relative=False).estimate)
    assert np.isnan(cuped_adjust(PairedSample.of([0.5], [0.4]), 0.3).variance)
    flat = [PairedSample.of([0.2, 0.2], [0.1, 0.3]), PairedSample.of([0.2, 0.2], [0.5, 0.1])]
    assert np.isnan(variance_reduction(flat, 0.0))
    none = stratified_effect([Sample.of([0.3])], [Sample.of([0.1, 0.2])], relative=False)
    assert np.isnan(none.estimate)
    assert np.isnan(sequential_test(EffectEstimate(0.1, 0.01, 5.0), 1).p_value)
    assert np.isnan(fixed_horizon_test(EffectEstimate(0.1, 0.0, 5.0)).p_value)
