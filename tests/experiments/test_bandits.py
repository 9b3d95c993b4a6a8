"""Bandit policies and weights: simulations with fixed seeds, exact integrals, hand values."""

import numpy as np
import pytest
from scipy import integrate, stats

from experiments.bandits import (
    CONFIDENCE_THRESHOLD_BY_LEVEL,
    EPSILON_BY_LEVEL,
    ArmOutcomes,
    UserArm,
    bandit_weights,
    epsilon_greedy_choose,
    epsilon_greedy_policy,
    epsilon_greedy_weights,
    shrunk_estimate,
    thompson_weights,
    ucb1_weights,
    with_min_share,
)

K_PRIOR = 10.0


def _arms(best_confidence: float) -> list[UserArm]:
    return [
        UserArm("conservative", 5, 0.40, 0.40, 0.7, is_baseline=True),
        UserArm("balanced", 5, 0.45, 0.45, 0.7),
        UserArm("pattern_heavy", 30, 0.80, 0.60, best_confidence),
        UserArm("prediction_heavy", 0, 0.0, 0.50, 0.7),
    ]


def _simulate(arms, level, draws=20_000, seed=2024):
    rng = np.random.default_rng(seed)
    chosen = np.empty(draws, dtype=int)
    propensities = np.empty(draws)
    for i in range(draws):
        chosen[i], propensities[i] = epsilon_greedy_choose(
            arms,
            epsilon=EPSILON_BY_LEVEL[level],
            threshold=CONFIDENCE_THRESHOLD_BY_LEVEL[level],
            prior_strength=K_PRIOR,
            rng=rng,
        )
    return chosen, propensities


def test_shrunk_estimate__hand_computed():
    # (30·0.8 + 10·0.6) / 40 = 0.75
    assert shrunk_estimate(UserArm("a", 30, 0.8, 0.6, 0.7), K_PRIOR) == pytest.approx(0.75)
    # no data of one's own: the population mean
    assert shrunk_estimate(UserArm("a", 0, 0.0, 0.5, 0.7), K_PRIOR) == pytest.approx(0.5)


def test_medium__confident_best_arm__chosen_90_plus_10_over_k():
    arms = _arms(best_confidence=0.72)
    chosen, _ = _simulate(arms, "MEDIUM")
    k = len(arms)
    expected = 0.9 + 0.1 / k
    share = (chosen == 2).mean()
    standard_error = np.sqrt(expected * (1 - expected) / len(chosen))
    assert abs(share - expected) < 2 * standard_error


def test_low__confidence_080__baseline_exploited():
    arms = _arms(best_confidence=0.80)  # below LOW's 0.85
    chosen, _ = _simulate(arms, "LOW")
    k = len(arms)
    expected = 0.95 + 0.05 / k
    share = (chosen == 0).mean()
    standard_error = np.sqrt(expected * (1 - expected) / len(chosen))
    assert abs(share - expected) < 2 * standard_error
    # the confident-but-not-enough arm is only explored: ε/k (three standard errors)
    assert abs((chosen == 2).mean() - 0.05 / k) < 3 * np.sqrt(0.0125 * 0.9875 / len(chosen))


@pytest.mark.parametrize("level", ["LOW", "MEDIUM", "HIGH"])
def test_policy__propensities_sum_to_one_and_match_logged(level):
    arms = _arms(best_confidence=0.9)
    policy = epsilon_greedy_policy(
        arms,
        epsilon=EPSILON_BY_LEVEL[level],
        threshold=CONFIDENCE_THRESHOLD_BY_LEVEL[level],
        prior_strength=K_PRIOR,
    )
    assert policy.sum() == pytest.approx(1.0)
    chosen, propensities = _simulate(arms, level, draws=2_000)
    assert np.allclose(propensities, policy[chosen])
    # Logged propensity of each arm, once per arm, sums to 1 over the arms.
    logged = {int(c): p for c, p in zip(chosen, propensities, strict=True)}
    assert len(logged) == len(arms)
    assert sum(logged.values()) == pytest.approx(1.0)


def test_policy__ties_go_to_the_baseline():
    arms = [UserArm("b", 0, 0, 0.5, 0.9), UserArm("a", 0, 0, 0.5, 0.9, is_baseline=True)]
    policy = epsilon_greedy_policy(arms, epsilon=0.1, threshold=0.7, prior_strength=K_PRIOR)
    assert policy.tolist() == pytest.approx([0.05, 0.95])


def _exact_probability_best(means, sd):
    """P(arm i is best) = ∫ φ_i(x) Π_{j≠i} Φ_j(x) dx, by quadrature."""
    result = []
    for i, mean in enumerate(means):
        others = [m for j, m in enumerate(means) if j != i]

        def integrand(x, mean=mean, others=others):
            value = stats.norm.pdf(x, mean, sd)
            for other in others:
                value *= stats.norm.cdf(x, other, sd)
            return value

        result.append(integrate.quad(integrand, -2, 2.5, limit=200)[0])
    return np.array(result)


