import time
from dataclasses import replace

import numpy as np
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from experiments import simulator
from experiments.simulator import ESTIMATOR_NAMES, ESTIMATORS, LEVELS, Policy, Scenario
from outcomes.ope import Estimate

POLICIES: dict[str, Policy] = {
    "ADAPTIVE": simulator.ADAPTIVE,
    "CONTEXTUAL_THOMPSON": simulator.CONTEXTUAL_THOMPSON,
    "THOMPSON": simulator.BanditExperiment(algorithm="THOMPSON"),
    "EPSILON_GREEDY": simulator.BanditExperiment(algorithm="EPSILON_GREEDY"),
    "UCB1": simulator.BanditExperiment(algorithm="UCB1"),
    "UNIFORM": simulator.Uniform(),
}
DEFAULTS = {"learners": 500, "days": 28, "logs": 200, "seeds": 4}
QUICK = {"learners": 150, "days": 14, "logs": 50, "seeds": 4}
# What `--compare` holds contextual Thompson sampling to, against epsilon-greedy's regret.
COMPARE_TARGETS = {True: 0.7, False: 1.1}  # by whether the best strategy depends on features
PER_LEARNER = (simulator.Adaptive, simulator.ContextualThompson)
# An experiment's learners join over the first half of the run: assignments are sticky, so
# learners who all joined on day one would all keep the burn-in's equal weights.
ARRIVAL_SHARE = 0.5


def _percent(value: float) -> str:
    return "–" if not np.isfinite(value) else f"{value:.1%}"


def _interval(estimate: Estimate) -> str:
    return f"{estimate.value:.4f} [{estimate.ci_lower:.4f}, {estimate.ci_upper:.4f}]"


