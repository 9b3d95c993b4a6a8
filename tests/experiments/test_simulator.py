"""The policy simulator (DESIGN.md §4, §5.4–§5.6): its world by hand, its log against the
project's own policy functions, outcome delays, and the off-policy estimators against the
simulator's truth over 200 logs with fixed seeds."""

from dataclasses import replace
from io import StringIO

import numpy as np
import pytest
from django.core.management import call_command

from experiments import bandits
from experiments import contextual as ctx
from experiments import simulator as sim

# Small enough for 200 logs in a few seconds, large enough for every strategy's effective
# sample size to sit near or above MIN_EFFECTIVE_SAMPLE (median 45–150, see the test).
SMALL = sim.Scenario(learners=100, days=10, decisions_per_day=2, seed=3)
LOGS = 200
COVERAGE_SEED = 7


@pytest.fixture(scope="module")
def small_coverage() -> sim.Coverage:
    return sim.coverage(SMALL, logs=LOGS, seed=COVERAGE_SEED)


# --- The world -------------------------------------------------------------------------------


def test_expected_reward__censored_normal_mean__matches_monte_carlo():
    rng = np.random.default_rng(1)
    latent = np.array([-0.1, 0.05, 0.45, 0.9, 1.2])
    draws = np.clip(rng.normal(latent, 0.2, (400_000, latent.size)), 0.0, 1.0)
    exact = sim.expected_reward(latent, 0.2, (0.0, 1.0))
    standard_error = draws.std(axis=0) / np.sqrt(draws.shape[0])
    assert np.all(np.abs(exact - draws.mean(axis=0)) < 4 * standard_error), exact
    assert sim.expected_reward(latent, 0.2, None).tolist() == latent.tolist()
    assert sim.expected_reward(latent, 0.0, (0.0, 1.0)).tolist() == [0.0, 0.05, 0.45, 0.9, 1.0]


def test_scenario__shares_that_do_not_sum_to_one__refused():
    with pytest.raises(ValueError, match="sum to 1"):
        sim.Scenario(level_mix={"LOW": 0.5, "MEDIUM": 0.2})
    with pytest.raises(ValueError, match="one base mean per strategy"):
        sim.Scenario(base_means=(0.4, 0.5))


def test_truth__always_on_respects_consent__hand_computed():
    # Learner 0 kept consent, learner 1 withdrew it; learner 1's last decision has no outcome.
    truth = sim.Truth(means=np.array([[0.4, 0.6], [0.3, 0.9]]), consent=np.array([True, False]))
    log = sim.Log(
        strategies=("a", "b"),
        learner=np.array([0, 1, 1]),
        day=np.array([0, 0, 1]),
        slot=np.zeros(3, dtype=int),
        action=np.array([1, 0, 0]),
        propensity=np.array([0.5, 1.0, 1.0]),
        reward=np.array([1.0, 0.0, np.nan]),
        level=np.zeros(3, dtype=int),
        consent=np.array([True, False, False]),
        source=np.array([1, 0, 0]),
    )
    # always a: (0.4 + 0.3) / 2; always b: learner 1 still gets the baseline, (0.6 + 0.3) / 2
    assert truth.always_on(log).tolist() == pytest.approx([0.35, 0.45])
    target = sim.always_on_target(1, np.array([True, False]), 2)
    assert target.tolist() == [[0.0, 1.0], [1.0, 0.0]]


def test_run__consent_withdrawn__baseline_with_propensity_1_source_disabled():
    result = sim.run(sim.Scenario(learners=80, days=4, consent_withdrawn=0.25, seed=1))
    log = result.log
    withdrawn = ~log.consent
    assert np.unique(log.learner[withdrawn]).size == 20  # 25% of 80, to the learner
    assert (log.action[withdrawn] == sim.BASELINE).all()
    assert (log.propensity[withdrawn] == 1.0).all()
    assert (log.source[withdrawn] == sim.SOURCES.index("DISABLED")).all()
    assert (log.source[~withdrawn] == sim.SOURCES.index("BANDIT")).all()
    assert len(log) == 80 * 4 * 2
    # Their rewards never reach the bandit statistics: 60 consenting learners × 2 a day.
    assert result.rewards_seen[2] == 60 * 2
    assert result.allocation.sum() == pytest.approx(1.0)