def test_thompson__matches_exact_probability_of_being_best():
    # Posteriors N(0, 0.1²), N(0.1, 0.1²), N(0.2, 0.1²): variance/n = 0.01.
    arms = [
        ArmOutcomes("a", 100, 0.0, 1.0),
        ArmOutcomes("b", 100, 0.1, 1.0),
        ArmOutcomes("c", 100, 0.2, 1.0),
    ]
    exact = _exact_probability_best([0.0, 0.1, 0.2], 0.1)
    assert exact.sum() == pytest.approx(1.0, abs=1e-6)
    weights = thompson_weights(arms, rng=np.random.default_rng(11))
    assert np.abs(weights - exact).max() < 0.01


def test_thompson__same_seed_same_weights():
    arms = [ArmOutcomes("a", 30, 0.4, 0.05), ArmOutcomes("b", 30, 0.45, 0.05)]
    first = thompson_weights(arms, rng=np.random.default_rng(5))
    second = thompson_weights(arms, rng=np.random.default_rng(5))
    assert first.tolist() == second.tolist()


def test_epsilon_greedy_weights__hand_computed():
    arms = [
        ArmOutcomes("a", 30, 0.4, 0.1),
        ArmOutcomes("b", 30, 0.6, 0.1),
        ArmOutcomes("c", 30, 0.5, 0.1),
    ]
    # 1 − ε + ε/k = 0.9 + 0.0333…, others ε/k
    assert epsilon_greedy_weights(arms, epsilon=0.1).tolist() == pytest.approx(
        [0.1 / 3, 0.9 + 0.1 / 3, 0.1 / 3]
    )


def test_ucb1__bonus_favours_the_less_tried_arm():
    # a: 0.6 + √(2 ln 110 / 100) = 0.9066; b: 0.5 + √(2 ln 110 / 10) = 1.4697
    arms = [ArmOutcomes("a", 100, 0.6, 0.1), ArmOutcomes("b", 10, 0.5, 0.1)]
    assert ucb1_weights(arms).tolist() == [0.0, 1.0]


def test_min_share__floor_kept_and_sum_one():
    weights = with_min_share([1.0, 0.0, 0.0], 0.01)
    assert weights.tolist() == pytest.approx([0.98, 0.01, 0.01])
    weights = with_min_share([0.7, 0.295, 0.005], 0.05)
    assert weights.min() >= 0.05 - 1e-12
    assert weights.sum() == pytest.approx(1.0)
    # the free arms keep their ratio: 0.7 / 0.295
    assert weights[0] / weights[1] == pytest.approx(0.7 / 0.295)


def test_bandit_weights__burn_in_keeps_equal_weights():
    arms = [ArmOutcomes("a", 19, 0.9, 0.1), ArmOutcomes("b", 50, 0.1, 0.1)]
    weights = bandit_weights(
        "UCB1", arms, burn_in=20, epsilon=0.1, min_share=0.01, rng=np.random.default_rng(0)
    )
    assert weights.tolist() == [0.5, 0.5]


@pytest.mark.parametrize("algorithm", ["THOMPSON", "EPSILON_GREEDY", "UCB1"])
def test_bandit_weights__after_burn_in__floor_and_best_favoured(algorithm):
    arms = [ArmOutcomes("a", 40, 0.2, 0.04), ArmOutcomes("b", 40, 0.8, 0.04)]
    weights = bandit_weights(
        algorithm, arms, burn_in=20, epsilon=0.1, min_share=0.05, rng=np.random.default_rng(0)
    )
    assert weights.sum() == pytest.approx(1.0)
    assert weights.min() >= 0.05 - 1e-12
    assert weights[1] > weights[0]


def test_bandit_weights__unknown_algorithm__refused():
    with pytest.raises(ValueError, match="unknown algorithm"):
        bandit_weights(
            "RANDOM",
            [ArmOutcomes("a", 30, 0.1, 0.1)],
            burn_in=0,
            epsilon=0.1,
            min_share=0.0,
            rng=np.random.default_rng(0),
        )


# --- Ties share equally (DESIGN.md §5.4) ------------------------------------------------------


def test_thompson__tied_zero_variance_arms__share_equally():
    arms = [ArmOutcomes("a", 30, 0.5, 0.0), ArmOutcomes("b", 30, 0.5, 0.0)]
    weights = thompson_weights(arms, rng=np.random.default_rng(0))
    assert weights.tolist() == [0.5, 0.5]


def test_thompson__tie_among_best_only():
    arms = [
        ArmOutcomes("a", 30, 0.5, 0.0),
        ArmOutcomes("b", 30, 0.5, 0.0),
        ArmOutcomes("c", 30, 0.2, 0.0),
    ]
    assert thompson_weights(arms, rng=np.random.default_rng(0)).tolist() == [0.5, 0.5, 0.0]


def test_epsilon_greedy_and_ucb1__ties_share_equally():
    arms = [ArmOutcomes("a", 30, 0.5, 0.01), ArmOutcomes("b", 30, 0.5, 0.01)]
    assert epsilon_greedy_weights(arms, epsilon=0.1).tolist() == pytest.approx([0.5, 0.5])
    assert ucb1_weights(arms).tolist() == pytest.approx([0.5, 0.5])
