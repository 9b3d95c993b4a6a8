"""The samples of an effectiveness window (DESIGN.md §5.2) and every statistic of them, for
many windows at once. Pure: numpy and scipy, no Django, so the A/A simulations measure the
rule the service applies.

Measure rows, as the database groups outcomes: n, Σ and Σ(x − x̄)² of the reward, then Σ and
n of each score (`SCORE_FIELDS` order). USER scope tests outcomes (`outcome_samples`); GLOBAL
scope takes each learner's mean per metric as one value (`learner_samples`)."""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from outcomes import stats
from outcomes.grouping import take

SCORE_FIELDS = ("retention_score", "performance_score", "completion_rate", "engagement_score")
IMPROVEMENT_COLUMNS = {
    "retention_score": "retention_improvement",
    "performance_score": "performance_improvement",
    "completion_rate": "completion_rate_change",
    "engagement_score": "engagement_change",
}
SIGNIFICANCE = 0.05


@dataclass(frozen=True)
class SampleSet:
    """Many reward samples at once with the per-score means and the outcomes behind each."""

    reward: stats.Samples
    means: dict[str, np.ndarray]
    outcomes: np.ndarray

    def take(self, keys: np.ndarray, codes: np.ndarray) -> "SampleSet":
        """The samples of `keys` (sorted codes, one per sample) for each of `codes`; empty
        samples where a code has none."""
        r = self.reward
        found = take(keys, np.ones(keys.size, dtype=bool), codes)
        centred = r.centred_sq if r.centred_sq is not None else np.full(keys.size, np.nan)
        return SampleSet(
            reward=stats.Samples(
                n=take(keys, r.n, codes),
                total=take(keys, r.total, codes),
                total_sq=take(keys, r.total_sq, codes),
                centred_sq=take(keys, centred, codes),
            ),
            means={
                score: np.where(found, take(keys, values, codes), np.nan)
                for score, values in self.means.items()
            },
            outcomes=take(keys, self.outcomes, codes),
        )


def _ratio(total: np.ndarray, count: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(count > 0, total / np.where(count > 0, count, 1), np.nan)


def outcome_samples(measures: np.ndarray) -> SampleSet:
    """One sample of outcomes per measure row (USER scope: the outcome is the unit)."""
    n, total, centred = measures[:, 0], measures[:, 1], measures[:, 2]
    return SampleSet(
        reward=stats.Samples(
            n=n,
            total=total,
            total_sq=centred + total * _ratio(total, n),
            centred_sq=centred,
        ),
        means={
            score: _ratio(measures[:, 3 + 2 * i], measures[:, 4 + 2 * i])
            for i, score in enumerate(SCORE_FIELDS)
        },
        outcomes=n,
    )


def learner_samples(
    codes: np.ndarray, measures: np.ndarray
) -> tuple[np.ndarray, np.ndarray, SampleSet]:
    """GLOBAL scope: each measure row is one learner's outcomes in a sample; the learner's
    mean per metric is one value of the sample named by its code. Returns (sorted codes, a
    row index of each, the samples): n counts learners, the variance is that of learner means
    (two-pass, centred), each score's mean is the mean over learners who reported it."""
    learner_reward = _ratio(measures[:, 1], measures[:, 0])
    keys, first, inverse = np.unique(codes, return_index=True, return_inverse=True)
    size = keys.size
    count, total, outcomes = np.zeros(size), np.zeros(size), np.zeros(size)
    has = measures[:, 0] > 0
    np.add.at(count, inverse[has], 1.0)
    np.add.at(total, inverse[has], learner_reward[has])
    np.add.at(outcomes, inverse, measures[:, 0])
    mean = _ratio(total, count)
    # Corrected two-pass: the mean is refined by the mean residual, so equal learner means
    # leave exactly no spread (Σx/n of 0.1s is 0.10000000000000002).
    residual = np.zeros(size)
    np.add.at(residual, inverse[has], learner_reward[has] - mean[inverse[has]])
    mean = mean + _ratio(residual, count)
    centred = np.zeros(size)
    np.add.at(centred, inverse[has], (learner_reward[has] - mean[inverse[has]]) ** 2)
    means = {}
    for i, score in enumerate(SCORE_FIELDS):
        learner_score = _ratio(measures[:, 3 + 2 * i], measures[:, 4 + 2 * i])
        reported = ~np.isnan(learner_score)
        score_total, score_count = np.zeros(size), np.zeros(size)
        np.add.at(score_total, inverse[reported], learner_score[reported])
        np.add.at(score_count, inverse[reported], 1.0)
        means[score] = _ratio(score_total, score_count)
    reward = stats.Samples(
        n=count, total=total, total_sq=centred + total * mean, centred_sq=centred
    )
    return keys, first, SampleSet(reward=reward, means=means, outcomes=outcomes)


def window_statistics(
    personal: SampleSet,
    baseline: SampleSet,
    *,
    minimum: int,
    weights: Mapping[str, float] = stats.REWARD_WEIGHTS,
) -> dict[str, Any]:
    """Every §5.2 figure for each (personalized, baseline) pair of samples: Welch's test
    drives p_value, the interval and the flag (so they never disagree); Pearson r is the
    effect size; undefined figures are NaN (stored as NULL) and never significant."""
    welch = stats.welch_many(personal.reward, baseline.reward)
    correlation = stats.point_biserial_many(personal.reward, baseline.reward)
    improvements = {
        score: stats.improvement_many(personal.means[score], baseline.means[score])
        for score in SCORE_FIELDS
    }
    n_p = personal.reward.n.astype(np.int64)
    n_b = baseline.reward.n.astype(np.int64)
    with np.errstate(invalid="ignore"):
        significant = (welch["p_value"] < 0.05) & (n_p >= minimum) & (n_b >= minimum)
    return {
        "n_personalized": n_p,
        "n_baseline": n_b,
        "sample_size": n_p + n_b,
        "n_outcomes_personalized": personal.outcomes.astype(np.int64),
        "n_outcomes_baseline": baseline.outcomes.astype(np.int64),
        "mean_personalized": personal.reward.mean,
        "mean_baseline": baseline.reward.mean,
        "difference": welch["difference"],
        "standard_error": welch["standard_error"],
        "ci_lower": welch["ci_lower"],
        "ci_upper": welch["ci_upper"],
        "correlation": correlation["r"],
        "p_value": welch["p_value"],
        "composite_score": stats.composite_many(improvements, weights),
        "is_statistically_significant": significant,
        **{column: improvements[score] for score, column in IMPROVEMENT_COLUMNS.items()},
    }
