"""Simulating an experiment design before launch (DESIGN.md §5.3, §5.4): power, false-winner
rate, expected regret and days to readiness of a design and its algorithm, for assumed
effects. Pure: numpy and scipy, no Django; all randomness from the scenario's seed.

The world. Every simulated day brings Poisson(λ) deciding learners, λ the context's daily
number (as the planner measures it, §5.3); each takes part with probability
`enrolment_share` (traffic_percent/100 times the width of the namespace range, §4 step 2) and
is assigned once: assignments are sticky, so a learner keeps the variant of their day. A
learner's value — their mean primary metric, the unit of §5.3 — is clip(N(m_v, sd²), 0, 1)
with m_v = baseline·(1 + effect_v); the truth of an arm is the censored-normal mean of that
value (`simulator.expected_reward`), which orders the arms as m_v does. Arrivals are common to
every design of one simulation (the same traffic meets each design); assignments and values
come from each design's own stream.

The designs. A fixed split (AB_TEST, MULTIVARIATE) assigns by its normalised weights. A
MULTI_ARMED_BANDIT starts equal and is reweighted at the start of every day by
`bandits.bandit_weights` (its algorithm, burn-in, ε and min share) from the learners so far,
as `bandit_reweight` reads them (per arm: learners, mean, sample variance; mean 0 without
learners, variance 0.25 below two), so each day is one allocation period.

The looks. At the end of every day §5.3's analysis runs on the learners so far, as
`outcomes.analysis.analyse` computes it, vectorised over runs and days: the difference of
learner means (`stats.welch_many`) or, for bandits, the period-stratified difference of
`stats.stratified_effect`; SEQUENTIAL `stats.sequential_many` (always valid, so daily looks
do not inflate false winners), FIXED `stats.fixed_horizon_many`; Holm-adjusted for
MULTIVARIATE and bandits; the winner rule of `analysis._winner` (frequentist: the largest
positive difference with adjusted p < α; Bayesian: chance to win ≥ 95 % and risk < 0.0025 on
the relative lift). `looks` equals `analyse` look by look (tests/experiments). Simulated
learners have no pre-period, so CUPED adjusts nothing: with a history it would only narrow
the intervals, so the power here is conservative. Ready (§5.3): participants ≥
min_participants and days running ≥ min_duration_days.

The figures of a design over `runs` simulated experiments:
* power — the share whose first declared winner is a truly best arm (± √(p(1 − p)/runs));
  with no effect at all every arm is best, so it is the A/A false-winner rate; undefined
  (None) when the control alone is best, since the rule only ever names a treatment;
* false-winner rate — the share whose first declared winner is not a best arm;
* expected regret — Σ over enrolled learners of (best truth − their arm's truth), the mean
  over runs ± sd/√runs;
* days to readiness — median and 90th percentile over runs, a run never ready counting as
  later than any day (so a quantile that falls on such runs is None);
* days to a winner — the median day of the first declared winner, None when fewer than half
  the runs find one.
"""

import os
from collections.abc import Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats

from experiments import assignment, bandits
from experiments.simulator import expected_reward
from outcomes import analysis, planning, stats

REWARD_BOUNDS = (0.0, 1.0)
FIXED_SPLIT_TYPES = ("AB_TEST", "MULTIVARIATE")
BANDIT = "MULTI_ARMED_BANDIT"
PLANNED_POWER = 0.8
MDE_SEARCH = (1e-6, 100.0)
NO_WINNER = -1
MAX_WORKERS = 2


@dataclass(frozen=True)
class Scenario:
    """What the simulation assumes: arms (the control flagged, `analysis.Arm`), each arm's
    mean m_v, the between-learner sd, the traffic and the horizon."""

    arms: tuple[analysis.Arm, ...]
    means: tuple[float, ...]
    sd: float
    learners_per_day: float
    enrolment_share: float = 1.0
    days: int = 28
    runs: int = 200
    seed: int = 0

    def __post_init__(self) -> None:
        if len(self.arms) < 2 or len(self.means) != len(self.arms):
            raise ValueError("one mean per arm, and at least two arms")
        if sum(arm.is_control for arm in self.arms) != 1:
            raise ValueError("exactly one arm is the control")
        if not self.sd > 0:
            raise ValueError("sd must be above 0")
        if not self.learners_per_day >= 0 or not 0.0 <= self.enrolment_share <= 1.0:
            raise ValueError("learners_per_day ≥ 0 and enrolment_share within [0, 1]")
        if self.days < 1 or self.runs < 2:
            raise ValueError("days ≥ 1 and runs ≥ 2")

    @property
    def control(self) -> int:
        return next(i for i, arm in enumerate(self.arms) if arm.is_control)

    @property
    def truth(self) -> np.ndarray:
        """Each arm's expected learner value: the censored-normal mean of clip(N(m, sd²))."""
        return expected_reward(np.array(self.means, dtype=float), self.sd, REWARD_BOUNDS)

    @property
    def best(self) -> np.ndarray:
        """The truly best arms (exact ties all count)."""
        truth = self.truth
        return np.isclose(truth, truth.max(), rtol=stats.EQUAL_MEANS_RTOL, atol=0.0)