class Command(BaseCommand):
    help = (
        "Simulate the decide call's policies (DESIGN.md §4, §5.4, §5.5) on learners with known "
        "reward distributions, outcome delays and consent, and judge the off-policy estimators "
        "of §5.6 against the truth: regret and realised allocation of one run, each strategy's "
        "true always-on value beside IPS, SNIPS and DR with 95% intervals and effective sample "
        "size, and how often the intervals cover the truth over many logs (with its standard "
        "error). `--compare` instead sets the per-learner epsilon-greedy bandit against "
        "contextual Thompson sampling. Fixed seeds: a run is reproducible."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--learners", type=int, help=f"default {DEFAULTS['learners']}")
        parser.add_argument("--days", type=int, help=f"default {DEFAULTS['days']}")
        parser.add_argument(
            "--logs", type=int, help=f"simulated logs for coverage (default {DEFAULTS['logs']})"
        )
        parser.add_argument("--seed", type=int, default=0, help="default 0")
        parser.add_argument(
            "--quick",
            action="store_true",
            help=(
                f"{QUICK['learners']} learners, {QUICK['days']} days, {QUICK['logs']} logs "
                "unless given"
            ),
        )
        parser.add_argument(
            "--policy",
            choices=sorted(POLICIES),
            default="ADAPTIVE",
            help=(
                "ADAPTIVE: the per-learner bandit (§4 step 3, default); CONTEXTUAL_THOMPSON: "
                "§4 step 3 with ADAPTIVE_POLICY=CONTEXTUAL_THOMPSON; THOMPSON, "
                "EPSILON_GREEDY, UCB1: a bandit experiment (§4 step 2, §5.4); UNIFORM"
            ),
        )
        parser.add_argument(
            "--feature-dependent",
            action="store_true",
            help="learners' cohort decides their best strategy (simulator.COHORT_EFFECTS)",
        )
        parser.add_argument(
            "--compare",
            action="store_true",
            help=(
                "only compare the cumulative regret of the per-learner epsilon-greedy bandit "
                "and contextual Thompson sampling, with and without feature dependence"
            ),
        )
        parser.add_argument(
            "--seeds",
            type=int,
            help=f"seeds for --compare, from --seed on (default {DEFAULTS['seeds']})",
        )

    def handle(self, *args: object, **options: object) -> None:
        started = time.monotonic()
        sizes = QUICK if options["quick"] else DEFAULTS
        learners, days, logs, seeds = (
            int(str(options[name])) if options[name] is not None else sizes[name]
            for name in ("learners", "days", "logs", "seeds")
        )
        if options["compare"]:
            self._compare(learners, days, seeds, int(str(options["seed"])))
            self.stdout.write(self.style.SUCCESS(f"done in {time.monotonic() - started:.0f} s"))
            return
        policy = POLICIES[str(options["policy"])]
        arrival = (
            max(1, int(days * ARRIVAL_SHARE))
            if isinstance(policy, simulator.BanditExperiment)
            else 1
        )
        scenario = Scenario(
            learners=learners,
            days=days,
            arrival_days=arrival,
            fallback_prior_strength=settings.BANDIT_PRIOR_STRENGTH,
            seed=int(str(options["seed"])),
            cohort_effects=simulator.COHORT_EFFECTS if options["feature_dependent"] else (),
        )
        if isinstance(policy, simulator.BanditExperiment):
            policy = simulator.BanditExperiment(
                algorithm=policy.algorithm, burn_in=settings.BANDIT_BURN_IN
            )
        self.stdout.write(f"Scenario: {scenario.describe()}")
        self.stdout.write(f"Policy: {policy}")

        self.stderr.write("… one run")
        result = simulator.run(scenario, policy)
        self._regret(result)
        self._allocation(result)
        self._estimates(result)

        every = max(1, logs // 10)

        def progress(done: int, total: int) -> None:
            if done % every == 0 or done == total:
                elapsed = time.monotonic() - started
                self.stderr.write(f"… {done:,}/{total:,} logs ({elapsed:.0f} s)")

        report = simulator.coverage(
            scenario, logs=logs, seed=scenario.seed, policy=policy, progress=progress
        )
        self._coverage(report)
        self.stdout.write(self.style.SUCCESS(f"done in {time.monotonic() - started:.0f} s"))

    def _compare(self, learners: int, days: int, seeds: int, first_seed: int) -> None:
        """Epsilon-greedy against contextual Thompson sampling, paired by seed, in a world
        where the learner's cohort decides the best strategy and in one where nothing does."""
        if seeds < 1:
            raise CommandError("--seeds must be positive")
        chosen = tuple(range(first_seed, first_seed + seeds))
        self.stdout.write(
            f"Cumulative regret of the per-learner bandit (§4 step 3): epsilon-greedy against "
            f"contextual Thompson sampling ({simulator.CONTEXTUAL_THOMPSON.draws:,} draws a "
            f"decision), mean ± one standard error over {seeds} seed"
            f"{'s' if seeds != 1 else ''} from {first_seed}"
        )
        for dependent in (True, False):
            scenario = Scenario(
                learners=learners,
                days=days,
                fallback_prior_strength=settings.BANDIT_PRIOR_STRENGTH,
                cohort_effects=simulator.COHORT_EFFECTS if dependent else (),
            )
            self.stderr.write(f"… {'with' if dependent else 'without'} feature dependence")
            report = simulator.compare_regret(scenario, chosen)
            self.stdout.write("")
            self.stdout.write(
                "Best strategy depends on learner features"
                if dependent
                else "Best strategy does not depend on learner features"
            )
            self.stdout.write(f"  Scenario: {replace(scenario, seed=first_seed).describe()}")
            for label, values in (
                ("epsilon-greedy", report.epsilon_greedy),
                ("contextual Thompson", report.contextual),
            ):
                spread = values.std(ddof=1) / np.sqrt(values.size) if values.size > 1 else np.nan
                self.stdout.write(f"  {label:<22}{values.mean():10,.1f} ± {spread:,.1f}")
            target = COMPARE_TARGETS[dependent]
            verdict = "meets" if report.ratio <= target else "misses"
            self.stdout.write(
                f"  ratio (contextual / epsilon-greedy) {report.ratio:.3f} ± "
                f"{report.ratio_standard_error:.3f}   target ≤ {target}×: {verdict}"
            )

    def _regret(self, result: simulator.Result) -> None:
        made = sum(result.decisions_by_level.values())
        self.stdout.write("")
        self.stdout.write(
            f"Regret against each learner's best strategy, over the {made:,} decisions the "
            f"policy made ({len(result.log):,} in all)"
        )
        ratio = result.regret / result.uniform_regret if result.uniform_regret else float("nan")
        self.stdout.write(
            f"  {'all':<8} {result.regret:10,.1f}   {result.regret / max(made, 1):.4f} a "
            f"decision   uniform random {result.uniform_regret:,.1f} (this policy "
            f"{ratio:.2f}×)"
        )
        if isinstance(result.policy, PER_LEARNER):
            for level in LEVELS:
                count = result.decisions_by_level[level]
                if count:
                    regret = result.regret_by_level[level]
                    self.stdout.write(
                        f"  {level:<8} {regret:10,.1f}   {regret / count:.4f} a decision   "
                        f"({count:,} decisions)"
                    )

    def _allocation(self, result: simulator.Result) -> None:
        names = result.log.strategies
        width = max(len(name) for name in names) + 2
        self.stdout.write("")
        self.stdout.write("Realised allocation of the policy's decisions")
        self.stdout.write("  " + " " * 14 + "".join(f"{name:>{width}}" for name in names))

        def line(label: str, shares: np.ndarray) -> None:
            cells = "".join(f"{_percent(float(s)):>{width}}" for s in shares)
            self.stdout.write(f"  {label:<14}{cells}")

        line("all days", result.allocation)
        if isinstance(result.policy, PER_LEARNER):
            for level in LEVELS:
                if result.decisions_by_level[level]:
                    line(level, result.allocation_by_level[level])
        line("day 1", result.daily_allocation[0])
        line(f"day {result.scenario.days}", result.daily_allocation[-1])
        if result.weights is not None:
            line("weights, end", result.weights[-1])

    def _estimates(self, result: simulator.Result) -> None:
        rows = simulator.evaluate(result.log, result.truth)
        names = result.log.strategies
        width = max(len(name) for name in names) + 2
        evaluated = int(result.log.observed.sum())
        self.stdout.write("")
        self.stdout.write(
            f"Each strategy always on (consent respected): the truth and the off-policy "
            f"estimates with 95% intervals, from the {evaluated:,} decisions with an outcome"
        )
        header = "".join(f"{ESTIMATOR_NAMES[e]:<28}" for e in ESTIMATORS)
        self.stdout.write(f"  {'':<{width}}{'truth':<9}{header}{'ESS':>8}")
        for row in rows:
            cells = "".join(f"{_interval(row.estimate(e)):<28}" for e in ESTIMATORS)
            ess = row.ips.effective_sample_size
            flag = "" if row.ips.reliable else "  (under 100: unreliable)"
            self.stdout.write(
                f"  {row.strategy:<{width}}{row.truth:<9.4f}{cells}{ess:>8,.0f}{flag}"
            )

    def _coverage(self, report: simulator.Coverage) -> None:
        names = report.scenario.strategies
        column = max(max(len(name) for name in names), 16) + 2
        self.stdout.write("")
        self.stdout.write(
            f"Coverage of the true value by the 95% intervals over {report.logs:,} logs "
            f"(seed {report.scenario.seed}; target 90–98%), ± one standard error"
        )
        labels = ("all strategies", *names)
        self.stdout.write(f"  {'':<8}" + "".join(f"{name:>{column}}" for name in labels))
        for estimator in ESTIMATORS:
            cells = [
                f"{_percent(report.rate(estimator, s))} ± "
                f"{_percent(report.standard_error(estimator, s))}"
                for s in (None, *range(len(names)))
            ]
            self.stdout.write(
                f"  {ESTIMATOR_NAMES[estimator]:<8}" + "".join(f"{c:>{column}}" for c in cells)
            )
        self.stdout.write("")
        self.stdout.write(
            "Variance of the error (estimate − truth) across the logs, and its ratio to IPS's"
        )
        self.stdout.write(f"  {'':<8}" + "".join(f"{name:>{column}}" for name in names))
        for estimator in ESTIMATORS:
            cells = [
                f"{v:.2e} ({r:.2f}×)"
                for v, r in zip(
                    report.variance(estimator), report.variance_ratio(estimator), strict=True
                )
            ]
            self.stdout.write(
                f"  {ESTIMATOR_NAMES[estimator]:<8}" + "".join(f"{c:>{column}}" for c in cells)
            )
        ess = np.median(report.ess, axis=0)
        self.stdout.write(
            f"  {'ESS':<8}" + "".join(f"{f'median {value:,.0f}':>{column}}" for value in ess)
        )
        self.stdout.write(
            f"Regret over the logs: mean {report.regret.mean():,.1f} ± "
            f"{report.regret.std(ddof=1) / np.sqrt(report.logs):,.1f}"
        )
