"""The contextual per-learner policy: §4 step 3 with `ADAPTIVE_POLICY=CONTEXTUAL_THOMPSON`
(epsilon-greedy, `bandits.epsilon_greedy_choose`, stays the default). Pure: numpy only, no
Django; randomness only from an `np.random.Generator` passed in.

The model. Learner u's mean reward under strategy a is

    θ_ua = x_uᵀβ_a + d_ua,   d_ua ~ N(0, τ²)

with x_u the learner's features (`learner_features`). A learner's own rewards under a have
mean ȳ_ua ~ N(θ_ua, σ²_w/n_ua), so over the population ȳ_ua ~ N(x_uᵀβ_a, τ² + σ²_w/n_ua): a
Bayesian linear regression per arm with known variances. In units of σ²_w each learner weighs
w_ua = σ²_w/(τ² + σ²_w/n_ua) = n_ua·k/(n_ua + k), k = σ²_w/τ² (a learner with one reward
counts little, one with many at most k), and with the population prior (§5.5's k and σ²_w)

    β_a ~ N(μ0_a, (σ²_w/λ)·I),  μ0_a = (population mean of a, 0, …, 0),  λ = k_pop

(each coefficient's prior sd is §5.5's τ: the whole spread between learners, some of which
the features may explain)

    A_a = λI + Σ_u w_ua x_u x_uᵀ,   b_a = λμ0_a + Σ_u w_ua ȳ_ua x_u,
    β_a | data ~ N(β̂_a = A_a⁻¹b_a, Σ_a = σ²_w·A_a⁻¹)                       (`fit_model`).

§5.5's τ² is measured around each arm's mean, so it includes what the features explain; the
learner-level τ² is the spread left around the regression (`residual_between_variance`),
never above §5.5's. The learner's own rewards are in the fit as well: with many learners one
learner's share of β̂ is small, as their share of the population means is in
epsilon-greedy's shrinkage.

For the learner deciding, with s_ua = n_ua/(n_ua + k) (k of the residual τ²):

* `sample_deviation=False` (the default) — linear Thompson sampling over what the population
  learns: a draw of β_a from its posterior, and the learner's deviation at its posterior mean
  given that draw, s_ua·(ȳ_ua − x_uᵀβ_a), so

      θ̃_ua ~ N((1 − s_ua)·x_uᵀβ̂_a + s_ua·ȳ_ua,  (1 − s_ua)²·x_uᵀΣ_a x_u);

* `sample_deviation=True` — the learner's θ_ua drawn from its whole posterior: prior
  N(x_uᵀβ̂_a, v0 = τ² + x_uᵀΣ_a x_u) updated with the learner's own n_ua rewards,
  1/v = 1/v0 + n_ua/σ²_w, m = v·(x_uᵀβ̂_a/v0 + n_ua·ȳ_ua/σ²_w).

Why the default does not draw the deviation: what a draw of d_ua explores can only be learnt
from that learner's own rewards, which at noise sd 0.2 against a spread of 0.05 take far more
decisions than a learner makes before the exploration pays. In the simulator (500 learners ×
28 days × 2 decisions, 4 seeds, 4,096 draws; experiments/simulator.py `compare_regret`),
against epsilon-greedy's cumulative regret: where features do not matter 0.96 ± 0.02 without
drawing it and 1.33 ± 0.05 with; where a learner's cohort decides the best strategy
0.52 ± 0.02 and 0.68 ± 0.05.

The policy (`contextual_policy`). Thompson sampling: P_TS(a) = P(θ̃_a is the largest of the
learner's draws), estimated from M joint draws (K×M normals). Its standard error is
√(p(1 − p)/M) ≤ 0.5/√M, below 0.01 from M = 2,501; THOMPSON_DRAWS = 4,096 gives at most
0.0078 (`monte_carlo_standard_error`). The level's exploration budget ε
(`bandits.EPSILON_BY_LEVEL`) is spent uniformly:

    π(a) = ε/K + (1 − ε)·P̂_TS(a),

and the strategy is then drawn from π, so the logged propensity π(chosen) is exactly the
probability the strategy was drawn with, as §5.6 needs: the Monte Carlo error moves the policy
a little away from exact Thompson sampling, never the propensity away from the truth. As
E[P̂_TS] = P_TS, the chance of each strategy before the draws are made is exactly
ε/K + (1 − ε)·P_TS whatever M is: M sets how noisy the logged propensities are, not how the
policy behaves. There is no confidence gate (§4's threshold serves epsilon-greedy's
exploitation): Thompson sampling already weighs a strategy by the probability that it is the
best one.

An undefined population prior (σ²_w NaN or not positive: fewer than two rewards in the
context) falls back to an uninformative but proper one: σ²_w = 0.25 (the largest variance of
a reward in [0, 1]) and τ² = σ²_w (k = 1), so every coefficient has prior sd 0.5.
"""