@dataclass(frozen=True)
class DesignSpec:
    """One design to simulate: a label for staff, the assignment (a fixed split's weights,
    or a bandit's algorithm and settings), the analysis rules and the readiness rule."""

    label: str
    rules: analysis.Design
    weights: tuple[float, ...]
    algorithm: str | None = None
    epsilon: float = 0.1
    min_arm_share: float = 0.01
    burn_in: int = 20  # BANDIT_BURN_IN
    min_participants: int = 20
    min_duration_days: int = 14

    @property
    def is_bandit(self) -> bool:
        return self.rules.experiment_type == BANDIT


@dataclass(frozen=True, eq=False)
class DailyData:
    """Per run, day and arm: learners assigned that day, Σ value and Σ value²."""

    n: np.ndarray
    total: np.ndarray
    total_sq: np.ndarray


@dataclass(frozen=True)
class Figure:
    value: float | None
    standard_error: float | None


@dataclass(frozen=True, eq=False)
class DesignResult:
    design: DesignSpec
    power: Figure
    false_winner_rate: Figure
    expected_regret: Figure
    readiness_median: float | None
    readiness_p90: float | None
    winner_median: float | None
    learners: float  # mean enrolled per run
    allocation: dict[str, float]  # share of all simulated learners per arm
    winners: np.ndarray  # per run: the first declared winner's arm index, −1 for none
    regret: np.ndarray  # per run


# --- The world -------------------------------------------------------------------------------


def enrolments(scenario: Scenario, rng: np.random.Generator) -> np.ndarray:
    """runs × days: learners enrolled each day, Binomial(Poisson(λ), share)."""
    arrivals = rng.poisson(scenario.learners_per_day, (scenario.runs, scenario.days))
    return rng.binomial(arrivals, scenario.enrolment_share)


