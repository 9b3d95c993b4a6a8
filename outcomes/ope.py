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
ratio of means. The effective sample size is (Σ w)² / Σ w² (Kish); below MIN_EFFECTIVE_SAMPLE
an estimate says it is unreliable. An undefined estimate (no decisions, Σ w = 0) is NaN."""

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
    value: float, influence: np.ndarray, ess: float, n: int, confidence: float
) -> Estimate:
    if n < 2 or not np.isfinite(value):
        nan = float("nan")
        return Estimate(value if n else nan, nan, nan, nan, ess, n)
    se = float(np.std(influence, ddof=1) / np.sqrt(n))
    z = float(scipy_stats.norm.ppf(0.5 + confidence / 2))
    return Estimate(float(value), se, float(value - z * se), float(value + z * se), ess, n)


def direct_model(actions: np.ndarray, rewards: np.ndarray, strategies: int) -> np.ndarray:
    """q̂(a): each strategy's mean logged reward (0 for a strategy never logged)."""
    totals = np.bincount(actions, weights=rewards, minlength=strategies)
    counts = np.bincount(actions, minlength=strategies)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(counts > 0, totals / np.where(counts > 0, counts, 1), 0.0)


def policy_value(
    *,
    actions: np.ndarray,
    propensities: np.ndarray,
    rewards: np.ndarray,
    target: np.ndarray,
    confidence: float = 0.95,
) -> PolicyValue:
    """IPS, SNIPS and DR estimates of a target policy's value. `target` is π(a | i): one row
    per decision, one column per strategy (rows sum to 1)."""
    actions = np.asarray(actions, dtype=np.int64)
    propensities = np.asarray(propensities, dtype=float)
    rewards = np.asarray(rewards, dtype=float)
    n = int(actions.size)
    if n == 0:
        empty = _estimate(float("nan"), np.empty(0), 0.0, 0, confidence)
        return PolicyValue(empty, empty, empty)
    target = np.asarray(target, dtype=float).reshape(n, -1)
    chosen = target[np.arange(n), actions]
    weights = chosen / propensities
    total_weight = float(weights.sum())
    ess = total_weight**2 / float(np.square(weights).sum()) if total_weight > 0 else 0.0

    ips_terms = weights * rewards
    ips = _estimate(float(ips_terms.mean()), ips_terms, ess, n, confidence)

    if total_weight > 0:
        snips_value = float(ips_terms.sum() / total_weight)
        influence = weights * (rewards - snips_value) / weights.mean()
        snips = _estimate(snips_value, influence, ess, n, confidence)
    else:
        snips = _estimate(float("nan"), np.empty(0), ess, n, confidence)

    q = direct_model(actions, rewards, target.shape[1])
    dr_terms = target @ q + weights * (rewards - q[actions])
    dr = _estimate(float(dr_terms.mean()), dr_terms, ess, n, confidence)
    return PolicyValue(ips=ips, snips=snips, dr=dr)


def always(strategy: int, decisions: int, strategies: int) -> np.ndarray:
    """π for the policy that always chooses `strategy`."""
    target = np.zeros((decisions, strategies))
    target[:, strategy] = 1.0
    return target