# --- The logged propensities are the policy's own ---------------------------------------------


def _visible(log: sim.Log, scenario: sim.Scenario, step: int) -> np.ndarray:
    """Decisions whose reward the policy's statistics hold at round `step`, from the log
    alone: consenting, and arrived (the next round when d = 0, else day t + d)."""
    per_day = scenario.decisions_per_day
    made = log.day * per_day + log.slot
    arrival = np.maximum(made + 1, (log.day + scenario.delay_days) * per_day)
    return log.consent & (arrival <= step)


def _policy_as_the_decide_call_computes_it(
    log: sim.Log, scenario: sim.Scenario, step: int, learner: int
) -> np.ndarray:
    """§4 step 3 for one learner as experiments/services/decisions.py does it: the population
    model as catalog.py aggregates it, the confidence of §5.5, UserArms, and
    bandits.epsilon_greedy_policy."""
    k = len(scenario.strategies)
    seen = _visible(log, scenario, step)
    n = np.zeros((scenario.learners, k))
    total, total_sq = np.zeros_like(n), np.zeros_like(n)
    rows, actions, rewards = log.learner[seen], log.action[seen], log.reward[seen]
    np.add.at(n, (rows, actions), 1.0)
    np.add.at(total, (rows, actions), rewards)
    np.add.at(total_sq, (rows, actions), rewards**2)
    sums = [bandits.ArmSums.of(n[:, a], total[:, a], total_sq[:, a]) for a in range(k)]
    prior = bandits.population_prior_from_sums(
        [s for s in sums if s.learners > 0], fallback=scenario.fallback_prior_strength
    )
    means = np.array([s.total / s.rewards if s.rewards else 0.0 for s in sums])
    strength = bandits.arm_prior_strengths(
        prior.prior_strength, np.array([s.rewards for s in sums])
    )
    own = np.where(n[learner] > 0, total[learner] / np.maximum(n[learner], 1), 0.0)
    confidence = bandits.posterior_confidence(
        n[[learner]],
        own[None, :],
        means,
        sim.BASELINE,
        prior_strength=strength,
        within_variance=prior.within_variance,
    )[0]
    arms = [
        bandits.UserArm(
            key=scenario.strategies[a],
            n_user=int(n[learner, a]),
            mean_user=float(own[a]),
            mean_population=float(means[a]),
            confidence=float(confidence[a]) if np.isfinite(confidence[a]) else 0.0,
            is_baseline=a == sim.BASELINE,
        )
        for a in range(k)
    ]
    level = sim.LEVELS[int(log.level[log.learner == learner][0])]
    return bandits.epsilon_greedy_policy(
        arms,
        epsilon=bandits.EPSILON_BY_LEVEL[level],
        threshold=bandits.CONFIDENCE_THRESHOLD_BY_LEVEL[level],
        prior_strength=strength,
    )


@pytest.mark.parametrize("delay", [0, 2])
def test_run__logged_propensities__equal_bandits_epsilon_greedy_policy_for_the_same_state(delay):
    """Every consenting decision's logged propensity equals, exactly, the probability
    bandits.epsilon_greedy_policy gives the logged action in the state rebuilt from the log
    alone, as the decide call would build it; the states include exploitation of a
    non-baseline strategy and the confidence gate falling back to the baseline."""
    scenario = sim.Scenario(learners=40, days=6, decisions_per_day=2, delay_days=delay, seed=5)
    log = sim.run(scenario).log
    per_day = scenario.decisions_per_day
    exploited_other = gated = 0
    for index in np.flatnonzero(log.consent):
        step = int(log.day[index] * per_day + log.slot[index])
        policy = _policy_as_the_decide_call_computes_it(
            log, scenario, step, int(log.learner[index])
        )
        assert log.propensity[index] == policy[log.action[index]], (index, policy)
        exploited_other += int(np.argmax(policy) != sim.BASELINE)
        gated += int(np.argmax(policy) == sim.BASELINE and step >= (delay + 1) * per_day)
    assert exploited_other > 50
    assert gated > 10