import functools
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from experiments import bandits

# --- Features --------------------------------------------------------------------------------

LEVELS = ("LOW", "MEDIUM", "HIGH")
LEARNING_STYLES = ("VISUAL", "AUDITORY", "READING", "KINESTHETIC", "MIXED")
READING_LENGTHS = ("SHORT", "MEDIUM", "LONG")
TONES = ("CASUAL", "FORMAL", "MYSTICAL")
SOFTWARE_LEVELS = ("BEGINNER", "INTERMEDIATE", "ADVANCED")
HARDWARE_LEVELS = ("NONE", "BASIC", "INTERMEDIATE", "ADVANCED")
ATTRIBUTE_BUCKETS = 8
WEAKNESS_CAP = 5

# The layout of a feature vector (indices and slices into it).
INTERCEPT = 0
LEVEL = slice(1, 4)  # personalization_level LOW, MEDIUM, HIGH, one-hot
STYLE = slice(4, 9)  # learning_style in LEARNING_STYLES order, one-hot; zeros when None
READING_LENGTH = 9  # SHORT 0, MEDIUM 0.5, LONG 1
TONE = slice(10, 13)  # tone_preference CASUAL, FORMAL, MYSTICAL, one-hot
SOFTWARE = 13  # software_level BEGINNER 0, INTERMEDIATE 0.5, ADVANCED 1
HARDWARE = 14  # hardware_level NONE 0, BASIC 1/3, INTERMEDIATE 2/3, ADVANCED 1
SKILL_MEAN = 15  # mean of skill_ratings (0 without ratings)
WEAKNESSES = 16  # min(number of weaknesses, WEAKNESS_CAP) / WEAKNESS_CAP
ATTRIBUTES = slice(17, 17 + ATTRIBUTE_BUCKETS)  # hashed client attributes
FEATURES = 17 + ATTRIBUTE_BUCKETS

_DEFAULT_READING_LENGTH = "MEDIUM"  # Preferences' defaults: absent Preferences mean them (§3)
_DEFAULT_TONE = "CASUAL"


def _ordinal(value: Any, scale: tuple[str, ...]) -> float:
    """The value's rank scaled to [0, 1]; 0 when missing or unknown."""
    if value not in scale:
        return 0.0
    return scale.index(value) / (len(scale) - 1)


def _one_hot(vector: np.ndarray, where: slice, value: Any, choices: tuple[str, ...]) -> None:
    if value in choices:
        vector[where.start + choices.index(value)] = 1.0


@functools.lru_cache(maxsize=4096)
def attribute_slot(name: str) -> tuple[int, float]:
    """(bucket, sign) of a hashed attribute name: from sha256, stable across processes and
    machines, unlike Python's hash(). The sign makes collisions cancel on average instead of
    adding up."""
    digest = hashlib.sha256(f"attribute:{name}".encode()).digest()
    bucket = int.from_bytes(digest[:8], "big") % ATTRIBUTE_BUCKETS
    return bucket, (1.0 if digest[8] & 1 == 0 else -1.0)


