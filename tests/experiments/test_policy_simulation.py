"""The per-learner bandit's confidence (DESIGN.md §5.5): the prior strength estimated from
the data, the posterior by hand, and regret in simulation against Thompson and uniform."""

import numpy as np
import pytest
from scipy import stats as scipy_stats

from experiments import bandits
from experiments.policy_simulation import regret_table


def test_population_prior__recovers_k_from_known_truth():
    """400 learners, τ = 0.05 between learners, σ = 0.2 within: k = 0.04 / 0.0025 = 16."""
    rng = np.random.default_rng(3)
    means = rng.normal(0.5, 0.05, 400)
    counts = rng.integers(5, 40, 400)
    rewards = [rng.normal(m, 0.2, c) for m, c in zip(means, counts, strict=True)]
    prior = bandits.population_prior(
        counts, [r.sum() for r in rewards], [(r**2).sum() for r in rewards], fallback=10.0
    )
    assert prior.estimated is True
    assert prior.within_variance == pytest.approx(0.04, rel=0.05)
    assert prior.prior_strength == pytest.approx(16.0, rel=0.35)


def test_population_prior__floor_cap_and_fallback():
    rng = np.random.default_rng(4)
    same = [rng.normal(0.5, 0.2, 20) for _ in range(50)]  # no heterogeneity: τ² ≈ 0 → cap
    n = [20] * 50
    capped = bandits.population_prior(
        n, [r.sum() for r in same], [(r**2).sum() for r in same], fallback=10
    )
    assert capped.prior_strength == 100.0
    few = bandits.population_prior([3, 4], [1.5, 2.0], [0.9, 1.2], fallback=10.0)
    assert (few.prior_strength, few.estimated) == (10.0, False)
    assert np.isfinite(few.within_variance)  # every reward together
    assert np.isnan(bandits.population_prior([], [], [], fallback=10.0).within_variance)


def test_posterior_confidence__hand_computed():
    # arm 1: n 30, ȳ 0.8, μ 0.6; baseline: n 10, ȳ 0.4, μ 0.4; k 10, σ² 0.04
    m1, m0 = (30 * 0.8 + 10 * 0.6) / 40, (10 * 0.4 + 10 * 0.4) / 20
    z = (m1 - m0) / np.sqrt(0.04 / 40 + 0.04 / 20)
    confidence = bandits.posterior_confidence(
        [[10, 30]], [[0.4, 0.8]], [0.4, 0.6], 0, prior_strength=10.0, within_variance=0.04
    )
    assert confidence[0, 1] == pytest.approx(scipy_stats.norm.cdf(z))
    assert confidence[0, 0] == 0.5
    unknown = bandits.posterior_confidence(
        [[0, 0]], [[0, 0]], [0.4, 0.6], 0, prior_strength=10.0, within_variance=float("nan")
    )
    assert np.isnan(unknown).all()


def test_exploit_indices__gate_ties_and_undefined():
    estimates = np.array([[0.4, 0.6], [0.5, 0.5], [0.4, 0.6]])
    confidence = np.array([[0.5, 0.9], [0.5, 0.9], [0.5, np.nan]])
    assert bandits.exploit_indices(estimates, confidence, 0, 0.85).tolist() == [1, 0, 0]
    assert bandits.exploit_indices(estimates, confidence, 0, 0.95).tolist() == [0, 0, 0]


def test_population_prior__arms_that_differ_are_not_learners_that_differ():
    """Two arms 0.1 apart, no learner heterogeneity: centred on each arm's mean, τ² ≈ 0."""
    rng = np.random.default_rng(6)
    rows = [(arm, rng.normal(0.45 + 0.1 * arm, 0.2, 20)) for arm in (0, 1) for _ in range(100)]
    prior = bandits.population_prior(
        [20] * 200,
        [r.sum() for _, r in rows],
        [(r**2).sum() for _, r in rows],
        fallback=10.0,
        arm=[a for a, _ in rows],
    )
    assert prior.prior_strength == 100.0


def test_arm_prior_strengths__population_uncertainty_counts():
    assert bandits.arm_prior_strengths(16.0, [0, 16, 10_000]).tolist() == pytest.approx(
        [0.0, 8.0, 16.0 * 10_000 / 10_016]
    )


def test_regret__every_level_within_1_3_of_thompson_and_below_uniform():
    """500 learners × 50 decisions, 4 arms +0/0.02/0.05/0.10 over 0.45, learner
    heterogeneity sd 0.05 and none; the mean over 5 seeds, as manage.py
    simulate_bandit_policies prints it. The comparator samples from the same posterior and
    explores with the same ε (§4 requires it of every level)."""
    for row in regret_table(range(5)):
        assert row.vs_thompson <= 1.3, str(row)
        assert row.vs_uniform < 1.0, str(row)
