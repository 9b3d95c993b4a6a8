"""Off-policy evaluation (DESIGN.md §5.6): the value — mean reward per decision — a target
policy would have had on the decisions the log holds, from the propensities the decide call
logged. Pure: numpy and scipy, over arrays, one entry per logged decision i with

    a_i   the strategy chosen (an index into the strategies),
    p_i   its logged propensity (the exact probability the logging policy chose it, > 0),
    r_i   its reward (the outcome's reward, or a default for a decision without outcome),
    π_i   the probability the target policy gives a_i in that decision's situation, and for
          the doubly robust estimate π(a | i) for every strategy a.

With importance weights w_i = π_i / p_i:

    IPS    V̂ = (1/n) Σ w_i r_i
    SNIPS  V̂ = Σ w_i r_i / Σ w_i                       (self-normalised)
    DR     V̂ = (1/n) Σ [Σ_a π(a | i) q̂(a) + w_i (r_i − q̂(a_i))]

where q̂(a) is the direct model: strategy a's mean logged reward. Intervals are 95% normal
intervals from the sandwich (influence-function) variance: for IPS and DR the sample variance
of the summands over n; for SNIPS that of ψ_i = w_i (r_i − V̂) / w̄, the delta method for a
ratio of means. Summed per learner (cluster-robust: Var = G/(G−1)·Σ_g ψ_g²/n² over the G
learners) they allow for the decisions of one learner being alike; with one decision per
cluster the two agree. The effective sample size is (Σ w)² / Σ w² (Kish); below MIN_EFFECTIVE_SAMPLE
an estimate says it is unreliable. An undefined estimate (no decisions, or none the target
would have made: Σ w = 0) is NaN for every estimator."""

import functools
from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats

MIN_EFFECTIVE_SAMPLE = 100


@dataclass(frozen=True)
class Estimate:
    value: float
    standard_error: float
    ci_lower: float
    ci_upper: float
    effective_sample_size: float
    decisions: int

    @property
    def reliable(self) -> bool:
        return bool(self.effective_sample_size >= MIN_EFFECTIVE_SAMPLE)


@dataclass(frozen=True)
class PolicyValue:
    ips: Estimate
    snips: Estimate
    dr: Estimate


def _estimate(
    value: float,
    cluster_terms: np.ndarray,
    scale: float,
    ess: float,
    n: int,
    confidence: float,
) -> Estimate:
    """The estimate with its cluster-robust sandwich interval: Var = G/(G−1) · Σ_g ψ_g² / scale²
    over the G clusters' summed centred influence ψ_g."""
    clusters = int(cluster_terms.size)
    if n < 2 or clusters < 2 or not np.isfinite(value) or scale <= 0:
        nan = float("nan")
        return Estimate(value if n else nan, nan, nan, nan, ess, n)
    variance = clusters / (clusters - 1) * float(np.square(cluster_terms).sum()) / scale**2
    se = float(np.sqrt(variance))
    z = float(scipy_stats.norm.ppf(0.5 + confidence / 2))
    return Estimate(float(value), se, float(value - z * se), float(value + z * se), ess, n)


def direct_model(actions: np.ndarray, rewards: np.ndarray, strategies: int) -> np.ndarray:
    """q̂(a): each strategy's mean logged reward (0 for a strategy never logged)."""
    return _direct_model(actions, np.ones(len(actions)), rewards, strategies)


def _direct_model(
    actions: np.ndarray, counts: np.ndarray, reward_sums: np.ndarray, strategies: int
) -> np.ndarray:
    totals = np.bincount(actions, weights=reward_sums, minlength=strategies)
    n = np.bincount(actions, weights=counts, minlength=strategies)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(n > 0, totals / np.where(n > 0, n, 1), 0.0)


@dataclass(frozen=True)
class LogRows:
    """A log summarised in rows that share a strategy and a cluster (a learner): per row the
    decisions n, Σ r, Σ w·r, Σ w, Σ w² and Σ π(· | i) (the target's probabilities summed over
    the row's decisions, one column per strategy). One decision per row is the plain log."""

    actions: np.ndarray
    clusters: np.ndarray
    decisions: np.ndarray
    reward_sum: np.ndarray
    weighted_reward_sum: np.ndarray
    weight_sum: np.ndarray
    weight_sq_sum: np.ndarray
    target_sum: np.ndarray