def test_run__logged_propensities__are_the_probabilities_the_actions_were_drawn_with():
    """E[1(a_i = s) / p_i] = 1 for every strategy s when p_i is the probability a_i was drawn
    with; per level and strategy within four standard errors (the largest here: 1.2)."""
    log = sim.run(sim.Scenario(seed=11)).log
    for code, level in enumerate(sim.LEVELS):
        mine = log.consent & (log.level == code)
        for strategy in range(len(log.strategies)):
            weights = (log.action[mine] == strategy) / log.propensity[mine]
            standard_error = weights.std(ddof=1) / np.sqrt(weights.size)
            assert abs(weights.mean() - 1) < 4 * standard_error, (level, strategy)


def test_run__follows_bandits_own_tables_and_rule__not_a_copy(monkeypatch):
    """Changing bandits' ε table, or its exploitation rule, changes the simulator's log: the
    simulator has no policy of its own."""
    scenario = sim.Scenario(learners=30, days=3, level_mix={"MEDIUM": 1.0}, seed=2)
    monkeypatch.setitem(bandits.EPSILON_BY_LEVEL, "MEDIUM", 0.5)
    monkeypatch.setitem(bandits.CONFIDENCE_THRESHOLD_BY_LEVEL, "MEDIUM", 1.01)  # never passes
    log = sim.run(scenario).log
    mine = log.consent
    # exploitation always falls back to the baseline: 1 − 0.5 + 0.5/4, and 0.5/4 elsewhere
    expected = np.where(log.action[mine] == sim.BASELINE, 0.625, 0.125)
    assert log.propensity[mine].tolist() == expected.tolist()

    last = len(scenario.strategies) - 1
    monkeypatch.setattr(
        bandits, "exploit_indices", lambda estimates, *args: np.full(len(estimates), last)
    )
    log = sim.run(scenario).log
    mine = log.consent
    expected = np.where(log.action[mine] == last, 0.625, 0.125)
    assert log.propensity[mine].tolist() == expected.tolist()


# --- Delays ----------------------------------------------------------------------------------


@pytest.mark.parametrize("delay", [0, 1, 3])
def test_delay__no_reward_of_day_t_reaches_the_policy_before_day_t_plus_d(delay):
    scenario = sim.Scenario(learners=60, days=8, decisions_per_day=2, delay_days=delay, seed=4)
    result = sim.run(scenario)
    log, per_day = result.log, scenario.decisions_per_day
    rounds = np.arange(scenario.rounds)
    day = rounds // per_day
    # The newest reward the statistics held when the policy decided on day t is from day
    # t − d (d = 0: from the round before); none (−1) before that.
    newest = np.maximum(rounds - 1, -1) // per_day if delay == 0 else day - delay
    assert result.newest_seen.tolist() == np.maximum(newest, -1).tolist()
    consenting = log.consent
    for step in rounds:
        t = step // per_day
        if delay:
            expected = consenting & (log.day <= t - delay)
        else:
            expected = consenting & (log.day * per_day + log.slot < step)
        assert result.rewards_seen[step] == expected.sum(), step
    # What the policy does shows it: until day d it has no reward at all, so every
    # exploitation is the baseline's (ties and the undefined confidence both go there).
    epsilon = np.array([bandits.EPSILON_BY_LEVEL[name] for name in sim.LEVELS])[log.level]
    k = len(scenario.strategies)
    blind = epsilon / k + (1 - epsilon) * (log.action == sim.BASELINE)
    early = consenting & (log.day < delay)
    assert (log.propensity[early] == blind[early]).all()
    later = consenting & (log.day >= delay + 1)
    assert (log.propensity[later] != blind[later]).any()
    # Outcomes due after the last day are never observed.
    assert np.isnan(log.reward[log.day >= scenario.days - delay]).all()
    assert np.isfinite(log.reward[log.day < scenario.days - delay]).all()


# --- Regret and the experiment policy ----------------------------------------------------------


