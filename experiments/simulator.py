"""The policy simulator (DESIGN.md §4, §5.4–§5.6): learners with known reward distributions
meet the project's own policy code over simulated days, and the log the decisions leave
behind is evaluated off-policy against the truth. Pure: numpy and scipy, no Django; all
randomness from the scenario's seed. `manage.py simulate` prints what `run`, `evaluate` and
`coverage` return.

The world. Learner u's latent mean under strategy a is base_a + d_ua, d_ua ~ N(0, h²)
(heterogeneity h); a reward is N(latent, noise²) clipped to the reward's bounds ([0, 1] as
§5.1 rewards are), so u's expected reward is the censored-normal mean

    μ_ua = lo·Φ(α) + hi·(1 − Φ(β)) + m·(Φ(β) − Φ(α)) + σ·(φ(α) − φ(β)),
    α = (lo − m)/σ, β = (hi − m)/σ, m the latent mean, σ the noise.

A share of learners has withdrawn consent; every other learner has a personalization level
(LOW/MEDIUM/HIGH in the scenario's mix). Learners join evenly over the first
`arrival_days` days, then decide `decisions_per_day` times a day in rounds: every present
learner decides once per round.

The policies, each the project's code:
* consent withdrawn (§4 step 1): the baseline, propensity 1, source DISABLED, whatever the
  policy; such decisions carry no config, so their rewards never reach the bandit
  statistics;
* `Adaptive` (§4 step 3, §5.5): the per-learner epsilon-greedy bandit at the learner's level,
  through `bandits.posterior_means`, `posterior_confidence` and `exploit_indices` over all
  learners at once, with the population model (means, k, σ²_w) recomputed every round as the
  decide call reads it from `population_prior`. The logged propensity is
  `bandits.epsilon_greedy_policy`'s: ε/K + (1 − ε)·[a is the exploit choice] (ties are
  broken, not shared: to the baseline, then to the first strategy);
* `BanditExperiment` (§4 step 2, §5.4): one MULTI_ARMED_BANDIT experiment over every
  strategy for every consenting learner; the weights are `bandits.bandit_weights` of the users with
  outcomes (each user's mean reward, §5.3) recomputed at the start of every day; a learner
  is assigned at their first decision with the weights then in force and keeps the variant
  (sticky), every decision logging the assignment's propensity;
* `ContextualThompson` (§4 step 3 with `ADAPTIVE_POLICY=CONTEXTUAL_THOMPSON`): linear
  Thompson sampling over the learners' features, `contextual.fit_model` refitted every round
  from the per-learner statistics (as the live cache would hold them) with the population
  prior of `population_prior`, and `contextual.contextual_choose_many` at the learner's
  level's ε; the logged propensity is the probability the strategy was drawn with;
* `Uniform`: every strategy with probability 1/K, a reference.

Learners' features. Every learner has the facts `contextual.learner_features` reads: their
level, a learning style, reading length and tone drawn uniformly, and the client attribute
`cohort` ("a", "b", …: `cohorts` values in equal shares; the first four land in different
hash buckets of `contextual.learner_features`). With `cohort_effects` (one row per cohort, a
shift of every strategy's latent mean) the best strategy depends on the cohort; without,
nothing about a learner's features moves their rewards. These draws come from their own
stream (seeded by the scenario's seed), so the rest of a run is the same with or without
them. `compare_regret` runs the epsilon-greedy bandit and contextual Thompson sampling on the
same worlds.

Outcome delay d (days): a reward of day t reaches the policy's statistics at the start of day
t + d (d = 0: from the next round, as the per-minute reward recompute does); a reward that
would arrive after the last day is never observed (NaN in the log).

Regret of a decision: the learner's best expected reward minus that of the strategy given,
summed over the decisions the policy made (consent-withdrawn learners are the baseline's by
§4, whatever the policy). The truth of a target policy "strategy a always on" respects
consent: a learner who withdrew it gets the baseline, as the decide call would give them, and
the log could not say anything else about them (every other strategy has propensity 0 there,
and §5.6 leaves such decisions out). Its value is per decision, as §5.6 defines it: the mean
over the log's decisions with an observed outcome of μ_{u, a} (μ_{u, baseline} for those
learners). `evaluate` puts outcomes/ope.py's IPS, SNIPS and DR estimates beside it;
`coverage` repeats that over many logs.

ope.py's intervals take decisions as independent given the past, which the per-learner
bandit satisfies (it draws every decision afresh). A bandit experiment does not: a learner's
decisions share one sticky draw, so those intervals are too narrow for its logs, and
`coverage` shows by how much. outcomes/ope.py is pure (numpy and scipy, no app imports),
which is what lets this module use it against the apps' usual direction.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import ClassVar

import numpy as np
from scipy import stats as scipy_stats

from experiments import assignment, bandits, contextual
from experiments.policy_simulation import BASE, _population
from outcomes import ope

LEVELS = ("LOW", "MEDIUM", "HIGH")
# Decision.source of each logged decision; UNIFORM is the reference policy's own label.
SOURCES = ("DISABLED", "BANDIT", "EXPERIMENT", "UNIFORM")
ESTIMATORS = ("ips", "snips", "dr")
ESTIMATOR_NAMES = {"ips": "IPS", "snips": "SNIPS", "dr": "DR"}
BASELINE = 0
# The catalog's keys, the baseline first; the others in key order, which is the order the
# decide call breaks exact ties in (the catalog is ordered by key).
STRATEGY_KEYS = ("conservative", "balanced", "pattern_heavy", "prediction_heavy")
COVERAGE_LEVEL = 0.95
# Two cohorts whose best strategy differs: prediction_heavy for "a" (0.60 against
# pattern_heavy's 0.45), pattern_heavy for "b" (0.60 against 0.45); over both cohorts the two
# tie at 0.525, so the population's means cannot tell a learner which to take.
COHORT_EFFECTS = ((0.0, 0.0, -0.05, 0.05), (0.0, 0.0, 0.10, -0.10))
COHORT_ATTRIBUTE = "cohort"
COHORT_LABELS = "abcdefghijklmnopqrstuvwxyz"
# The learners' facts are drawn from a stream of their own: SeedSequence([seed, this]).
_FACTS_STREAM = 1


def _default_levels() -> dict[str, float]:
    return {"LOW": 0.25, "MEDIUM": 0.5, "HIGH": 0.25}


@dataclass(frozen=True)
class Scenario:
    """A simulated context. `base_means` per strategy, the baseline first (default §5.5's
    0.45 +0/0.02/0.05/0.10); `level_mix` the share of learners at each level (unused for
    those who withdrew consent);
    `reward_bounds` None for unclipped Gaussian rewards; `cohorts` the values of the
    learners' `cohort` attribute and `cohort_effects` (one row per cohort, one shift per
    strategy) how it moves their latent means — () for not at all."""

    learners: int = 500
    days: int = 28
    decisions_per_day: int = 2
    base_means: tuple[float, ...] = tuple(float(m) for m in BASE)
    strategies: tuple[str, ...] = STRATEGY_KEYS
    heterogeneity: float = 0.05
    noise: float = 0.2
    delay_days: int = 1
    consent_withdrawn: float = 0.1
    level_mix: Mapping[str, float] = field(default_factory=_default_levels)
    arrival_days: int = 1
    reward_bounds: tuple[float, float] | None = (0.0, 1.0)
    fallback_prior_strength: float = 10.0  # BANDIT_PRIOR_STRENGTH
    seed: int = 0
    cohorts: int = 2
    cohort_effects: tuple[tuple[float, ...], ...] = ()

    def __post_init__(self) -> None:
        if self.learners < 1 or self.days < 1 or self.decisions_per_day < 1:
            raise ValueError("learners, days and decisions_per_day must be positive")
        if len(self.base_means) != len(self.strategies) or len(self.base_means) < 2:
            raise ValueError("one base mean per strategy, and at least two strategies")
        if self.heterogeneity < 0 or self.noise < 0 or self.delay_days < 0:
            raise ValueError("heterogeneity, noise and delay_days must be non-negative")
        if not 0.0 <= self.consent_withdrawn <= 1.0:
            raise ValueError("consent_withdrawn must be within [0, 1]")
        if set(self.level_mix) - set(LEVELS) or any(s < 0 for s in self.level_mix.values()):
            raise ValueError(f"level_mix takes non-negative shares of {', '.join(LEVELS)}")
        if not np.isclose(sum(self.level_mix.values()), 1.0):
            raise ValueError("level_mix shares must sum to 1")
        if not 1 <= self.arrival_days <= self.days:
            raise ValueError("arrival_days must be within [1, days]")
        if self.reward_bounds is not None and not self.reward_bounds[0] < self.reward_bounds[1]:
            raise ValueError("reward_bounds must be (low, high) with low < high")
        if not 1 <= self.cohorts <= len(COHORT_LABELS):
            raise ValueError(f"cohorts must be within [1, {len(COHORT_LABELS)}]")
        if self.cohort_effects and (
            len(self.cohort_effects) != self.cohorts
            or any(len(row) != len(self.strategies) for row in self.cohort_effects)
        ):
            raise ValueError("cohort_effects takes one row per cohort, one shift per strategy")

    @property
    def rounds(self) -> int:
        return self.days * self.decisions_per_day

    def describe(self) -> str:
        arms = ", ".join(
            f"{name} {mean:.3f}{' (baseline)' if i == BASELINE else ''}"
            for i, (name, mean) in enumerate(zip(self.strategies, self.base_means, strict=True))
        )
        levels = " / ".join(f"{name} {self.level_mix.get(name, 0.0):.0%}" for name in LEVELS)
        arrival = f", joining over {self.arrival_days} days" if self.arrival_days > 1 else ""
        if self.cohort_effects:
            shifts = "; ".join(
                f"{COHORT_LABELS[c]} " + " ".join(f"{shift:+.2f}" for shift in row)
                for c, row in enumerate(self.cohort_effects)
            )
            cohorts = f"; {self.cohorts} cohorts shifting the strategies' means ({shifts})"
        else:
            cohorts = ""
        return (
            f"{self.learners:,} learners × {self.days} days × {self.decisions_per_day} "
            f"decisions a day{arrival}; strategies {arms}; heterogeneity sd "
            f"{self.heterogeneity:.2f}, reward noise sd {self.noise:.2f}; outcome delay "
            f"{self.delay_days} day{'s' if self.delay_days != 1 else ''}; consent withdrawn "
            f"{self.consent_withdrawn:.0%}; levels {levels}{cohorts}; seed {self.seed}"
        )


# --- Policies --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Adaptive:
    """§4 step 3: the per-learner epsilon-greedy bandit at each learner's level."""

    source: ClassVar[str] = "BANDIT"

    def __str__(self) -> str:
        return "per-learner bandit (§4 step 3)"