def policy_value_of_rows(rows: LogRows, *, confidence: float = 0.95) -> PolicyValue:
    """IPS, SNIPS and DR from row sums, with intervals clustered by `rows.clusters`: a
    learner's decisions are not independent when one draw (an experiment's sticky assignment)
    or one learner's taste shapes them all, and the sandwich summed per cluster allows for it.
    With one decision per cluster it is the plain sandwich of the module docstring."""
    n = int(rows.decisions.sum())
    if n == 0:
        empty = _estimate(float("nan"), np.empty(0), 0.0, 0.0, 0, confidence)
        return PolicyValue(empty, empty, empty)
    _, cluster = np.unique(rows.clusters, return_inverse=True)
    per_cluster = functools.partial(np.bincount, cluster)
    total_weight = float(rows.weight_sum.sum())
    weight_sq = float(rows.weight_sq_sum.sum())
    ess = total_weight**2 / weight_sq if weight_sq > 0 else 0.0

    if total_weight <= 0:
        # No logged decision the target would have made: nothing is known of its value
        # (IPS would say 0 with a zero-width interval, DR would extrapolate from a reward
        # model of a strategy never logged), so every estimate is undefined.
        undefined = _estimate(float("nan"), np.empty(0), 0.0, ess, n, confidence)
        return PolicyValue(undefined, undefined, undefined)

    ips_value = float(rows.weighted_reward_sum.sum()) / n
    ips_terms = per_cluster(rows.weighted_reward_sum - ips_value * rows.decisions)
    ips = _estimate(ips_value, ips_terms, n, ess, n, confidence)

    snips_value = float(rows.weighted_reward_sum.sum()) / total_weight
    snips_terms = per_cluster(rows.weighted_reward_sum - snips_value * rows.weight_sum)
    snips = _estimate(snips_value, snips_terms, total_weight, ess, n, confidence)

    strategies = rows.target_sum.shape[1]
    q = _direct_model(rows.actions, rows.decisions, rows.reward_sum, strategies)
    dr_sums = rows.target_sum @ q + rows.weighted_reward_sum - q[rows.actions] * rows.weight_sum
    dr_value = float(dr_sums.sum()) / n
    dr = _estimate(
        dr_value, per_cluster(dr_sums - dr_value * rows.decisions), n, ess, n, confidence
    )
    return PolicyValue(ips=ips, snips=snips, dr=dr)


def policy_value(
    *,
    actions: np.ndarray,
    propensities: np.ndarray,
    rewards: np.ndarray,
    target: np.ndarray,
    clusters: np.ndarray | None = None,
    confidence: float = 0.95,
) -> PolicyValue:
    """IPS, SNIPS and DR estimates of a target policy's value. `target` is π(a | i): one row
    per decision, one column per strategy (rows sum to 1). `clusters` (a learner id per
    decision) makes the intervals cluster-robust; without it every decision is its own."""
    actions = np.asarray(actions, dtype=np.int64)
    propensities = np.asarray(propensities, dtype=float)
    rewards = np.asarray(rewards, dtype=float)
    n = int(actions.size)
    if n == 0:
        return policy_value_of_rows(
            LogRows(
                actions=np.empty(0, dtype=np.int64),
                clusters=np.empty(0),
                decisions=np.empty(0),
                reward_sum=np.empty(0),
                weighted_reward_sum=np.empty(0),
                weight_sum=np.empty(0),
                weight_sq_sum=np.empty(0),
                target_sum=np.empty((0, 1)),
            ),
            confidence=confidence,
        )
    target = np.asarray(target, dtype=float).reshape(n, -1)
    weights = target[np.arange(n), actions] / propensities
    rows = LogRows(
        actions=actions,
        clusters=np.arange(n) if clusters is None else np.asarray(clusters),
        decisions=np.ones(n),
        reward_sum=rewards,
        weighted_reward_sum=weights * rewards,
        weight_sum=weights,
        weight_sq_sum=np.square(weights),
        target_sum=target,
    )
    return policy_value_of_rows(rows, confidence=confidence)


def always(strategy: int, decisions: int, strategies: int) -> np.ndarray:
    """π for the policy that always chooses `strategy`."""
    target = np.zeros((decisions, strategies))
    target[:, strategy] = 1.0
    return target