def _attribute_value(value: Any) -> tuple[str, float] | None:
    """What an attribute contributes: a bool 1 or 0, a number squashed to (−1, 1) by
    v / (1 + |v|) (the client's scale is unknown), a string an indicator of `name=value`."""
    if isinstance(value, bool):
        return "", float(value)
    if isinstance(value, int | float):
        number = float(value)
        return ("", number / (1.0 + abs(number))) if np.isfinite(number) else None
    if isinstance(value, str):
        return f"={value}", 1.0
    return None


def learner_features(facts: Mapping[str, Any]) -> np.ndarray:
    """The learner's feature vector (length FEATURES, the layout above) from plain facts:

        personalization_level  LOW | MEDIUM | HIGH
        learning_style         VISUAL | AUDITORY | READING | KINESTHETIC | MIXED, or None
                               when learning-style profiling is off (all zero)
        reading_length         SHORT | MEDIUM | LONG (None: MEDIUM, the default)
        tone_preference        CASUAL | FORMAL | MYSTICAL (None: CASUAL, the default)
        software_level         BEGINNER | INTERMEDIATE | ADVANCED, or None (0)
        hardware_level         NONE | BASIC | INTERMEDIATE | ADVANCED, or None (0)
        skill_ratings          {skill: score in [0, 1]} (SkillProfile), or None
        weaknesses             [skill] (SkillProfile), or None
        attributes             {name: str | number | bool} (the user's own), or None

    Missing keys count as None; unknown values of an enumeration as missing. Each attribute
    adds its value (`_attribute_value`) times a sign to one of ATTRIBUTE_BUCKETS buckets
    chosen by a stable hash of its name (of `name=value` for a string)."""
    vector = np.zeros(FEATURES)
    vector[INTERCEPT] = 1.0
    _one_hot(vector, LEVEL, facts.get("personalization_level"), LEVELS)
    _one_hot(vector, STYLE, facts.get("learning_style"), LEARNING_STYLES)
    reading = facts.get("reading_length") or _DEFAULT_READING_LENGTH
    vector[READING_LENGTH] = _ordinal(reading, READING_LENGTHS)
    _one_hot(vector, TONE, facts.get("tone_preference") or _DEFAULT_TONE, TONES)
    vector[SOFTWARE] = _ordinal(facts.get("software_level"), SOFTWARE_LEVELS)
    vector[HARDWARE] = _ordinal(facts.get("hardware_level"), HARDWARE_LEVELS)
    ratings = [
        float(score)
        for score in (facts.get("skill_ratings") or {}).values()
        if isinstance(score, int | float) and not isinstance(score, bool) and np.isfinite(score)
    ]
    vector[SKILL_MEAN] = float(np.clip(np.mean(ratings), 0.0, 1.0)) if ratings else 0.0
    vector[WEAKNESSES] = min(len(facts.get("weaknesses") or ()), WEAKNESS_CAP) / WEAKNESS_CAP
    for name, value in (facts.get("attributes") or {}).items():
        contribution = _attribute_value(value)
        if contribution is not None:
            suffix, amount = contribution
            bucket, sign = attribute_slot(f"{name}{suffix}")
            vector[ATTRIBUTES.start + bucket] += sign * amount
    return vector


# --- The model -------------------------------------------------------------------------------

THOMPSON_DRAWS = 4_096
FALLBACK_WITHIN_VARIANCE = 0.25  # the largest variance of a reward in [0, 1]
FALLBACK_PRIOR_STRENGTH = 1.0
# Learners' Monte Carlo draws are made this many normals at a time, to bound memory.
_DRAW_BLOCK = 1 << 20


def monte_carlo_standard_error(draws: int) -> float:
    """The largest standard error of a Thompson probability from `draws` draws:
    max_p √(p(1 − p)/M) = 0.5/√M."""
    return 0.5 / float(np.sqrt(draws))