@dataclass(frozen=True)
class BanditExperiment:
    """§4 step 2 with a MULTI_ARMED_BANDIT experiment, reweighted daily by §5.4."""

    algorithm: str = "THOMPSON"
    epsilon: float = 0.1
    min_arm_share: float = 0.01
    burn_in: int = 20  # BANDIT_BURN_IN
    source: ClassVar[str] = "EXPERIMENT"

    def __str__(self) -> str:
        return f"bandit experiment, {self.algorithm} (§4 step 2, §5.4)"


@dataclass(frozen=True)
class ContextualThompson:
    """§4 step 3 with ADAPTIVE_POLICY=CONTEXTUAL_THOMPSON: linear Thompson sampling over the
    learners' features (experiments/contextual.py), `draws` Monte Carlo draws a decision;
    `sample_deviation` draws each learner's own deviation too (contextual's docstring)."""

    draws: int = contextual.THOMPSON_DRAWS
    sample_deviation: bool = False
    source: ClassVar[str] = "BANDIT"

    def __str__(self) -> str:
        drawn = ", the learner's deviation drawn too" if self.sample_deviation else ""
        return f"per-learner contextual Thompson sampling (§4 step 3{drawn})"


@dataclass(frozen=True)
class Uniform:
    """Every strategy with probability 1/K."""

    source: ClassVar[str] = "UNIFORM"

    def __str__(self) -> str:
        return "uniform random"