def test_regret__uniform_policy_matches_its_expectation_and_the_bandit_beats_it():
    scenario = sim.Scenario(learners=200, days=10, seed=8)
    uniform = sim.run(scenario, sim.Uniform())
    log, truth = uniform.log, uniform.truth
    mine = log.learner[log.consent]
    # Realised minus expected regret: a sum of independent zero-mean terms whose variance
    # is each learner's spread of true means over the strategies.
    standard_error = np.sqrt(truth.means[mine].var(axis=1).sum())
    gap = uniform.regret - uniform.uniform_regret
    assert abs(gap) < 4 * standard_error, (gap, standard_error)
    adaptive = sim.run(scenario)
    assert adaptive.uniform_regret == pytest.approx(uniform.uniform_regret)
    assert adaptive.regret < 0.6 * adaptive.uniform_regret, (adaptive.regret, uniform.regret)


def test_experiment__sticky_assignment_with_the_weights_in_force_when_joining():
    scenario = sim.Scenario(learners=200, days=10, arrival_days=6, seed=9)
    policy = sim.BanditExperiment(algorithm="THOMPSON", burn_in=10)
    result = sim.run(scenario, policy)
    log, weights = result.log, result.weights
    assert weights is not None
    mine = log.consent
    assert (log.source[mine] == sim.SOURCES.index("EXPERIMENT")).all()
    for learner in np.unique(log.learner[mine]):
        rows = log.learner == learner
        first_day = int(log.day[rows].min())
        assert np.unique(log.action[rows]).size == 1  # sticky
        assert (log.propensity[rows] == weights[first_day, log.action[rows][0]]).all()
    # Equal weights until every arm has `burn_in` users with outcomes (delay 1 day: the
    # users assigned before day t), then the allocation moves and keeps min_arm_share.
    for day in range(scenario.days):
        before = mine & (log.day < day)
        users = [np.unique(log.learner[before & (log.action == a)]).size for a in range(4)]
        if min(users) < policy.burn_in:
            assert weights[day].tolist() == [0.25] * 4, day
    assert weights[-1].max() > 0.5
    assert weights[-1].min() >= policy.min_arm_share - 1e-12


# --- Off-policy estimates against the truth ----------------------------------------------------


def test_evaluate__one_large_log__estimates_near_the_truth():
    result = sim.run(sim.Scenario(seed=11))
    rows = sim.evaluate(result.log, result.truth)
    assert [row.strategy for row in rows] == list(sim.STRATEGY_KEYS)
    for row in rows:
        assert row.ips.reliable, row  # ESS ≥ MIN_EFFECTIVE_SAMPLE with 27,000 decisions
        for name in sim.ESTIMATORS:
            estimate = row.estimate(name)
            assert abs(estimate.value - row.truth) < 4 * estimate.standard_error, (name, row)
            assert estimate.decisions == int(result.log.observed.sum())


def test_coverage__200_logs__each_estimator_covers_the_truth_90_to_98_percent(small_coverage):
    """100 learners × 10 days × 2 decisions, every level, delay 1, 10% without consent; 200
    logs (seed 7). Over every strategy, each estimator's 95% interval (clustered by learner)
    covers the truth 90–98% of the time (IPS 94.4% ± 0.8%, SNIPS 94.4% ± 0.8%, DR 95.3% ±
    0.7%; the standard error counts the log as the unit). One strategy's rate (SE 1.0–2.0
    points) is held to 90–98% widened by two of its standard errors: its figures range from
    91.0% (IPS, prediction_heavy) to 98.0% (IPS, pattern_heavy). No estimator's mean error is
    beyond three standard errors (the largest: IPS, prediction_heavy, −2.2). Median effective
    sample sizes 46–147."""
    report = small_coverage
    assert report.logs == LOGS
    for name in sim.ESTIMATORS:
        rate, se = report.rate(name), report.standard_error(name)
        assert 0.90 <= rate <= 0.98, f"{name}: {rate:.1%} ± {se:.1%}"
        for strategy in range(len(SMALL.strategies)):
            rate, se = report.rate(name, strategy), report.standard_error(name, strategy)
            assert 0.90 - 2 * se <= rate <= 0.98 + 2 * se, f"{name}/{strategy}: {rate:.1%}"
        bias_se = np.sqrt(report.variance(name) / LOGS)
        assert (np.abs(report.bias(name)) < 3 * bias_se).all(), (name, report.bias(name))
    assert (np.median(report.ess, axis=0) > 40).all(), np.median(report.ess, axis=0)


