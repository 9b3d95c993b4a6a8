"""Bandit policies (DESIGN.md §4 step 3 and §5.4). Pure: numpy only, and randomness only
from an `np.random.Generator` passed in.

Per-user epsilon-greedy (§4):
    estimate(a) = (n_u·mean_u + k·mean_pop) / (n_u + k)           shrinkage toward the population
    with probability ε explore uniformly over the K arms; otherwise exploit the arm with the
    highest estimate if its confidence reaches the level's threshold, else the baseline, so
    P(a) = ε/K + (1 − ε)·[a is the exploit choice]  — the exact propensity that is logged.

Experiment weights (§5.4), given per arm the users with outcomes n, mean and variance:
    THOMPSON        P(arm is best) under independent N(mean, var/n), by Monte Carlo
    EPSILON_GREEDY  1 − ε + ε/K to the best mean, ε/K to the others
    UCB1            everything to argmax mean + √(2 ln N / n), N = Σ n
    until every arm has `burn_in` users the weights stay equal; every arm keeps at least
    `min_share`, the rest renormalised. Exactly tied arms share equally (a draw, the best mean
    or the best bound that several arms reach is split between them).
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats

EPSILON_BY_LEVEL = {"LOW": 0.05, "MEDIUM": 0.10, "HIGH": 0.20}
CONFIDENCE_THRESHOLD_BY_LEVEL = {"LOW": 0.85, "MEDIUM": 0.70, "HIGH": 0.60}
THOMPSON_DRAWS = 10_000


@dataclass(frozen=True)
class UserArm:
    """One strategy as the per-user policy sees it."""

    key: str
    n_user: int
    mean_user: float
    mean_population: float
    confidence: float
    is_baseline: bool = False

    def __post_init__(self) -> None:
        if self.n_user < 0:
            raise ValueError("n_user must be non-negative")
        if not 0.0 <= self.confidence <= 1.0:
            raise ValueError("confidence must be within [0, 1]")


def shrunk_estimate(arm: UserArm, prior_strength: float) -> float:
    """(n_u·mean_u + k·mean_pop) / (n_u + k)."""
    total = arm.n_user + prior_strength
    if total == 0:
        return arm.mean_population
    return (arm.n_user * arm.mean_user + prior_strength * arm.mean_population) / total


def exploit_choice(
    arms: Sequence[UserArm], *, threshold: float, prior_strength: "float | np.ndarray"
) -> int:
    """Index of the arm exploitation picks: the best estimate (ties go to the baseline, then
    to key order) if its confidence reaches the threshold, else the baseline. The prior
    strength is one k or one per arm (`arm_prior_strengths`)."""
    strengths = np.broadcast_to(np.asarray(prior_strength, dtype=float), (len(arms),))
    estimates = [shrunk_estimate(arm, float(k)) for arm, k in zip(arms, strengths, strict=True)]
    best = min(
        range(len(arms)), key=lambda i: (-estimates[i], not arms[i].is_baseline, arms[i].key)
    )
    if arms[best].confidence >= threshold:
        return best
    return baseline_index(arms)


def baseline_index(arms: Sequence[UserArm]) -> int:
    for index, arm in enumerate(arms):
        if arm.is_baseline:
            return index
    raise ValueError("the arms include no baseline")


def epsilon_greedy_policy(
    arms: Sequence[UserArm],
    *,
    epsilon: float,
    threshold: float,
    prior_strength: "float | np.ndarray",
) -> np.ndarray:
    """The probability of each arm under the policy; sums to 1."""
    if not arms:
        raise ValueError("at least one arm is needed")
    if not 0.0 <= epsilon <= 1.0:
        raise ValueError("epsilon must be within [0, 1]")
    k = len(arms)
    probabilities = np.full(k, epsilon / k)
    probabilities[exploit_choice(arms, threshold=threshold, prior_strength=prior_strength)] += (
        1.0 - epsilon
    )
    return probabilities


def epsilon_greedy_choose(
    arms: Sequence[UserArm],
    *,
    epsilon: float,
    threshold: float,
    prior_strength: "float | np.ndarray",
    rng: np.random.Generator,
) -> tuple[int, float]:
    """Draw an arm by the policy; returns (index, exact propensity of that arm)."""
    probabilities = epsilon_greedy_policy(
        arms, epsilon=epsilon, threshold=threshold, prior_strength=prior_strength
    )
    if rng.random() < epsilon:
        index = int(rng.integers(len(arms)))
    else:
        index = exploit_choice(arms, threshold=threshold, prior_strength=prior_strength)
    return index, float(probabilities[index])


# --- The per-learner posterior (§5.5) -------------------------------------------------------

PRIOR_STRENGTH_FLOOR = 1.0
PRIOR_STRENGTH_CAP = 100.0
MIN_LEARNERS_FOR_PRIOR = 10


@dataclass(frozen=True)
class PopulationPrior:
    """What a context's learners say about everyone: the prior strength k = σ²_within /
    τ²_between and the within-learner variance σ²_within of a reward (NaN when unknown)."""

    prior_strength: float
    within_variance: float
    learners: int = 0
    estimated: bool = False


@dataclass(frozen=True)
class ArmSums:
    """One arm's learner statistics summed over learners (what SQL aggregates): over
    learners with a reward, their number m, Σ ȳ_i, Σ ȳ_i² and Σ 1/n_i; over learners with two
    or more, their number, Σ (n_i − 1) and Σ (Σ²_i − Σ_i²/n_i); and Σ n_i, Σ Σ_i, Σ Σ²_i."""

    learners: float
    sum_means: float
    sum_means_sq: float
    sum_inverse_n: float
    several: float
    dof: float
    spread: float
    rewards: float
    total: float
    total_sq: float

    @classmethod
    def of(cls, n: np.ndarray, total: np.ndarray, total_sq: np.ndarray) -> "ArmSums":
        n, total, total_sq = (np.asarray(a, dtype=float) for a in (n, total, total_sq))
        some, several = n >= 1, n >= 2
        means = total[some] / n[some]
        return cls(
            learners=float(some.sum()),
            sum_means=float(means.sum()),
            sum_means_sq=float((means**2).sum()),
            sum_inverse_n=float((1.0 / n[some]).sum()),
            several=float(several.sum()),
            dof=float((n[several] - 1).sum()),
            spread=float(
                np.maximum(total_sq[several] - total[several] ** 2 / n[several], 0.0).sum()
            ),
            rewards=float(n.sum()),
            total=float(total.sum()),
            total_sq=float(total_sq.sum()),
        )


def population_prior_from_sums(arms: Sequence[ArmSums], *, fallback: float) -> PopulationPrior:
    """Method of moments over learners (§5.5), each learner's mean centred on their arm's
    mean so that arms differing is not taken for learners differing:

        σ²_w = Σ (Σ²_i − Σ_i²/n_i) / Σ (n_i − 1)                 over learners with n_i ≥ 2,
        τ² = Σ_arms Σ_i (ȳ_i − ȳ_arm)² / (m − arms) − σ²_w · mean(1/n_i),
        k = clamp(σ²_w / τ², 1, 100)   (100 when τ² ≤ 0: no detectable heterogeneity).

    With fewer than 10 learners of two rewards or more, k is `fallback`
    (BANDIT_PRIOR_STRENGTH) and σ²_w the variance of all rewards together (an upper bound:
    it includes the spread between learners); NaN with fewer than two rewards."""
    several = sum(a.several for a in arms)
    dof = sum(a.dof for a in arms)
    within = sum(a.spread for a in arms) / dof if dof > 0 else float("nan")
    learners = sum(a.learners for a in arms)
    groups = sum(1 for a in arms if a.learners > 0)
    if several < MIN_LEARNERS_FOR_PRIOR or not np.isfinite(within) or learners - groups < 1:
        count = sum(a.rewards for a in arms)
        total, total_sq = sum(a.total for a in arms), sum(a.total_sq for a in arms)
        overall = max(total_sq - total**2 / count, 0.0) / (count - 1) if count >= 2 else np.nan
        return PopulationPrior(fallback, float(overall), int(several), estimated=False)
    deviations = sum(a.sum_means_sq - a.sum_means**2 / a.learners for a in arms if a.learners > 0)
    mean_inverse_n = sum(a.sum_inverse_n for a in arms) / learners
    between = deviations / (learners - groups) - within * mean_inverse_n
    if between <= 0:
        strength = PRIOR_STRENGTH_CAP
    else:
        strength = float(np.clip(within / between, PRIOR_STRENGTH_FLOOR, PRIOR_STRENGTH_CAP))
    return PopulationPrior(strength, float(within), int(several), estimated=True)


def population_prior(
    n: np.ndarray,
    total: np.ndarray,
    total_sq: np.ndarray,
    *,
    fallback: float,
    arm: np.ndarray | None = None,
) -> PopulationPrior:
    """`population_prior_from_sums` from one row per learner-arm (n_i, Σ, Σ² of its rewards)
    and the arm of each row."""
    n, total, total_sq = (np.asarray(a, dtype=float) for a in (n, total, total_sq))
    arms = np.zeros(n.size, dtype=np.int64) if arm is None else np.asarray(arm)
    return population_prior_from_sums(
        [
            ArmSums.of(n[arms == key], total[arms == key], total_sq[arms == key])
            for key in np.unique(arms)
        ],
        fallback=fallback,
    )


def arm_prior_strengths(prior_strength: float, arm_rewards: np.ndarray) -> np.ndarray:
    """The prior strength of each arm once the population mean's own uncertainty is counted:
    θ ~ N(μ̂, τ² + σ²/N_a) with τ² = σ²/k and N_a the arm's rewards in the population, so
    k_a = σ²/(τ² + σ²/N_a) = k·N_a/(k + N_a) (0 for an arm nobody has tried)."""
    counts = np.asarray(arm_rewards, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        strengths = prior_strength * counts / (prior_strength + counts)
    return np.where(counts > 0, strengths, 0.0)


def posterior_means(
    n: np.ndarray, mean: np.ndarray, population: np.ndarray, prior_strength: float | np.ndarray
) -> np.ndarray:
    """(n_u·ȳ_u + k·μ_pop) / (n_u + k), elementwise (learners × arms; k per arm or one)."""
    n = np.asarray(n, dtype=float)
    strength = np.asarray(prior_strength, dtype=float)
    total = n + strength
    with np.errstate(divide="ignore", invalid="ignore"):
        shrunk = (n * np.asarray(mean) + strength * np.asarray(population)) / total
    return np.where(total > 0, shrunk, np.broadcast_to(population, shrunk.shape))


def posterior_confidence(
    n: np.ndarray,
    mean: np.ndarray,
    population: np.ndarray,
    baseline: int,
    *,
    prior_strength: float | np.ndarray,
    within_variance: float,
) -> np.ndarray:
    """§5.5: P(θ_a > θ_baseline | the learner's data) under θ_a ~ N(μ_pop,a, σ²_w/k) with
    ȳ_a ~ N(θ_a, σ²_w/n): the posterior of θ_a is N(m_a, σ²_w/(n_a + k)), m_a the shrunk mean,
    so the confidence is Φ((m_a − m_b) / √(σ²_w/(n_a + k) + σ²_w/(n_b + k))). Arrays are
    learners × arms; the baseline's own column is 0.5; NaN when σ²_w is unknown."""
    n = np.atleast_2d(np.asarray(n, dtype=float))
    mean = np.atleast_2d(np.asarray(mean, dtype=float))
    population = np.broadcast_to(np.asarray(population, dtype=float), n.shape)
    m = posterior_means(n, mean, population, prior_strength)
    with np.errstate(divide="ignore"):
        v = within_variance / (n + np.asarray(prior_strength, dtype=float))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (m - m[:, [baseline]]) / np.sqrt(v + v[:, [baseline]])
    confidence = scipy_stats.norm.cdf(z)
    confidence[:, baseline] = 0.5
    if not np.isfinite(within_variance) or within_variance <= 0:
        confidence[:] = np.nan
    return confidence


def exploit_indices(
    estimates: np.ndarray, confidence: np.ndarray, baseline: int, threshold: float
) -> np.ndarray:
    """Per learner (row): the arm of the highest estimate (ties to the baseline, then to the
    lowest index) if its confidence reaches the threshold, else the baseline. An undefined
    confidence never passes."""
    estimates = np.atleast_2d(estimates)
    preferred = estimates.copy()
    best_value = preferred.max(axis=1, keepdims=True)
    tied_baseline = preferred[:, baseline] == best_value[:, 0]
    best = np.argmax(preferred, axis=1)
    best = np.where(tied_baseline, baseline, best)
    passes = confidence[np.arange(best.size), best] >= threshold
    return np.where((best == baseline) | ~passes, baseline, best)


# --- Experiment weights (§5.4) --------------------------------------------------------------


@dataclass(frozen=True)
class ArmOutcomes:
    """Sufficient statistics of one experiment arm: users with outcomes, their mean value and
    its sample variance."""

    key: str
    n: int
    mean: float
    variance: float

    def __post_init__(self) -> None:
        if self.n < 0 or self.variance < 0:
            raise ValueError("n and variance must be non-negative")


def thompson_weights(
    arms: Sequence[ArmOutcomes], *, rng: np.random.Generator, draws: int = THOMPSON_DRAWS
) -> np.ndarray:
    """P(arm is best) under independent N(mean, var/n), estimated from `draws` joint draws."""
    means = np.array([arm.mean for arm in arms], dtype=float)
    scales = np.sqrt(np.array([arm.variance / max(arm.n, 1) for arm in arms], dtype=float))
    samples = rng.normal(means, scales, size=(draws, len(arms)))
    # A draw where several arms share the maximum (zero-variance arms with equal means)
    # is a win split between them, not a win for the first.
    best = samples == samples.max(axis=1, keepdims=True)
    return (best / best.sum(axis=1, keepdims=True)).sum(axis=0) / draws


def _share_among_best(scores: np.ndarray) -> np.ndarray:
    """1 split equally among the arms with the highest score."""
    best = scores == scores.max()
    return best / best.sum()


def epsilon_greedy_weights(arms: Sequence[ArmOutcomes], *, epsilon: float) -> np.ndarray:
    k = len(arms)
    means = np.array([arm.mean for arm in arms], dtype=float)
    return np.full(k, epsilon / k) + (1.0 - epsilon) * _share_among_best(means)


def ucb1_weights(arms: Sequence[ArmOutcomes]) -> np.ndarray:
    counts = np.array([max(arm.n, 1) for arm in arms], dtype=float)
    means = np.array([arm.mean for arm in arms], dtype=float)
    scores = means + np.sqrt(2.0 * np.log(counts.sum()) / counts)
    return _share_among_best(scores)


def with_min_share(weights: Sequence[float] | np.ndarray, min_share: float) -> np.ndarray:
    """Raise every arm below `min_share` to it and scale the others down in proportion to
    their weight (water-filling), so the result sums to 1 and no arm is below the floor."""
    original = np.asarray(weights, dtype=float)
    k = original.size
    if min_share * k > 1.0 + 1e-12:
        raise ValueError("min_share times the number of arms exceeds 1")
    original = original / original.sum()
    floored = np.zeros(k, dtype=bool)
    values = original
    # At most k rounds: each adds an arm to the floor or stops. Some arm always stays free,
    # since the weights sum to 1 and min_share·k ≤ 1.
    for _ in range(k):
        now_floored = floored | (values < min_share)
        free_mass = 1.0 - min_share * now_floored.sum()
        free = np.where(now_floored, 0.0, original)
        values = np.where(now_floored, min_share, free * (free_mass / free.sum()))
        if (now_floored == floored).all():
            break
        floored = now_floored
    return values


def bandit_weights(
    algorithm: str,
    arms: Sequence[ArmOutcomes],
    *,
    burn_in: int,
    epsilon: float,
    min_share: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """§5.4: equal weights until every arm has `burn_in` users with outcomes, then the
    algorithm's weights with every arm kept at `min_share` or more."""
    if not arms:
        raise ValueError("at least one arm is needed")
    if any(arm.n < burn_in for arm in arms):
        return np.full(len(arms), 1.0 / len(arms))
    if algorithm == "THOMPSON":
        raw = thompson_weights(arms, rng=rng)
    elif algorithm == "EPSILON_GREEDY":
        raw = epsilon_greedy_weights(arms, epsilon=epsilon)
    elif algorithm == "UCB1":
        raw = ucb1_weights(arms)
    else:
        raise ValueError(f"unknown algorithm {algorithm!r}")
    return with_min_share(raw, min_share)
