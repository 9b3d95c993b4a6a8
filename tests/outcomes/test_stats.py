"""outcomes/stats.py against the public vectors, scipy and hand-computed values."""

import numpy as np
import pytest
from scipy import stats as scipy_stats

from outcomes.stats import (
    Sample,
    Samples,
    chance_to_beat,
    composite_many,
    composite_score,
    holm,
    improvement,
    point_biserial,
    relative_lift,
    reward,
    sample_ratio_p_value,
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


def test_degenerate_samples():
    same = Sample.of([0.5, 0.5, 0.5])
    assert welch(same, same).p_value == 1.0
    with pytest.raises(ValueError, match="two values"):
        welch(Sample.of([1.0]), same)