def test_coverage__bandit_experiment_logs__clustered_intervals_cover_90_to_98_percent():
    """A bandit experiment's sticky assignment makes each learner's decisions one draw: with
    intervals that treat decisions as independent the coverage was IPS 36.5%, SNIPS 86%, DR
    83%. Clustered by learner, over 200 logs of the same world (seed 7): IPS 94.4% ± 0.9%,
    SNIPS 96.0% ± 0.7%, DR 94.0% ± 0.8%."""
    report = sim.coverage(SMALL, logs=LOGS, seed=COVERAGE_SEED, policy=sim.BanditExperiment())
    for name in sim.ESTIMATORS:
        rate, se = report.rate(name), report.standard_error(name)
        assert 0.90 <= rate <= 0.98, f"{name}: {rate:.1%} ± {se:.1%}"


def test_variance__snips_and_dr_below_ips_where_the_mean_is_large_relative_to_spread(
    small_coverage,
):
    """IPS's error carries the reward's mean times the spread of the weights' mean; SNIPS
    and DR are shift-equivariant and do not (Var IPS ∝ E[w²r²], Var SNIPS ∝ E[w²(r − V)²]).
    With rewards 0.45–0.55 against noise sd 0.2 the ratio should be about
    0.2² / (0.2² + 0.5²) ≈ 0.14 (measured 0.15–0.19); with means 0–0.1 and unclipped
    rewards, about 0.8–1 (measured 0.85–1.06): no gain to speak of, which is where they
    should not beat IPS."""
    for name in ("snips", "dr"):
        ratio = small_coverage.variance_ratio(name)
        assert (ratio < 0.3).all(), (name, ratio)
    near_zero = sim.Scenario(
        learners=100,
        days=10,
        decisions_per_day=2,
        base_means=(0.0, 0.02, 0.05, 0.1),
        reward_bounds=None,
        seed=3,
    )
    contrast = sim.coverage(near_zero, logs=LOGS, seed=COVERAGE_SEED)
    for name in ("snips", "dr"):
        ratio = contrast.variance_ratio(name)
        assert (ratio > 0.6).all(), (name, ratio)


# --- The command -------------------------------------------------------------------------------


def test_simulate_command__prints_regret_allocation_estimates_and_coverage():
    out, err = StringIO(), StringIO()
    call_command(
        "simulate",
        "--learners",
        "60",
        "--days",
        "6",
        "--logs",
        "5",
        "--seed",
        "1",
        stdout=out,
        stderr=err,
    )
    text = out.getvalue()
    for expected in (
        "Regret against each learner's best strategy",
        "Realised allocation",
        "conservative",
        "IPS",
        "SNIPS",
        "DR",
        "Coverage of the true value by the 95% intervals over 5 logs",
        "done in",
    ):
        assert expected in text, expected
    assert "5/5 logs" in err.getvalue()


# --- Contextual Thompson sampling --------------------------------------------------------------

# 150 learners × 10 days × 2 decisions, every level, delay 1, 10% without consent; in DEPENDENT
# the cohort decides the best strategy (sim.COHORT_EFFECTS), in INDEPENDENT nothing does.
DEPENDENT = sim.Scenario(learners=150, days=10, cohort_effects=sim.COHORT_EFFECTS)
INDEPENDENT = sim.Scenario(learners=150, days=10)
REGRET_SEEDS = tuple(range(12))
# Given the history, each strategy's chance is exactly ε/K + (1 − ε)·P_TS whatever the number
# of Monte Carlo draws (E[P̂_TS] = P_TS), so regret is simulated with few of them.
FEW_DRAWS = sim.ContextualThompson(draws=64)


