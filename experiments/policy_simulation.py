"""The per-learner bandit of DESIGN.md §4 step 3 and §5.5 in simulation, against a Thompson
sampler with the same information and against uniform random. Pure: numpy only, randomness
only from the seed given; the policy is `experiments.bandits`' own code, vectorised over
learners.

Scenario: learners × decisions; arm a's mean for learner u is base_a + d_ua, d_ua ~ N(0, h²)
(heterogeneity h); each decision's reward is N(mean, noise²). Every round each learner
decides once; a learner's own statistics update at once (the per-minute reward recompute),
the population's (means, k, σ²_within) once per round. Regret of a decision: the learner's
best true mean minus the chosen arm's."""

from dataclasses import dataclass

import numpy as np

from experiments import bandits

BASE = np.array([0.45, 0.47, 0.50, 0.55])  # the baseline first: +0, +0.02, +0.05, +0.10
BASELINE = 0


@dataclass(frozen=True)
class Scenario:
    learners: int = 500
    decisions: int = 50
    heterogeneity: float = 0.05
    noise: float = 0.2
    fallback_prior_strength: float = 10.0


def _population(n: np.ndarray, total: np.ndarray, total_sq: np.ndarray, fallback: float):
    means = np.where(n.sum(axis=0) > 0, total.sum(axis=0) / np.maximum(n.sum(axis=0), 1), 0.0)
    arm = np.broadcast_to(np.arange(n.shape[1]), n.shape).ravel()
    prior = bandits.population_prior(
        n.ravel(), total.ravel(), total_sq.ravel(), fallback=fallback, arm=arm
    )
    return means, prior


def run(policy: str, scenario: Scenario, seed: int, *, level: str | None = "MEDIUM") -> float:
    """Cumulative regret of `policy`: EPSILON_GREEDY (the project's rule at `level`),
    THOMPSON (sampling from the same posterior; with `level`, it explores uniformly with
    the level's ε as §4 requires of every personalized policy, so that the comparison is of
    the exploitation rule; `level=None` for pure Thompson sampling) or UNIFORM."""
    rng = np.random.default_rng(seed)
    arms = BASE.size
    truth = BASE + rng.normal(0.0, scenario.heterogeneity, (scenario.learners, arms))
    best = truth.max(axis=1)
    n = np.zeros((scenario.learners, arms))
    total = np.zeros_like(n)
    total_sq = np.zeros_like(n)
    rows = np.arange(scenario.learners)
    regret = 0.0
    epsilon = bandits.EPSILON_BY_LEVEL[level] if level else 0.0
    threshold = bandits.CONFIDENCE_THRESHOLD_BY_LEVEL[level] if level else 1.0
    for _ in range(scenario.decisions):
        population, prior = _population(n, total, total_sq, scenario.fallback_prior_strength)
        strength = bandits.arm_prior_strengths(prior.prior_strength, n.sum(axis=0))
        with np.errstate(divide="ignore", invalid="ignore"):
            own = np.where(n > 0, total / np.maximum(n, 1), 0.0)
        if policy == "UNIFORM":
            chosen = rng.integers(arms, size=scenario.learners)
        elif policy == "THOMPSON":
            within = prior.within_variance if np.isfinite(prior.within_variance) else 0.25
            m = bandits.posterior_means(n, own, population, strength)
            draws = rng.normal(m, np.sqrt(within / np.maximum(n + strength, 1.0)))
            chosen = np.argmax(draws, axis=1)
            explore = rng.random(scenario.learners) < epsilon
            chosen = np.where(explore, rng.integers(arms, size=scenario.learners), chosen)
        else:
            estimates = bandits.posterior_means(n, own, population, strength)
            confidence = bandits.posterior_confidence(
                n,
                own,
                population,
                BASELINE,
                prior_strength=strength,
                within_variance=prior.within_variance,
            )
            chosen = bandits.exploit_indices(estimates, confidence, BASELINE, threshold)
            explore = rng.random(scenario.learners) < epsilon
            chosen = np.where(explore, rng.integers(arms, size=scenario.learners), chosen)
        rewards = rng.normal(truth[rows, chosen], scenario.noise)
        np.add.at(n, (rows, chosen), 1.0)
        np.add.at(total, (rows, chosen), rewards)
        np.add.at(total_sq, (rows, chosen), rewards**2)
        regret += float((best - truth[rows, chosen]).sum())
    return regret


@dataclass(frozen=True)
class RegretRow:
    scenario: str
    level: str
    ours: float
    thompson: float  # with the level's exploration budget
    uniform: float
    pure_thompson: float

    @property
    def vs_thompson(self) -> float:
        return self.ours / self.thompson

    @property
    def vs_uniform(self) -> float:
        return self.ours / self.uniform

    def __str__(self) -> str:
        return (
            f"{self.scenario:<22} {self.level:<6} regret {self.ours:8.1f}   "
            f"Thompson {self.thompson:8.1f} ({self.vs_thompson:4.2f}×)   "
            f"uniform {self.uniform:8.1f} ({self.vs_uniform:4.2f}×)   "
            f"pure Thompson {self.pure_thompson:8.1f}"
        )


def regret_table(seeds: range = range(5), learners: int = 500) -> list[RegretRow]:
    """Mean cumulative regret over `seeds`, per scenario and level (the table of §5.5)."""
    scenarios = {
        "heterogeneity sd 0.05": Scenario(learners=learners, heterogeneity=0.05),
        "no heterogeneity": Scenario(learners=learners, heterogeneity=0.0),
    }
    table = []
    for name, scenario in scenarios.items():
        uniform = float(np.mean([run("UNIFORM", scenario, seed) for seed in seeds]))
        pure = float(np.mean([run("THOMPSON", scenario, seed, level=None) for seed in seeds]))
        for level in ("LOW", "MEDIUM", "HIGH"):
            ours = float(np.mean([run("EPSILON_GREEDY", scenario, s, level=level) for s in seeds]))
            thompson = float(np.mean([run("THOMPSON", scenario, s, level=level) for s in seeds]))
            table.append(RegretRow(name, level, ours, thompson, uniform, pure))
    return table
