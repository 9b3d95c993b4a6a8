"""Simulations that judge the decision rules by what they conclude (DESIGN.md §5): A/A
experiments, hourly peeking, bandits under a time trend. Pure: numpy and scipy, no Django,
randomness only from the seed given. Used by the test suite (small, fixed seeds) and by
`manage.py simulate_decision_rules` (larger), which prints every rate with its standard
error."""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats

from experiments import bandits
from outcomes import stats
from outcomes.analysis import Arm, Design, analyse
from outcomes.grouping import combine
from outcomes.samples import SCORE_FIELDS, learner_samples, outcome_samples, window_statistics

AB_ARMS = [Arm("control", is_control=True), Arm("treatment")]
BANDIT_ARMS = [Arm("a", is_control=True), Arm("b"), Arm("c")]


@dataclass(frozen=True)
class Rate:
    """How often a rule fired in `trials` simulated experiments."""

    name: str
    hits: int
    trials: int
    target: str = ""

    @property
    def rate(self) -> float:
        return self.hits / self.trials if self.trials else float("nan")

    @property
    def standard_error(self) -> float:
        rate = self.rate
        return float(np.sqrt(rate * (1 - rate) / self.trials)) if self.trials else float("nan")

    def __str__(self) -> str:
        line = f"{self.name}: {self.rate:.2%} ± {self.standard_error:.2%} ({self.trials:,} runs)"
        return f"{line}; {self.target}" if self.target else line