def test_scenario__cohort_effects__shift_each_cohorts_means_and_nothing_else():
    exact = {"heterogeneity": 0.0, "noise": 0.0, "reward_bounds": None, "learners": 40}
    result = sim.run(sim.Scenario(days=2, cohort_effects=sim.COHORT_EFFECTS, **exact))
    cohort = result.truth.cohort
    assert cohort is not None
    assert np.bincount(cohort).tolist() == [20, 20]
    expected = np.asarray(sim.BASE) + np.asarray(sim.COHORT_EFFECTS)[cohort]
    assert np.allclose(result.truth.means, expected)
    assert result.truth.means[cohort == 0].argmax(axis=1).tolist() == [3] * 20
    assert result.truth.means[cohort == 1].argmax(axis=1).tolist() == [2] * 20
    # The facts have their own stream: other facts, the same run for epsilon-greedy.
    base = sim.Scenario(learners=60, days=4, seed=6)
    one, other = sim.run(base).log, sim.run(replace(base, cohorts=5)).log
    assert one.action.tolist() == other.action.tolist()
    assert one.propensity.tolist() == other.propensity.tolist()
    with pytest.raises(ValueError, match="one row per cohort"):
        sim.Scenario(cohort_effects=((0.0, 0.0, 0.0, 0.0),))


def test_facts__cohorts__different_features_by_learner_features():
    facts = sim._Facts.draw(sim.Scenario(learners=8, cohorts=4, seed=1))
    features = facts.features(np.zeros(8, dtype=np.int64))
    assert features.shape == (8, ctx.FEATURES)
    by_cohort = {int(c): features[u, ctx.ATTRIBUTES].tolist() for u, c in enumerate(facts.cohort)}
    assert len(by_cohort) == 4
    assert len({tuple(v) for v in by_cohort.values()}) == 4  # no two cohorts collide


def test_contextual__feature_dependent__regret_at_most_07_of_epsilon_greedy():
    """DEPENDENT over 12 seeds: epsilon-greedy 175.9 ± 8.0, contextual Thompson 92.8 ± 1.7;
    ratio 0.53 ± 0.02 (delta method over the paired seeds). With 4,096 draws the same seeds
    give 0.53 ± 0.03, and 500 learners × 28 days (4 seeds) 0.52 ± 0.02: the cohorts tie in
    the population (pattern_heavy and prediction_heavy both 0.525), so epsilon-greedy learns
    each learner's best from their own rewards while the features tell it at once."""
    comparison = sim.compare_regret(DEPENDENT, REGRET_SEEDS, FEW_DRAWS)
    ratio, se = comparison.ratio, comparison.ratio_standard_error
    assert ratio <= 0.7, f"{ratio:.3f} ± {se:.3f}"


def test_contextual__no_feature_dependence__regret_at_most_11_of_epsilon_greedy():
    """INDEPENDENT over 12 seeds: epsilon-greedy 98.7 ± 4.5, contextual Thompson 93.8 ± 1.9;
    ratio 0.95 ± 0.05; with 4,096 draws 0.93 ± 0.05, and 500 learners × 28 days (4 seeds)
    0.96 ± 0.02. Drawing each learner's own deviation as well (sample_deviation) costs
    1.04 ± 0.05 here and 1.33 ± 0.05 over 28 days."""
    comparison = sim.compare_regret(INDEPENDENT, REGRET_SEEDS, FEW_DRAWS)
    ratio, se = comparison.ratio, comparison.ratio_standard_error
    assert ratio <= 1.1, f"{ratio:.3f} ± {se:.3f}"