def _day_values(
    counts: np.ndarray, means: np.ndarray, sd: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """For runs × arms counts of one day: Σ and Σ² of clip(N(m_arm, sd²), 0, 1) per cell."""
    flat = counts.ravel()
    group = np.repeat(np.arange(flat.size), flat)
    arm_means = np.tile(means, counts.shape[0])
    values = np.clip(rng.normal(arm_means[group], sd), *REWARD_BOUNDS)
    total = np.bincount(group, weights=values, minlength=flat.size)
    total_sq = np.bincount(group, weights=values**2, minlength=flat.size)
    return total.reshape(counts.shape), total_sq.reshape(counts.shape)


def _arm_outcomes(n: np.ndarray, total: np.ndarray, total_sq: np.ndarray):
    """bandit_reweight's arm statistics from cumulative sums of one run."""
    samples = stats.Samples(n.astype(float), total, total_sq)
    means, variances = samples.mean, samples.variance
    return [
        bandits.ArmOutcomes(
            key=str(index),
            n=int(n[index]),
            mean=float(means[index]) if n[index] else 0.0,
            variance=float(variances[index]) if n[index] >= 2 else 0.25,
        )
        for index in range(n.size)
    ]


Update = tuple[DesignSpec, np.ndarray, np.ndarray, np.ndarray, int]


def _reweight(update: Update) -> np.ndarray:
    """§5.4 for one run from its learners so far, with the update's own generator."""
    design, n, total, total_sq, seed = update
    return assignment.normalized(
        bandits.bandit_weights(
            design.algorithm or "THOMPSON",
            _arm_outcomes(n, total, total_sq),
            burn_in=design.burn_in,
            epsilon=design.epsilon,
            min_share=design.min_arm_share,
            rng=np.random.default_rng(seed),
        )
    )


def assign(
    scenario: Scenario,
    design: DesignSpec,
    enrolled: np.ndarray,
    rng: np.random.Generator,
    pool: Executor | None = None,
) -> DailyData:
    """Assign each day's learners by the design and draw their values. A bandit's daily
    updates of the runs are independent (each seeded from `rng` beforehand), so `pool` may
    compute them in parallel without changing the result."""
    runs, days = enrolled.shape
    k = len(scenario.arms)
    means = np.array(scenario.means, dtype=float)
    n = np.zeros((runs, days, k), dtype=np.int64)
    total, total_sq = np.zeros((runs, days, k)), np.zeros((runs, days, k))
    weights = np.broadcast_to(assignment.normalized(design.weights), (runs, k)).copy()
    seen_n = np.zeros((runs, k), dtype=np.int64)
    seen_total, seen_sq = np.zeros((runs, k)), np.zeros((runs, k))
    for day in range(days):
        if design.is_bandit:
            seeds: list[int] = np.asarray(rng.integers(2**63, size=runs)).tolist()  # per update
            updates = [
                (design, seen_n[r], seen_total[r], seen_sq[r], seeds[r]) for r in range(runs)
            ]
            rows = pool.map(_reweight, updates) if pool is not None else map(_reweight, updates)
            weights = np.array(list(rows))
        n[:, day] = rng.multinomial(enrolled[:, day], weights)
        total[:, day], total_sq[:, day] = _day_values(n[:, day], means, scenario.sd, rng)
        seen_n += n[:, day]
        seen_total += total[:, day]
        seen_sq += total_sq[:, day]
    return DailyData(n=n, total=total, total_sq=total_sq)


# --- The looks -------------------------------------------------------------------------------


def _relative(difference, variance_t, variance_c, treated, controlled):
    """Δ / x̄_c with `stats.relative_variance`'s delta method, elementwise."""
    with np.errstate(divide="ignore", invalid="ignore"):
        usable = np.isfinite(controlled) & (controlled != 0)
        ratio = treated / controlled
        variance = (variance_t + variance_c * ratio**2) / controlled**2
        return np.where(usable, difference / controlled, np.nan), np.where(usable, variance, np.nan)


def _pooled_effects(data: DailyData, t: int, c: int):
    """Cumulative difference of learner means at each look (`stats.effect` via Welch)."""
    n, total, total_sq = (np.cumsum(a, axis=1) for a in (data.n, data.total, data.total_sq))
    treatment = stats.Samples(n[..., t].astype(float), total[..., t], total_sq[..., t])
    control = stats.Samples(n[..., c].astype(float), total[..., c], total_sq[..., c])
    welch = stats.welch_many(treatment, control)
    with np.errstate(divide="ignore", invalid="ignore"):
        variance_t = treatment.variance / treatment.n
        variance_c = control.variance / control.n
    relative = _relative(welch["difference"], variance_t, variance_c, treatment.mean, control.mean)
    return {
        "difference": welch["difference"],
        "variance": welch["standard_error"] ** 2,
        "degrees_of_freedom": welch["degrees_of_freedom"],
        "n_total": n[..., t] + n[..., c],
        "relative": relative,
    }


def _stratified_effects(data: DailyData, t: int, c: int):
    """`stats.stratified_effect` over the periods (days) up to each look, by cumulative sums:
    w_k = n_k / Σ n_j over the periods where both arms have two learners or more."""
    treatment = stats.Samples(
        data.n[..., t].astype(float), data.total[..., t], data.total_sq[..., t]
    )
    control = stats.Samples(data.n[..., c].astype(float), data.total[..., c], data.total_sq[..., c])
    var_t, var_c = treatment.variance, control.variance
    usable = (treatment.n >= 2) & (control.n >= 2) & np.isfinite(var_t) & np.isfinite(var_c)
    size = np.where(usable, treatment.n + control.n, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_t = np.where(usable, treatment.mean, 0.0)
        mean_c = np.where(usable, control.mean, 0.0)
        v_t = np.where(usable, var_t / treatment.n, 0.0)
        v_c = np.where(usable, var_c / control.n, 0.0)
        dof_t = np.where(usable, v_t**2 / (treatment.n - 1), 0.0)
        dof_c = np.where(usable, v_c**2 / (control.n - 1), 0.0)
        weight = np.cumsum(size, axis=1)
        treated = np.cumsum(size * mean_t, axis=1) / weight
        controlled = np.cumsum(size * mean_c, axis=1) / weight
        variance_t = np.cumsum(size**2 * v_t, axis=1) / weight**2
        variance_c = np.cumsum(size**2 * v_c, axis=1) / weight**2
        spread = np.cumsum(size**2 * (v_t + v_c), axis=1)
        dof = np.cumsum(size**4 * (dof_t + dof_c), axis=1)
        df = np.where(dof > 0, spread**2 / dof, np.nan)
    defined = weight > 0
    treated, controlled = np.where(defined, treated, np.nan), np.where(defined, controlled, np.nan)
    difference = treated - controlled
    difference = np.where(
        np.isclose(treated, controlled, rtol=stats.EQUAL_MEANS_RTOL, atol=0.0), 0.0, difference
    )
    variance = np.where(defined, variance_t + variance_c, np.nan)
    n = np.cumsum(data.n, axis=1)
    return {
        "difference": difference,
        "variance": variance,
        "degrees_of_freedom": np.where(defined, df, np.nan),
        "n_total": n[..., t] + n[..., c],
        "relative": _relative(difference, variance_t, variance_c, treated, controlled),
    }


def _posterior(estimate: np.ndarray, variance: np.ndarray, rules: analysis.Design):
    """`stats.bayesian_effect` elementwise: posterior mean, chance to win, risk."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        defined = np.isfinite(estimate) & np.isfinite(variance) & (variance > 0)
        precision = np.where(defined, 1.0 / variance, 1.0)
        mean = np.where(defined, estimate, 0.0)
        if rules.prior_sd is not None and rules.prior_sd > 0:
            prior_precision = 1.0 / rules.prior_sd**2
            prior_mean = rules.prior_mean or 0.0
            mean = (mean * precision + prior_mean * prior_precision) / (precision + prior_precision)
            precision = precision + prior_precision
        sd = np.sqrt(1.0 / precision)
        chance = scipy_stats.norm.sf(0.0, loc=mean, scale=sd)
        below = 1.0 - chance
        truncated = scipy_stats.truncnorm.mean(-np.inf, (0.0 - mean) / sd, loc=mean, scale=sd)
        risk = np.where(below > 0, -below * truncated, 0.0)
    nan = np.full(estimate.shape, np.nan)
    return (
        np.where(defined, mean, nan),
        np.where(defined, chance, nan),
        np.where(defined, risk, nan),
    )


def looks(
    rules: analysis.Design, arms: Sequence[analysis.Arm], data: DailyData
) -> dict[str, np.ndarray]:
    """§5.3 at the end of every day: arrays runs × days × treatments (the arms other than
    the control, in order) of difference, p_value, adjusted_p_value and, for the Bayesian
    engine, posterior_mean, chance_to_win and risk; `winner` runs × days, the arm index the
    rule names or −1."""
    control = next(i for i, arm in enumerate(arms) if arm.is_control)
    treatments = [i for i in range(len(arms)) if i != control]
    effects = _stratified_effects if rules.experiment_type == BANDIT else _pooled_effects
    rows: dict[str, list[np.ndarray]] = {
        name: [] for name in ("difference", "p_value", "posterior_mean", "chance_to_win", "risk")
    }
    for t in treatments:
        effect = effects(data, t, control)
        if rules.analysis == "SEQUENTIAL":
            tested = stats.sequential_many(
                effect["difference"],
                effect["variance"],
                effect["n_total"],
                alpha=rules.alpha,
                tuning=rules.sequential_tuning,
            )
        else:
            tested = stats.fixed_horizon_many(
                effect["difference"],
                effect["variance"],
                effect["degrees_of_freedom"],
                alpha=rules.alpha,
            )
        rows["difference"].append(effect["difference"])
        rows["p_value"].append(tested["p_value"])
        if rules.engine == "BAYESIAN":
            relative_estimate, relative_variance = effect["relative"]
            mean, chance, risk = _posterior(relative_estimate, relative_variance, rules)
            rows["posterior_mean"].append(mean)
            rows["chance_to_win"].append(chance)
            rows["risk"].append(risk)
    out = {name: np.stack(values, axis=-1) for name, values in rows.items() if values}
    adjusted = out["p_value"].copy()
    if rules.experiment_type in ("MULTIVARIATE", BANDIT) and len(treatments) > 1:
        flat = adjusted.reshape(-1, len(treatments))
        for row in range(flat.shape[0]):
            flat[row] = stats.holm(flat[row].tolist())
    out["adjusted_p_value"] = adjusted
    index = np.array(treatments)
    if rules.engine == "BAYESIAN":
        passing = (out["chance_to_win"] >= analysis.WINNER_CHANCE) & (
            np.nan_to_num(out["risk"], nan=0.0) < analysis.WINNER_RISK
        )
        score = np.where(passing, out["posterior_mean"], -np.inf)
    else:
        with np.errstate(invalid="ignore"):
            passing = (adjusted < rules.alpha) & (out["difference"] > 0)
        score = np.where(passing, out["difference"], -np.inf)
    out["winner"] = np.where(passing.any(axis=-1), index[np.argmax(score, axis=-1)], NO_WINNER)
    return out


# --- The figures -----------------------------------------------------------------------------


def _share(hits: np.ndarray) -> Figure:
    p = float(hits.mean())
    return Figure(p, float(np.sqrt(p * (1 - p) / hits.size)))


def _day_quantile(first_day: np.ndarray, q: float) -> float | None:
    """The q-quantile of the 1-based day of an event, never counting as after every day."""
    value = float(np.quantile(first_day, q, method="inverted_cdf"))
    return value if np.isfinite(value) else None


def _first_day(happened: np.ndarray) -> np.ndarray:
    """runs × days booleans → the 1-based first day per run, inf when never."""
    return np.where(happened.any(axis=1), np.argmax(happened, axis=1) + 1.0, np.inf)


def summarise(scenario: Scenario, design: DesignSpec, data: DailyData) -> DesignResult:
    arms = scenario.arms
    at_looks = looks(design.rules, arms, data)["winner"]
    declared = at_looks != NO_WINNER
    runs = np.arange(scenario.runs)
    first = np.where(declared.any(axis=1), at_looks[runs, np.argmax(declared, axis=1)], NO_WINNER)
    best = scenario.best
    named = first != NO_WINNER
    right = named & best[np.maximum(first, 0)]
    wrong = named & ~best[np.maximum(first, 0)]
    treatments_best = bool(np.delete(best, scenario.control).any())
    power = _share(right) if treatments_best else Figure(None, None)

    truth = scenario.truth
    gap = truth.max() - truth
    regret = (data.n * gap).sum(axis=(1, 2))
    regret_se = float(regret.std(ddof=1) / np.sqrt(regret.size))

    participants = np.cumsum(data.n.sum(axis=2), axis=1)
    day = np.arange(1, scenario.days + 1)
    ready = (participants >= design.min_participants) & (day >= design.min_duration_days)
    ready_day = _first_day(ready)
    winner_day = _first_day(declared)
    counts = data.n.sum(axis=(0, 1))
    everyone = counts.sum()
    return DesignResult(
        design=design,
        power=power,
        false_winner_rate=_share(wrong),
        expected_regret=Figure(float(regret.mean()), regret_se),
        readiness_median=_day_quantile(ready_day, 0.5),
        readiness_p90=_day_quantile(ready_day, 0.9),
        winner_median=_day_quantile(winner_day, 0.5),
        learners=float(participants[:, -1].mean()),
        allocation={
            arm.key: float(count / everyone) if everyone else 0.0
            for arm, count in zip(arms, counts, strict=True)
        },
        winners=first,
        regret=regret,
    )


def simulate(
    scenario: Scenario, designs: Sequence[DesignSpec], *, workers: int | None = None
) -> list[DesignResult]:
    """Every design against the same traffic; see the module docstring. Bandit updates run
    on `workers` threads (default: up to two, the cores this kind of machine has; numpy
    releases the GIL while drawing), with the same result as one."""
    traffic, *streams = np.random.SeedSequence(scenario.seed).spawn(1 + len(designs))
    enrolled = enrolments(scenario, np.random.default_rng(traffic))
    workers = workers or min(MAX_WORKERS, os.cpu_count() or 1)
    results = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for design, stream in zip(designs, streams, strict=True):
            data = assign(
                scenario,
                design,
                enrolled,
                np.random.default_rng(stream),
                pool if workers > 1 else None,
            )
            results.append(summarise(scenario, design, data))
    return results


def detectable_mde(
    *,
    baseline_mean: float,
    sd: float,
    learners_per_variant: float,
    variants: int,
    alpha: float,
    analysis_kind: str,
    tuning: float,
    power: float = PLANNED_POWER,
) -> float | None:
    """The planner's MDE for a horizon: the smallest relative MDE for which `planning.plan`
    asks no more than `learners_per_variant` learners per variant at `power` (bisection on
    a log scale); None when even an MDE of 100 (10,000 %) needs more."""

    def enough(mde: float) -> bool:
        try:
            needed = planning.plan(
                baseline_mean=baseline_mean,
                sd=sd,
                mde=mde,
                alpha=alpha,
                power=power,
                variants=variants,
                analysis=analysis_kind,
                tuning=tuning,
            ).per_variant
        except planning.PlanError as exc:
            if exc.attr == "mde":  # more than a billion learners: far from enough
                return False
            raise
        return needed <= learners_per_variant

    low, high = MDE_SEARCH
    if learners_per_variant < 1 or not enough(high):
        return None
    if enough(low):
        return low
    for _ in range(60):
        middle = float(np.sqrt(low * high))
        if enough(middle):
            high = middle
        else:
            low = middle
        if high / low < 1 + 1e-4:
            break
    return high