@dataclass(frozen=True, eq=False)
class ContextualModel:
    """A context's fitted model (`fit_model`): per arm (in the order of the population means
    given) the posterior mean of β_a and its covariance σ²_w·A_a⁻¹, with the σ²_w and τ² it
    was fitted with; `keys` what the caller said each arm is (strategy ids), to check a
    cached model against the catalog. Arrays only: cheap to pickle into the cache."""

    coefficients: np.ndarray  # arms × FEATURES
    covariance: np.ndarray  # arms × FEATURES × FEATURES
    within_variance: float
    between_variance: float
    learners: int = 0
    informative: bool = True  # False: the population prior was undefined (the fallback)
    keys: tuple[Any, ...] = ()

    @property
    def arms(self) -> int:
        return int(self.coefficients.shape[0])


def _variances(prior: bandits.PopulationPrior) -> tuple[float, float, bool]:
    """(σ²_w, k, informative): the prior's, or the uninformative fallback."""
    within, strength = prior.within_variance, prior.prior_strength
    if not (np.isfinite(within) and within > 0 and np.isfinite(strength) and strength > 0):
        return FALLBACK_WITHIN_VARIANCE, FALLBACK_PRIOR_STRENGTH, False
    return float(within), float(strength), True


def quadratic_forms(x: np.ndarray, matrices: np.ndarray) -> np.ndarray:
    """x_uᵀ M_a x_u for every row u of `x` and matrix a: learners × arms (one matrix product
    per arm)."""
    return np.einsum("aui,ui->ua", x @ matrices, x)