def test_contextual__logged_propensities__are_the_probabilities_the_actions_were_drawn_with():
    """4,096 draws a decision: E[1(a_i = s)/p_i] = 1 for every strategy s and level within
    four standard errors (the largest here: 1.4). MEDIUM and HIGH learners: LOW's ε/K of
    1.25% gives weights of 80 whose rare draws make the empirical standard error unreliable
    at this size (test_contextual checks LOW on one state decided 20,000 times)."""
    scenario = replace(DEPENDENT, learners=100, days=8, level_mix={"MEDIUM": 0.5, "HIGH": 0.5})
    log = sim.run(scenario, sim.CONTEXTUAL_THOMPSON).log
    assert (log.source[log.consent] == sim.SOURCES.index("BANDIT")).all()
    assert (log.propensity[~log.consent] == 1.0).all()
    for code in (1, 2):
        mine = log.consent & (log.level == code)
        for strategy in range(len(log.strategies)):
            weights = (log.action[mine] == strategy) / log.propensity[mine]
            standard_error = weights.std(ddof=1) / np.sqrt(weights.size)
            assert abs(weights.mean() - 1) < 4 * standard_error, (code, strategy)


def test_contextual__follows_contextual_and_bandits_own_code__not_a_copy(monkeypatch):
    scenario = sim.Scenario(learners=30, days=3, level_mix={"MEDIUM": 1.0}, seed=2)
    monkeypatch.setitem(bandits.EPSILON_BY_LEVEL, "MEDIUM", 1.0)
    log = sim.run(scenario, FEW_DRAWS).log
    assert (log.propensity[log.consent] == 0.25).all()
    monkeypatch.setitem(bandits.EPSILON_BY_LEVEL, "MEDIUM", 0.2)
    last = len(scenario.strategies) - 1

    def always_last(mean, sd, *, rng, draws):
        return np.tile(np.eye(len(scenario.strategies))[last], (np.atleast_2d(mean).shape[0], 1))

    monkeypatch.setattr(ctx, "thompson_probabilities", always_last)
    log = sim.run(scenario, FEW_DRAWS).log
    mine = log.consent
    expected = np.where(log.action[mine] == last, 0.85, 0.05)
    assert log.propensity[mine].tolist() == pytest.approx(expected.tolist())


def test_coverage__contextual_logs__clustered_intervals_cover_90_to_98_percent():
    """SMALL with the cohorts deciding the best strategy, under contextual Thompson sampling
    (64 draws: the propensities stay exact), 200 logs (seed 7): IPS 93.0%, SNIPS 93.2%, DR
    93.2% over every strategy, each ± 0.9% (the log as the unit); one strategy's rates
    88.5–95.5%; median effective sample sizes 75–146."""
    report = sim.coverage(
        replace(SMALL, cohort_effects=sim.COHORT_EFFECTS),
        logs=LOGS,
        seed=COVERAGE_SEED,
        policy=FEW_DRAWS,
    )
    for name in sim.ESTIMATORS:
        rate, se = report.rate(name), report.standard_error(name)
        assert 0.90 <= rate <= 0.98, f"{name}: {rate:.1%} ± {se:.1%}"


def test_simulate_command__compare__prints_both_regrets_and_the_ratio_in_both_worlds():
    out, err = StringIO(), StringIO()
    call_command(
        "simulate",
        "--compare",
        "--learners",
        "40",
        "--days",
        "4",
        "--seeds",
        "2",
        stdout=out,
        stderr=err,
    )
    text = out.getvalue()
    for expected in (
        "epsilon-greedy against contextual Thompson sampling (4,096 draws a decision)",
        "Best strategy depends on learner features",
        "Best strategy does not depend on learner features",
        "cohorts shifting the strategies' means",
        "ratio (contextual / epsilon-greedy)",
        "target ≤ 0.7×",
        "target ≤ 1.1×",
        "done in",
    ):
        assert expected in text, expected
    assert text.count("  contextual Thompson ") == 2
    assert "Coverage" not in text


def test_simulate_command__contextual_policy_in_the_feature_dependent_world():
    out = StringIO()
    call_command(
        "simulate",
        "--policy",
        "CONTEXTUAL_THOMPSON",
        "--feature-dependent",
        "--learners",
        "40",
        "--days",
        "4",
        "--logs",
        "2",
        stdout=out,
        stderr=StringIO(),
    )
    text = out.getvalue()
    assert "per-learner contextual Thompson sampling" in text
    assert "cohorts shifting the strategies' means" in text
    assert "  MEDIUM " in text  # regret per level, as for the epsilon-greedy bandit