def learners(
    rng: np.random.Generator, n: int, effect: float = 0.0, *, correlation: float = 0.8
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n learners with a stable ability (heterogeneity sd 0.15), half in each arm: (arm,
    value after assignment, value in the pre-period); both values follow the ability."""
    ability = rng.normal(0.5, 0.15, n)
    arm = (rng.random(n) < 0.5).astype(np.int64)
    noise = np.sqrt(1 - correlation**2) * 0.15
    before = ability + rng.normal(0, noise, n)
    after = ability + rng.normal(0, noise, n) + effect * arm
    return arm, after, before


def aa_experiments(*, trials: int, learners_per_experiment: int, design: Design, seed: int):
    """A/A A/B tests evaluated once: (rate of p < α, rate of a declared winner)."""
    rng = np.random.default_rng(seed)
    significant = winners = 0
    for _ in range(trials):
        results = analyse(design, AB_ARMS, *learners(rng, learners_per_experiment))
        p = results["comparisons"][0]["p_value"]
        significant += p is not None and p < design.alpha
        winners += results["winner"] is not None
    bayesian = design.engine == "BAYESIAN"
    label = "Bayesian engine" if bayesian else f"{design.analysis.lower()} analysis"
    winner_target = "target ≤ 5% (chance to win ≥ 95%)" if bayesian else "target ≤ α/2"
    return (
        Rate(f"A/A {label}: p < α", significant, trials, f"target {design.alpha:.0%}"),
        Rate(f"A/A {label}: winner declared", winners, trials, winner_target),
    )


def peeking(
    *,
    trials: int,
    analysis: str,
    seed: int,
    days: int = 28,
    learners_per_day: int = 60,
    alpha: float = 0.05,
    tuning: float = 5000.0,
) -> Rate:
    """A/A experiments looked at every hour for `days` days, as the hourly evaluation does:
    the share in which a winner (p < α with a positive difference) is declared at any look.
    Each look is the test `outcomes.analysis` applies, computed for all looks at once."""
    rng = np.random.default_rng(seed)
    hours = days * 24
    hits = 0
    for _ in range(trials):
        n = learners_per_day * days
        arm, values, _ = learners(rng, n)
        arrival = np.sort(rng.uniform(0, hours, n))
        looks = np.searchsorted(arrival, np.arange(1, hours + 1), side="right")
        treated = arm == 1
        cumulative = {
            side: (
                np.cumsum(mask)[looks - 1],
                np.cumsum(np.where(mask, values, 0.0))[looks - 1],
                np.cumsum(np.where(mask, values**2, 0.0))[looks - 1],
            )
            for side, mask in (("t", treated), ("c", ~treated))
        }
        (n_t, s_t, ss_t), (n_c, s_c, ss_c) = cumulative["t"], cumulative["c"]
        looks_ok = looks > 0
        t_rows = stats.Samples(n_t.astype(float), s_t, ss_t)
        c_rows = stats.Samples(n_c.astype(float), s_c, ss_c)
        welch = stats.welch_many(t_rows, c_rows)
        variance = welch["standard_error"] ** 2
        if analysis == "SEQUENTIAL":
            test = stats.sequential_many(
                welch["difference"], variance, n_t + n_c, alpha=alpha, tuning=tuning
            )
        else:
            test = stats.fixed_horizon_many(
                welch["difference"], variance, welch["degrees_of_freedom"], alpha=alpha
            )
        with np.errstate(invalid="ignore"):
            winner = looks_ok & (test["p_value"] < alpha) & (welch["difference"] > 0)
        hits += bool(winner.any())
    target = "target ≤ α/2" if analysis == "SEQUENTIAL" else "a single look would give α/2"
    return Rate(
        f"A/A {analysis.lower()}, looked at hourly for {days} days: winner ever declared",
        hits,
        trials,
        target,
    )


def bandit_experiment(
    rng: np.random.Generator, *, periods: int = 6, per_period: int = 60, trend: float = 0.08
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Three equal arms whose reward rises by `trend` each period; Thompson reweights after
    each period from the learners so far (the project's own bandit code), as the task does.
    Returns (arm, value, period) per learner."""
    arm_of, values, period_of = [], [], []
    weights = np.full(len(BANDIT_ARMS), 1 / len(BANDIT_ARMS))
    for period in range(periods):
        arm = rng.choice(len(BANDIT_ARMS), size=per_period, p=weights)
        arm_of.append(arm)
        values.append(rng.normal(0.4 + trend * period, 0.1, per_period))
        period_of.append(np.full(per_period, period, dtype=float))
        all_arms, all_values = np.concatenate(arm_of), np.concatenate(values)
        outcomes = []
        for index, spec in enumerate(BANDIT_ARMS):
            mine = all_values[all_arms == index]
            outcomes.append(
                bandits.ArmOutcomes(
                    key=spec.key,
                    n=int(mine.size),
                    mean=float(mine.mean()) if mine.size else 0.0,
                    variance=float(mine.var(ddof=1)) if mine.size > 1 else 0.25,
                )
            )
        weights = bandits.bandit_weights(
            "THOMPSON", outcomes, burn_in=5, epsilon=0.1, min_share=0.05, rng=rng
        )
    return np.concatenate(arm_of), np.concatenate(values), np.concatenate(period_of)


def _pooled_welch_winner(arm: np.ndarray, values: np.ndarray) -> bool:
    """What a plain Welch test over all adaptively allocated learners would conclude."""
    control = values[arm == 0]
    p_values = [
        scipy_stats.ttest_ind(values[arm == k], control, equal_var=False).pvalue for k in (1, 2)
    ]
    differences = [values[arm == k].mean() - control.mean() for k in (1, 2)]
    return any(p < 0.05 and d > 0 for p, d in zip(stats.holm(p_values), differences, strict=True))


def bandit_false_winners(*, trials: int, seed: int) -> tuple[Rate, Rate]:
    """Equal-arm bandit experiments under a reward trend: (the project's period-stratified,
    Holm-adjusted rule, a plain pooled Welch test)."""
    rng = np.random.default_rng(seed)
    design = Design(experiment_type="MULTI_ARMED_BANDIT", analysis="FIXED")
    ours = plain = 0
    for _ in range(trials):
        arm, values, period = bandit_experiment(rng)
        ours += analyse(design, BANDIT_ARMS, arm, values, period=period)["winner"] is not None
        plain += _pooled_welch_winner(arm, values)
    return (
        Rate(
            "bandit, equal arms, trend: winner (period-stratified, Holm)",
            ours,
            trials,
            "target ≤ 5%",
        ),
        Rate(
            "bandit, equal arms, trend: winner (plain Welch, Holm)", plain, trials, "for contrast"
        ),
    )


def _window_measures(
    rng: np.random.Generator, windows: int, learners_per_window: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A/A effectiveness windows: each learner (ability sd 0.12) sends 1 + Poisson(6)
    outcomes (noise sd 0.08) to one of the two samples at random. Returns (window code,
    personalized flag, measure row) per learner, measure rows as the database groups them."""
    count = windows * learners_per_window
    window = np.repeat(np.arange(windows), learners_per_window)
    personalized = rng.random(count) < 0.5
    ability = rng.normal(0.5, 0.12, count)
    outcomes = 1 + rng.poisson(6, count)
    # Per learner: the mean and centred sum of squares of `outcomes` draws of N(ability, 0.08²).
    mean = ability + rng.normal(0, 0.08, count) / np.sqrt(outcomes)
    centred = 0.08**2 * rng.chisquare(np.maximum(outcomes - 1, 1)) * (outcomes > 1)
    total = mean * outcomes
    measures = np.zeros((count, 3 + 2 * len(SCORE_FIELDS)))
    measures[:, 0], measures[:, 1], measures[:, 2] = outcomes, total, centred
    measures[:, 3], measures[:, 4] = total, outcomes  # every outcome reports one score
    return window, personalized, measures


def effectiveness_aa(
    *, windows: int, seed: int, learners_per_window: int = 80, minimum: int = 20
) -> tuple[Rate, Rate]:
    """The GLOBAL significance flag over A/A windows: (learner as the unit, as §5.2 and the
    service compute it; outcome as the unit, the earlier rule, for contrast)."""
    rng = np.random.default_rng(seed)
    window, personalized, measures = _window_measures(rng, windows, learners_per_window)
    flags = []
    for learner_level in (True, False):
        sides = []
        for side in (personalized, ~personalized):
            if learner_level:
                keys, _, samples = learner_samples(window[side], measures[side])
            else:
                keys, _, merged = combine(window[side], measures[side])
                samples = outcome_samples(merged)
            sides.append(samples.take(keys, np.arange(windows)))
        result = window_statistics(sides[0], sides[1], minimum=minimum)
        flags.append(int(result["is_statistically_significant"].sum()))
    return (
        Rate(
            "A/A effectiveness windows: GLOBAL flag, learner as unit",
            flags[0],
            windows,
            "target 5%",
        ),
        Rate(
            "A/A effectiveness windows: flag with the outcome as unit",
            flags[1],
            windows,
            "for contrast",
        ),
    )


def all_rates(scale: float = 1.0, *, progress: Callable[[str], None] | None = None) -> list[Rate]:
    """Every rate at `scale` times the default number of runs (1: about a minute)."""
    say = progress or (lambda _: None)
    runs = max(int(1000 * scale), 10)
    rates: list[Rate] = []
    say("A/A effectiveness windows")
    rates.extend(effectiveness_aa(windows=runs * 5, seed=5))
    say("A/A experiments, fixed horizon")
    rates.extend(
        aa_experiments(
            trials=runs, learners_per_experiment=200, design=Design(analysis="FIXED"), seed=1
        )
    )
    say("A/A experiments, Bayesian engine")
    rates.extend(
        aa_experiments(
            trials=runs, learners_per_experiment=200, design=Design(engine="BAYESIAN"), seed=2
        )[1:]
    )
    for analysis in ("SEQUENTIAL", "FIXED"):
        say(f"hourly peeking, {analysis.lower()}")
        rates.append(peeking(trials=runs, analysis=analysis, seed=3))
    say("bandits under a time trend")
    rates.extend(bandit_false_winners(trials=max(runs // 2, 10), seed=4))
    return rates