def _regression(
    x: np.ndarray,
    counts: np.ndarray,
    own: np.ndarray,
    population: np.ndarray,
    strength: float,
    ridge: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(β̂ arms × d, A⁻¹ arms × d × d, learner weights w learners × arms) with
    w = n·k/(n + k) for the learner-level k = `strength` and prior precision `ridge`·I."""
    with np.errstate(divide="ignore", invalid="ignore"):
        weights = np.where(counts > 0, counts * strength / (counts + strength), 0.0)
    arms, d = counts.shape[1], x.shape[1]
    precision = np.zeros((arms, d, d))
    target = np.zeros((arms, d))
    for a in range(arms):  # a few arms; the learners are summed by the products
        weighted = x * weights[:, a, None]
        precision[a] = ridge * np.eye(d) + weighted.T @ x
        target[a] = weighted.T @ own[:, a]
        target[a, INTERCEPT] += ridge * population[a]
    inverse = np.linalg.inv(precision)
    inverse = (inverse + np.swapaxes(inverse, 1, 2)) / 2.0
    return np.einsum("aij,aj->ai", inverse, target), inverse, weights


def residual_between_variance(
    x: np.ndarray,
    counts: np.ndarray,
    own: np.ndarray,
    coefficients: np.ndarray,
    inverse: np.ndarray,
    weights: np.ndarray,
    within: float,
) -> tuple[float, float]:
    """τ² around the regression instead of around each arm's mean, by the method of moments
    of §5.5 with the fitted values' leverage h_ua = w_ua·x_uᵀA_a⁻¹x_u taken out:

        E[(ȳ_ua − x_uᵀβ̂_a)²] ≈ (1 − h_ua)·(τ² + σ²_w/n_ua), so
        τ² = (Σ r²_ua − σ²_w·Σ (1 − h_ua)/n_ua) / Σ (1 − h_ua)      over rewarded pairs.

    Returns (τ², Σ (1 − h), the residual degrees of freedom)."""
    rewarded = counts > 0
    residual = own - x @ coefficients.T
    leverage = weights * quadratic_forms(x, inverse)
    free = np.where(rewarded, np.clip(1.0 - leverage, 0.0, 1.0), 0.0)
    dof = float(free.sum())
    if dof <= 0:
        return float("nan"), dof
    spread = float((residual[rewarded] ** 2).sum())
    noise = within * float((free[rewarded] / counts[rewarded]).sum())
    return (spread - noise) / dof, dof


def fit_model(
    features: np.ndarray,
    n: np.ndarray,
    means: np.ndarray,
    population_means: np.ndarray,
    prior: bandits.PopulationPrior,
    *,
    ridge: float | None = None,
    keys: Sequence[Any] = (),
) -> ContextualModel:
    """The posterior of every arm's β_a (module docstring) from per-(learner, arm)
    sufficient statistics: `features` learners × FEATURES, `n` and `means` learners × arms
    (the number of the learner's rewards under the arm and their mean; any mean where n is
    0), `population_means` per arm, and §5.5's prior (k, σ²_w). `ridge` is λ (default k);
    `keys` (one per arm, or none) are kept on the model.

    Two passes. The first weighs learners with §5.5's k, whose τ² includes the spread the
    features explain; `residual_between_variance` then measures the spread left around the
    regression, and the second pass weighs learners with that τ² (held within
    [σ²_w/PRIOR_STRENGTH_CAP, σ²_w/k]), which is also the learner-level τ² of
    `arm_posteriors`. λ stays k: each coefficient's prior sd is the whole spread τ. With the
    prior only a fallback (too few learners) or under MIN_LEARNERS_FOR_PRIOR residual degrees
    of freedom, τ² stays σ²_w/k. One d × d inverse per arm per pass."""
    x = np.atleast_2d(np.asarray(features, dtype=float))
    counts = np.atleast_2d(np.asarray(n, dtype=float))
    population = np.asarray(population_means, dtype=float)
    if counts.shape[0] != x.shape[0] or counts.shape != np.shape(np.atleast_2d(means)):
        raise ValueError("features, n and means need one row per learner")
    if population.shape != (counts.shape[1],):
        raise ValueError("one population mean per arm")
    if keys and len(keys) != counts.shape[1]:
        raise ValueError("one key per arm, or none")
    within, strength, informative = _variances(prior)
    lam = strength if ridge is None else float(ridge)
    if lam <= 0:
        raise ValueError("the ridge must be positive")
    own = np.where(counts > 0, np.atleast_2d(np.asarray(means, dtype=float)), 0.0)
    coefficients, inverse, weights = _regression(x, counts, own, population, strength, lam)
    between = within / strength
    if informative and prior.estimated:
        residual, dof = residual_between_variance(
            x, counts, own, coefficients, inverse, weights, within
        )
        if dof >= bandits.MIN_LEARNERS_FOR_PRIOR and np.isfinite(residual):
            between = float(np.clip(residual, within / bandits.PRIOR_STRENGTH_CAP, between))
            coefficients, inverse, _ = _regression(
                x, counts, own, population, within / between, lam
            )
    return ContextualModel(
        coefficients=coefficients,
        covariance=within * inverse,
        within_variance=within,
        between_variance=between,
        learners=int((counts > 0).any(axis=1).sum()),
        informative=informative,
        keys=tuple(keys),
    )


def arm_posteriors(
    model: ContextualModel,
    x: np.ndarray,
    n_user: np.ndarray,
    mean_user: np.ndarray,
    *,
    sample_deviation: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """(mean, sd) of the Gaussian each θ̃_ua is drawn from (module docstring); rows of `x`
    (or one vector) are learners, `n_user` and `mean_user` learners × arms (or one row)."""
    x = np.atleast_2d(np.asarray(x, dtype=float))
    n = np.atleast_2d(np.asarray(n_user, dtype=float))
    own = np.where(n > 0, np.atleast_2d(np.asarray(mean_user, dtype=float)), 0.0)
    fitted = x @ model.coefficients.T
    spread = np.maximum(quadratic_forms(x, model.covariance), 0.0)
    if not sample_deviation:
        shrink = n / (n + model.within_variance / model.between_variance)
        return (1.0 - shrink) * fitted + shrink * own, (1.0 - shrink) * np.sqrt(spread)
    prior_variance = model.between_variance + spread
    precision = 1.0 / prior_variance + n / model.within_variance
    mean = (fitted / prior_variance + n * own / model.within_variance) / precision
    return mean, np.sqrt(1.0 / precision)


def thompson_probabilities(
    mean: np.ndarray, sd: np.ndarray, *, rng: np.random.Generator, draws: int = THOMPSON_DRAWS
) -> np.ndarray:
    """Per row (learner), P̂(arm a has the largest of independent N(m_a, sd_a²) draws) from
    `draws` joint draws; standard error at most `monte_carlo_standard_error(draws)`."""
    mean, sd = np.atleast_2d(mean), np.atleast_2d(sd)
    rows, arms = mean.shape
    counts = np.zeros((rows, arms))
    block = max(1, _DRAW_BLOCK // (arms * draws))
    for start in range(0, rows, block):  # blocks of learners bound the K×M draws' memory
        stop = min(rows, start + block)
        # single precision: the draws' resolution (about 1e-7 of the mean) is far below any
        # sd the model gives, and generating and comparing them is twice as fast
        samples = rng.standard_normal((stop - start, arms, draws), dtype=np.float32)
        samples *= sd[start:stop, :, None].astype(np.float32)
        samples += mean[start:stop, :, None].astype(np.float32)
        best = samples.argmax(axis=1) + arms * np.arange(stop - start)[:, None]
        counts[start:stop] = np.bincount(best.ravel(), minlength=(stop - start) * arms).reshape(
            stop - start, arms
        )
    return counts / draws


def policy_probabilities(thompson: np.ndarray, epsilon: float | np.ndarray) -> np.ndarray:
    """π(a) = ε/K + (1 − ε)·P_TS(a), per row; ε one or one per row."""
    thompson = np.atleast_2d(thompson)
    eps = np.asarray(epsilon, dtype=float).reshape(-1, 1)
    if ((eps < 0) | (eps > 1)).any():
        raise ValueError("epsilon must be within [0, 1]")
    return eps / thompson.shape[1] + (1.0 - eps) * thompson


def draw_from(probabilities: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One index per row drawn with the row's probabilities (one uniform a row); an arm of
    probability 0 is never drawn."""
    probabilities = np.atleast_2d(probabilities)
    cumulative = np.cumsum(probabilities, axis=1)
    u = rng.random(probabilities.shape[0]) * cumulative[:, -1]
    index = (cumulative <= u[:, None]).sum(axis=1)
    # rounding could put u on the total: stay on the last arm that can be drawn
    last = probabilities.shape[1] - 1 - np.argmax(probabilities[:, ::-1] > 0, axis=1)
    return np.minimum(index, last)


def contextual_choose_many(
    model: ContextualModel,
    x: np.ndarray,
    n_user: np.ndarray,
    mean_user: np.ndarray,
    *,
    epsilon: float | np.ndarray,
    rng: np.random.Generator,
    draws: int = THOMPSON_DRAWS,
    sample_deviation: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`contextual_policy` for many learners at once (rows; ε one or one per learner):
    (indices, propensities, probabilities learners × arms)."""
    mean, sd = arm_posteriors(model, x, n_user, mean_user, sample_deviation=sample_deviation)
    probabilities = policy_probabilities(
        thompson_probabilities(mean, sd, rng=rng, draws=draws), epsilon
    )
    index = draw_from(probabilities, rng)
    return index, probabilities[np.arange(index.size), index], probabilities


def contextual_policy(
    model: ContextualModel,
    x: np.ndarray,
    n_user: np.ndarray,
    mean_user: np.ndarray,
    *,
    epsilon: float,
    rng: np.random.Generator,
    draws: int = THOMPSON_DRAWS,
    sample_deviation: bool = False,
) -> tuple[int, float, np.ndarray]:
    """One learner's decision: (index of the strategy drawn, its propensity — exactly the
    probability it was drawn with —, every strategy's probability). `x` the learner's
    features, `n_user` and `mean_user` per arm (times_rewarded and avg_reward of their
    configs, in the model's arm order), ε the level's `bandits.EPSILON_BY_LEVEL`."""
    if model.arms != np.size(n_user):
        raise ValueError("one n_user and mean_user per arm of the model")
    index, propensity, probabilities = contextual_choose_many(
        model,
        x,
        n_user,
        mean_user,
        epsilon=epsilon,
        rng=rng,
        draws=draws,
        sample_deviation=sample_deviation,
    )
    return int(index[0]), float(propensity[0]), probabilities[0]