Policy = Adaptive | ContextualThompson | BanditExperiment | Uniform
ADAPTIVE = Adaptive()
CONTEXTUAL_THOMPSON = ContextualThompson()


# --- The world -------------------------------------------------------------------------------


def expected_reward(
    latent: np.ndarray, noise: float, bounds: tuple[float, float] | None
) -> np.ndarray:
    """E[clip(N(latent, noise²), lo, hi)], the censored-normal mean of the module docstring."""
    latent = np.asarray(latent, dtype=float)
    if bounds is None:
        return latent.copy()
    lo, hi = bounds
    if noise == 0:
        return np.clip(latent, lo, hi)
    alpha, beta = (lo - latent) / noise, (hi - latent) / noise
    cdf, pdf = scipy_stats.norm.cdf, scipy_stats.norm.pdf
    return (
        lo * cdf(alpha)
        + hi * (1.0 - cdf(beta))
        + latent * (cdf(beta) - cdf(alpha))
        + noise * (pdf(alpha) - pdf(beta))
    )


def _labels(shares: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """`count` labels 0..len(shares)−1 in the given shares (to the nearest learner), shuffled."""
    cumulative = np.cumsum(shares) / np.sum(shares)
    ordered = np.searchsorted(cumulative, (np.arange(count) + 0.5) / count, side="right")
    return rng.permutation(np.minimum(ordered, len(shares) - 1))


@dataclass(frozen=True, eq=False)
class Truth:
    """What the simulation knows and the policy does not: each learner's expected reward per
    strategy, and whether they kept consent."""

    means: np.ndarray  # learners × strategies
    consent: np.ndarray  # learners, bool
    cohort: np.ndarray | None = None  # learners, index of the `cohort` attribute's value

    @property
    def best(self) -> np.ndarray:
        return self.means.max(axis=1)

    def always_on(self, log: "Log") -> np.ndarray:
        """Per strategy, the true value of it always on (consent respected) over the log's
        decisions with an observed outcome."""
        learners = log.learner[log.observed]
        k = self.means.shape[1]
        if not learners.size:
            return np.full(k, np.nan)
        given = np.where(self.consent[learners, None], np.arange(k), BASELINE)
        return self.means[learners[:, None], given].mean(axis=0)


@dataclass(frozen=True, eq=False)
class Log:
    """The decisions and outcomes, one entry per decision in the order they were made."""

    strategies: tuple[str, ...]
    learner: np.ndarray
    day: np.ndarray
    slot: np.ndarray  # the decision's round within its day
    action: np.ndarray
    propensity: np.ndarray  # of the logged action, as the policy gave it
    reward: np.ndarray  # NaN when the outcome had not arrived by the last day
    level: np.ndarray  # index into LEVELS (meaningless where consent is withdrawn)
    consent: np.ndarray
    source: np.ndarray  # index into SOURCES

    def __len__(self) -> int:
        return int(self.action.size)

    @property
    def observed(self) -> np.ndarray:
        return np.isfinite(self.reward)


@dataclass(frozen=True, eq=False)
class Result:
    """One simulated run. `allocation` is over the policy's decisions (consent-withdrawn
    ones are the baseline's by definition); `rewards_seen` and `newest_seen` say, per round,
    how many rewards the policy's statistics held when it decided and the latest day any of
    them came from (−1: none); `weights` are an experiment's weights per day."""

    scenario: Scenario
    policy: Policy
    log: Log
    truth: Truth
    regret: float
    uniform_regret: float  # expected regret of uniform random on the same decisions
    regret_by_level: dict[str, float]
    decisions_by_level: dict[str, int]
    allocation: np.ndarray
    allocation_by_level: dict[str, np.ndarray]
    daily_allocation: np.ndarray  # days × strategies
    rewards_seen: np.ndarray
    newest_seen: np.ndarray
    weights: np.ndarray | None = None

    @property
    def true_values(self) -> np.ndarray:
        return self.truth.always_on(self.log)


# --- The simulation --------------------------------------------------------------------------


@dataclass
class _Statistics:
    """The bandit statistics the policy sees: per learner and strategy the rewards that had
    arrived (StrategyConfig's times_rewarded, total_reward, total_reward_sq)."""

    n: np.ndarray
    total: np.ndarray
    total_sq: np.ndarray

    @classmethod
    def empty(cls, learners: int, strategies: int) -> "_Statistics":
        return cls(*(np.zeros((learners, strategies)) for _ in range(3)))

    def add(self, rows: np.ndarray, actions: np.ndarray, rewards: np.ndarray) -> None:
        np.add.at(self.n, (rows, actions), 1.0)
        np.add.at(self.total, (rows, actions), rewards)
        np.add.at(self.total_sq, (rows, actions), rewards**2)


def _adaptive_step(
    stats: _Statistics, level: np.ndarray, scenario: Scenario, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """One decision for every learner by §4 step 3: (chosen strategy, its propensity)."""
    learners, k = stats.n.shape
    population, prior = _population(
        stats.n, stats.total, stats.total_sq, scenario.fallback_prior_strength
    )
    strength = bandits.arm_prior_strengths(prior.prior_strength, stats.n.sum(axis=0))
    own = np.where(stats.n > 0, stats.total / np.maximum(stats.n, 1.0), 0.0)
    estimates = bandits.posterior_means(stats.n, own, population, strength)
    confidence = bandits.posterior_confidence(
        stats.n,
        own,
        population,
        BASELINE,
        prior_strength=strength,
        within_variance=prior.within_variance,
    )
    exploit = np.full(learners, BASELINE, dtype=np.int64)
    epsilon = np.zeros(learners)
    for code, name in enumerate(LEVELS):
        mine = level == code
        if mine.any():
            threshold = bandits.CONFIDENCE_THRESHOLD_BY_LEVEL[name]
            exploit[mine] = bandits.exploit_indices(
                estimates[mine], confidence[mine], BASELINE, threshold
            )
            epsilon[mine] = bandits.EPSILON_BY_LEVEL[name]
    # As epsilon_greedy_choose draws: explore uniformly with probability ε, else exploit.
    explore = rng.random(learners) < epsilon
    chosen = np.where(explore, rng.integers(k, size=learners), exploit)
    propensity = epsilon / k + (1.0 - epsilon) * (chosen == exploit)
    return chosen, propensity


@dataclass(frozen=True, eq=False)
class _Facts:
    """The learners' facts beside their level (module docstring), drawn from their own
    stream."""

    cohort: np.ndarray
    style: np.ndarray  # index into contextual.LEARNING_STYLES
    reading: np.ndarray  # index into contextual.READING_LENGTHS
    tone: np.ndarray  # index into contextual.TONES

    @classmethod
    def draw(cls, scenario: Scenario) -> "_Facts":
        rng = np.random.default_rng([scenario.seed, _FACTS_STREAM])
        learners = scenario.learners
        return cls(
            cohort=_labels(np.ones(scenario.cohorts), learners, rng),
            style=rng.integers(len(contextual.LEARNING_STYLES), size=learners),
            reading=rng.integers(len(contextual.READING_LENGTHS), size=learners),
            tone=rng.integers(len(contextual.TONES), size=learners),
        )

    def features(self, level: np.ndarray) -> np.ndarray:
        """learners × contextual.FEATURES, by contextual.learner_features."""
        return np.vstack(
            [
                contextual.learner_features(
                    {
                        "personalization_level": LEVELS[int(level[u])],
                        "learning_style": contextual.LEARNING_STYLES[int(self.style[u])],
                        "reading_length": contextual.READING_LENGTHS[int(self.reading[u])],
                        "tone_preference": contextual.TONES[int(self.tone[u])],
                        "attributes": {COHORT_ATTRIBUTE: COHORT_LABELS[int(self.cohort[u])]},
                    }
                )
                for u in range(self.cohort.size)
            ]
        )


def _contextual_step(
    stats: _Statistics,
    features: np.ndarray,
    level: np.ndarray,
    deciding: np.ndarray,
    scenario: Scenario,
    policy: ContextualThompson,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """One decision for every deciding learner by contextual Thompson sampling, the model
    refitted from the statistics as they stand (the live cache's refit): (chosen strategy,
    its propensity); learners not deciding get the baseline with propensity 1."""
    learners = stats.n.shape[0]
    population, prior = _population(
        stats.n, stats.total, stats.total_sq, scenario.fallback_prior_strength
    )
    own = np.where(stats.n > 0, stats.total / np.maximum(stats.n, 1.0), 0.0)
    model = contextual.fit_model(features, stats.n, own, population, prior)
    rows = np.flatnonzero(deciding)
    epsilon = np.array([bandits.EPSILON_BY_LEVEL[name] for name in LEVELS])[level[rows]]
    chosen = np.full(learners, BASELINE, dtype=np.int64)
    propensity = np.ones(learners)
    if rows.size:
        chosen[rows], propensity[rows], _ = contextual.contextual_choose_many(
            model,
            features[rows],
            stats.n[rows],
            own[rows],
            epsilon=epsilon,
            rng=rng,
            draws=policy.draws,
            sample_deviation=policy.sample_deviation,
        )
    return chosen, propensity


def _experiment_weights(
    stats: _Statistics, assigned: np.ndarray, policy: BanditExperiment, rng: np.random.Generator
) -> np.ndarray:
    """§5.4 from the users with outcomes: per arm their number, the mean and variance of their
    mean rewards (bandit_reweight's defaults: mean 0 without users, variance 0.25 with fewer
    than two)."""
    k = stats.n.shape[1]
    rows = np.flatnonzero(assigned >= 0)
    n, total = stats.n[rows, assigned[rows]], stats.total[rows, assigned[rows]]
    rewarded = n > 0
    arm, value = assigned[rows][rewarded], total[rewarded] / n[rewarded]
    arms = []
    for index in range(k):
        mine = value[arm == index]
        arms.append(
            bandits.ArmOutcomes(
                key=str(index),
                n=int(mine.size),
                mean=float(mine.mean()) if mine.size else 0.0,
                variance=float(mine.var(ddof=1)) if mine.size >= 2 else 0.25,
            )
        )
    return bandits.bandit_weights(
        policy.algorithm,
        arms,
        burn_in=policy.burn_in,
        epsilon=policy.epsilon,
        min_share=policy.min_arm_share,
        rng=rng,
    )


def run(scenario: Scenario, policy: Policy = ADAPTIVE) -> Result:
    """Simulate `scenario` under `policy`; see the module docstring."""
    rng = np.random.default_rng(scenario.seed)
    learners, k, per_day = scenario.learners, len(scenario.strategies), scenario.decisions_per_day
    rounds = scenario.rounds

    latent = np.asarray(scenario.base_means, dtype=float) + rng.normal(
        0.0, scenario.heterogeneity, (learners, k)
    )
    facts = _Facts.draw(scenario)
    if scenario.cohort_effects:
        latent = latent + np.asarray(scenario.cohort_effects, dtype=float)[facts.cohort]
    means = expected_reward(latent, scenario.noise, scenario.reward_bounds)
    withdrawn = scenario.consent_withdrawn
    consent = _labels(np.array([withdrawn, 1.0 - withdrawn]), learners, rng) == 1
    mix = np.array([scenario.level_mix.get(name, 0.0) for name in LEVELS])
    level = _labels(mix, learners, rng)
    joins = (np.arange(learners) * scenario.arrival_days) // learners
    truth = Truth(means=means, consent=consent, cohort=facts.cohort)
    features = (
        facts.features(level)
        if isinstance(policy, ContextualThompson)
        else np.zeros((learners, contextual.FEATURES))
    )

    stats = _Statistics.empty(learners, k)
    actions = np.full((rounds, learners), -1, dtype=np.int64)  # −1: not yet joined
    propensities = np.zeros((rounds, learners))
    rewards = np.zeros((rounds, learners))
    arriving: dict[int, list[int]] = {}
    rewards_seen = np.zeros(rounds, dtype=np.int64)
    newest_seen = np.full(rounds, -1, dtype=np.int64)
    newest = -1
    assigned = np.full(learners, -1, dtype=np.int64)
    assigned_propensity = np.zeros(learners)
    weights = np.full(k, 1.0 / k)
    daily_weights = np.zeros((scenario.days, k))
    everyone = np.arange(learners)

    for step in range(rounds):
        day, slot = divmod(step, per_day)
        for earlier in arriving.pop(step, []):
            fed = (actions[earlier] >= 0) & consent
            stats.add(everyone[fed], actions[earlier][fed], rewards[earlier][fed])
            newest = max(newest, earlier // per_day)
        rewards_seen[step], newest_seen[step] = int(stats.n.sum()), newest

        present = joins <= day
        decided = present & consent
        if isinstance(policy, Adaptive):
            chosen, propensity = _adaptive_step(stats, level, scenario, rng)
        elif isinstance(policy, ContextualThompson):
            chosen, propensity = _contextual_step(
                stats, features, level, decided, scenario, policy, rng
            )
        elif isinstance(policy, BanditExperiment):
            if slot == 0:
                update = np.random.default_rng(rng.integers(2**63))  # seeded per update
                weights = assignment.normalized(
                    _experiment_weights(stats, assigned, policy, update)
                )
                daily_weights[day] = weights
            joining = decided & (assigned < 0)
            drawn = rng.choice(k, size=int(joining.sum()), p=weights)
            assigned[joining], assigned_propensity[joining] = drawn, weights[drawn]
            chosen, propensity = assigned, assigned_propensity
        else:
            chosen, propensity = rng.integers(k, size=learners), np.full(learners, 1.0 / k)

        actions[step] = np.where(decided, chosen, np.where(present, BASELINE, -1))
        propensities[step] = np.where(decided, propensity, 1.0)
        given = np.maximum(actions[step], 0)
        drawn_rewards = rng.normal(latent[everyone, given], scenario.noise)
        if scenario.reward_bounds is not None:
            drawn_rewards = np.clip(drawn_rewards, *scenario.reward_bounds)
        rewards[step] = drawn_rewards
        # d = 0: the next round (the per-minute recompute); else the first round of day t + d.
        arrival = max(step + 1, (day + scenario.delay_days) * per_day)
        if arrival < rounds:
            arriving.setdefault(arrival, []).append(step)

    made, who = np.nonzero(actions >= 0)
    day_of = made // per_day
    observed = day_of + scenario.delay_days < scenario.days
    source = np.where(consent[who], SOURCES.index(policy.source), SOURCES.index("DISABLED")).astype(
        np.int64
    )
    log = Log(
        strategies=scenario.strategies,
        learner=who,
        day=day_of,
        slot=made % per_day,
        action=actions[made, who],
        propensity=propensities[made, who],
        reward=np.where(observed, rewards[made, who], np.nan),
        level=level[who],
        consent=consent[who],
        source=source,
    )
    experiment_weights = daily_weights if isinstance(policy, BanditExperiment) else None
    return _result(scenario, policy, log, truth, rewards_seen, newest_seen, experiment_weights)


def _result(
    scenario: Scenario,
    policy: Policy,
    log: Log,
    truth: Truth,
    rewards_seen: np.ndarray,
    newest_seen: np.ndarray,
    weights: np.ndarray | None,
) -> Result:
    k = len(scenario.strategies)
    mine = log.consent
    learner, action = log.learner[mine], log.action[mine]
    regret = truth.best[learner] - truth.means[learner, action]
    uniform = truth.best[learner] - truth.means[learner].mean(axis=1)

    def shares(select: np.ndarray) -> np.ndarray:
        counts = np.bincount(action[select], minlength=k).astype(float)
        return counts / counts.sum() if counts.sum() else np.full(k, np.nan)

    level = log.level[mine]
    daily = np.vstack([shares(log.day[mine] == day) for day in range(scenario.days)])
    return Result(
        scenario=scenario,
        policy=policy,
        log=log,
        truth=truth,
        regret=float(regret.sum()),
        uniform_regret=float(uniform.sum()),
        regret_by_level={n: float(regret[level == c].sum()) for c, n in enumerate(LEVELS)},
        decisions_by_level={n: int((level == c).sum()) for c, n in enumerate(LEVELS)},
        allocation=shares(np.ones(action.size, dtype=bool)),
        allocation_by_level={n: shares(level == c) for c, n in enumerate(LEVELS)},
        daily_allocation=daily,
        rewards_seen=rewards_seen,
        newest_seen=newest_seen,
        weights=weights,
    )


# --- Epsilon-greedy against contextual Thompson sampling ---------------------------------------


@dataclass(frozen=True, eq=False)
class RegretComparison:
    """Cumulative regret of the per-learner epsilon-greedy bandit and of contextual Thompson
    sampling on the same worlds (one run each per seed)."""

    scenario: Scenario
    seeds: tuple[int, ...]
    epsilon_greedy: np.ndarray  # per seed
    contextual: np.ndarray  # per seed

    @property
    def ratio(self) -> float:
        """mean contextual regret / mean epsilon-greedy regret."""
        return float(self.contextual.mean() / self.epsilon_greedy.mean())

    @property
    def ratio_standard_error(self) -> float:
        """Of `ratio`, by the delta method over the paired seeds:
        sd(C_s − R·E_s) / (√S · mean E); NaN with one seed."""
        if len(self.seeds) < 2:
            return float("nan")
        residual = self.contextual - self.ratio * self.epsilon_greedy
        return float(residual.std(ddof=1) / (np.sqrt(len(self.seeds)) * self.epsilon_greedy.mean()))


def compare_regret(
    scenario: Scenario,
    seeds: tuple[int, ...] = (0, 1, 2, 3),
    policy: ContextualThompson = CONTEXTUAL_THOMPSON,
) -> RegretComparison:
    """Run ADAPTIVE and `policy` on `scenario` with each seed (the same learners, levels,
    features and latent means for both)."""
    greedy, thompson = [], []
    for seed in seeds:
        world = replace(scenario, seed=seed)
        greedy.append(run(world, ADAPTIVE).regret)
        thompson.append(run(world, policy).regret)
    return RegretComparison(scenario, tuple(seeds), np.array(greedy), np.array(thompson))


# --- Off-policy evaluation against the truth -------------------------------------------------


@dataclass(frozen=True)
class StrategyValue:
    """One strategy always on: its true value and the three estimates (outcomes/ope.py)."""

    strategy: str
    truth: float
    ips: ope.Estimate
    snips: ope.Estimate
    dr: ope.Estimate

    def estimate(self, estimator: str) -> ope.Estimate:
        return {"ips": self.ips, "snips": self.snips, "dr": self.dr}[estimator]


def always_on_target(strategy: int, consent: np.ndarray, strategies: int) -> np.ndarray:
    """π(a | i) for "`strategy` always on" that respects consent: the baseline where it is
    withdrawn."""
    target = ope.always(strategy, consent.size, strategies)
    target[~consent] = ope.always(BASELINE, 1, strategies)[0]
    return target


def evaluate(log: Log, truth: Truth) -> list[StrategyValue]:
    """IPS, SNIPS and DR (95% intervals, effective sample size) of every strategy as an
    always-on policy, from the log's decisions with an observed outcome, next to the truth.
    Intervals are clustered by learner: an experiment's sticky assignment makes a learner's
    decisions one draw."""
    seen = log.observed
    actions, propensities = log.action[seen], log.propensity[seen]
    rewards, consent = log.reward[seen], log.consent[seen]
    k = len(log.strategies)
    true_values = truth.always_on(log)
    rows = []
    for index, name in enumerate(log.strategies):
        value = ope.policy_value(
            actions=actions,
            propensities=propensities,
            rewards=rewards,
            target=always_on_target(index, consent, k),
            clusters=log.learner[seen],
            confidence=COVERAGE_LEVEL,
        )
        rows.append(
            StrategyValue(name, float(true_values[index]), value.ips, value.snips, value.dr)
        )
    return rows


@dataclass(frozen=True, eq=False)
class Coverage:
    """Many logs of one scenario: per estimator arrays of logs × strategies (estimate and
    interval), the truth of each log and the effective sample sizes."""

    scenario: Scenario
    policy: Policy
    truth: np.ndarray
    value: dict[str, np.ndarray]
    lower: dict[str, np.ndarray]
    upper: dict[str, np.ndarray]
    ess: np.ndarray
    regret: np.ndarray  # per log

    @property
    def logs(self) -> int:
        return int(self.truth.shape[0])

    def covered(self, estimator: str) -> np.ndarray:
        return (self.lower[estimator] <= self.truth) & (self.truth <= self.upper[estimator])

    def rate(self, estimator: str, strategy: int | None = None) -> float:
        """Share of intervals covering the truth (over every strategy, or one)."""
        hits = self.covered(estimator)
        return float(hits.mean() if strategy is None else hits[:, strategy].mean())

    def standard_error(self, estimator: str, strategy: int | None = None) -> float:
        """Of `rate`. Over every strategy the logs are the independent units (one log's
        intervals share its data): sd of the per-log share / √logs; for one strategy the
        binomial √(p(1 − p)/logs)."""
        hits = self.covered(estimator).astype(float)
        if strategy is not None:
            p = hits[:, strategy].mean()
            return float(np.sqrt(p * (1 - p) / self.logs))
        return float(hits.mean(axis=1).std(ddof=1) / np.sqrt(self.logs))

    def error(self, estimator: str) -> np.ndarray:
        return self.value[estimator] - self.truth

    def bias(self, estimator: str) -> np.ndarray:
        """Per strategy, the mean error over the logs."""
        return self.error(estimator).mean(axis=0)

    def variance(self, estimator: str) -> np.ndarray:
        """Per strategy, the empirical variance of the error (estimate − truth) over the
        logs: the estimator's variance across logs, the truth's own spread taken out."""
        return self.error(estimator).var(axis=0, ddof=1)

    def variance_ratio(self, estimator: str) -> np.ndarray:
        """Per strategy, the estimator's variance over IPS's."""
        return self.variance(estimator) / self.variance("ips")


def coverage(
    scenario: Scenario,
    *,
    logs: int = 200,
    seed: int = 0,
    policy: Policy = ADAPTIVE,
    progress: Callable[[int, int], None] | None = None,
) -> Coverage:
    """`logs` independent runs of `scenario` (new learners each time; the seeds spawned from
    `seed`), each evaluated against its own truth."""
    if logs < 2:
        raise ValueError("at least two logs are needed")
    seeds = np.random.SeedSequence(seed).generate_state(logs, dtype=np.uint64)
    k = len(scenario.strategies)
    truth = np.zeros((logs, k))
    value = {name: np.zeros((logs, k)) for name in ESTIMATORS}
    lower = {name: np.zeros((logs, k)) for name in ESTIMATORS}
    upper = {name: np.zeros((logs, k)) for name in ESTIMATORS}
    ess = np.zeros((logs, k))
    regret = np.zeros(logs)
    for index, child in enumerate(seeds.tolist()):
        result = run(replace(scenario, seed=int(child)), policy)
        regret[index] = result.regret
        for strategy, row in enumerate(evaluate(result.log, result.truth)):
            truth[index, strategy] = row.truth
            ess[index, strategy] = row.ips.effective_sample_size
            for name in ESTIMATORS:
                estimate = row.estimate(name)
                value[name][index, strategy] = estimate.value
                lower[name][index, strategy] = estimate.ci_lower
                upper[name][index, strategy] = estimate.ci_upper
        if progress is not None:
            progress(index + 1, logs)
    return Coverage(scenario, policy, truth, value, lower, upper, ess, regret)
