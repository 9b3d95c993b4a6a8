"""Rewards, effectiveness windows, evaluation and bandit weights against from-scratch values."""

import datetime

import numpy as np
import pytest
from django.utils import timezone
from scipy import stats as scipy_stats

from experiments.models import Assignment, BanditWeightSnapshot, Experiment, StrategyConfig, Variant
from experiments.services.decisions import decision_make
from outcomes.models import Effectiveness, Outcome
from outcomes.services.effectiveness import effectiveness_windows_compute
from outcomes.services.evaluation import (
    bandit_weights_update,
    experiment_evaluate,
    experiments_evaluate_due,
)
from outcomes.services.ingest import outcome_record_many
from outcomes.services.rewards import bandit_rewards_recompute
from outcomes.windows import window_bounds, window_index
from tests.experiments.factories import make_experiment
from tests.personalization.factories import UserFactory

DAYS = 14
WINDOW = window_index(timezone.now(), DAYS) - 1  # the last complete window
START, END = window_bounds(WINDOW, DAYS)


def _at(hours: float) -> datetime.datetime:
    return START + datetime.timedelta(hours=hours)


def _explicit(
    user, event_id, *, strategy=None, applied=False, context="MISSION", when=None, **scores
):
    item = {
        "event_id": event_id,
        "context": context,
        "personalization_applied": applied,
        "outcome_type": "MISSION_COMPLETED",
        "occurred_at": when or _at(1),
        **scores,
    }
    if strategy:
        item["strategy"] = strategy
    outcome_record_many(user=user, items=[item])


# --- recompute_bandit_rewards ---------------------------------------------------------------


def test_rewards__from_decisions_and_outcomes_rerun_changes_nothing(strategy_catalog):
    user = UserFactory()
    decisions = [decision_make(user=user, context="SESSION").decision for _ in range(5)]
    by_config: dict[int, list[float]] = {}
    for index, decision in enumerate(decisions[:3]):
        score = 0.2 * (index + 1)
        outcome_record_many(
            user=user,
            items=[
                {
                    "event_id": f"e{index}",
                    "decision": decision.pk,
                    "outcome_type": "SESSION_COMPLETED",
                    "engagement_score": score,
                }
            ],
        )
        by_config.setdefault(decision.config_id, []).append(score)
    result = bandit_rewards_recompute()
    assert result["updated"] >= 1
    for config in StrategyConfig.objects.filter(user=user):
        chosen = sum(1 for d in decisions if d.config_id == config.pk)
        rewards = by_config.get(config.pk, [])
        assert config.times_selected == chosen
        assert config.times_rewarded == len(rewards)
        assert config.total_reward == pytest.approx(sum(rewards))
        assert config.avg_reward == pytest.approx(np.mean(rewards) if rewards else 0.0)
    assert bandit_rewards_recompute()["updated"] == 0


def test_rewards__drift_is_repaired_by_a_rebuild(strategy_catalog):
    """An incremental run adds only what is new; a rebuild (`--all`) repairs figures that
    drifted from the raw rows."""
    user = UserFactory()
    decision_make(user=user, context="SESSION")
    bandit_rewards_recompute()
    StrategyConfig.objects.filter(user=user).update(times_selected=99, total_reward=5.0)
    assert bandit_rewards_recompute()["updated"] == 0
    bandit_rewards_recompute(rebuild=True)
    assert (
        sum(StrategyConfig.objects.filter(user=user).values_list("times_selected", flat=True)) == 1
    )
    assert not StrategyConfig.objects.filter(user=user, total_reward=5.0).exists()


# --- Effectiveness windows ------------------------------------------------------------------


@pytest.fixture
def window_data(strategy_catalog):
    """In one window: personalized 'balanced' outcomes and baseline outcomes in MISSION."""
    users = UserFactory.create_batch(3)
    personalized = [0.9, 0.8, 0.7, 0.85, 0.95, 0.6]
    baseline = [0.5, 0.4, 0.6, 0.55, 0.45]
    for i, value in enumerate(personalized):
        _explicit(
            users[i % 3],
            f"p{i}",
            strategy="balanced",
            applied=True,
            retention_score=value,
            when=_at(i),
        )
    for i, value in enumerate(baseline):
        _explicit(users[i % 3], f"b{i}", applied=False, retention_score=value, when=_at(10 + i))
    # Another context and another window must not mix in.
    _explicit(users[0], "other-context", context="SESSION", applied=False, retention_score=0.0)
    _explicit(
        users[0],
        "other-window",
        applied=False,
        retention_score=0.0,
        when=START - datetime.timedelta(days=1),
    )
    return users, np.array(personalized), np.array(baseline)


def _learner_means(values: np.ndarray) -> np.ndarray:
    """The fixture gives value i to user i % 3: each learner's mean."""
    index = np.arange(values.size) % 3
    return np.array([values[index == u].mean() for u in range(3)])


def test_windows__global_row_matches_scipy_per_learner(window_data):
    """DESIGN.md §5.2: in GLOBAL scope each learner is one value (their mean), Welch's p
    drives p_value, and the outcome counts are kept beside the learner counts."""
    _, personalized, baseline = window_data
    effectiveness_windows_compute(windows={WINDOW})
    row = Effectiveness.objects.get(scope="GLOBAL", strategy__key="balanced", window_start=START)
    p_learners, b_learners = _learner_means(personalized), _learner_means(baseline)
    welch = scipy_stats.ttest_ind(p_learners, b_learners, equal_var=False)
    interval = welch.confidence_interval(0.95)
    pearson = scipy_stats.pearsonr(np.r_[np.ones(3), np.zeros(3)], np.r_[p_learners, b_learners])
    assert (row.n_personalized, row.n_baseline, row.sample_size) == (3, 3, 6)
    assert (row.n_outcomes_personalized, row.n_outcomes_baseline) == (6, 5)
    assert row.window_end == END
    assert row.difference == pytest.approx(p_learners.mean() - b_learners.mean())
    assert row.ci_lower == pytest.approx(interval.low)
    assert row.ci_upper == pytest.approx(interval.high)
    assert row.correlation == pytest.approx(pearson.statistic)
    assert row.p_value == pytest.approx(welch.pvalue)
    improvement = (p_learners.mean() - b_learners.mean()) / b_learners.mean() * 100
    assert row.retention_improvement == pytest.approx(improvement)
    assert row.performance_improvement is None
    assert row.composite_score == pytest.approx(min(100, 50 + 0.5 * improvement))
    assert row.is_statistically_significant is False  # samples below MIN_SAMPLE_SIZE (20)


def test_windows__rerun_replaces_rows(window_data):
    effectiveness_windows_compute(windows={WINDOW})
    before = list(
        Effectiveness.objects.order_by("scope", "strategy_id", "user_id").values_list(
            "scope", "strategy_id", "user_id", "difference", "p_value"
        )
    )
    effectiveness_windows_compute(windows={WINDOW})
    after = list(
        Effectiveness.objects.order_by("scope", "strategy_id", "user_id").values_list(
            "scope", "strategy_id", "user_id", "difference", "p_value"
        )
    )
    assert after == before
    assert Effectiveness.objects.filter(scope="GLOBAL", window_start=START).count() == 1


def test_windows__late_outcome_picked_up(window_data):
    users, _personalized, baseline = window_data
    effectiveness_windows_compute()
    _explicit(users[1], "late", applied=False, retention_score=0.1, when=_at(20))
    # Only windows with outcomes stored since the last run (and a short overlap) are redone.
    assert effectiveness_windows_compute()["windows"] >= 1
    row = Effectiveness.objects.get(scope="GLOBAL", strategy__key="balanced", window_start=START)
    assert row.n_outcomes_baseline == 6
    late = np.r_[baseline, 0.1]  # user 1 now has 0.4, 0.45 and 0.1
    learner_means = [late[[0, 3]].mean(), late[[1, 4, 5]].mean(), late[[2]].mean()]
    assert row.n_baseline == 3
    assert row.mean_baseline == pytest.approx(np.mean(learner_means))


def test_windows__user_scope_per_config_and_privacy(window_data):
    users, _, _ = window_data
    for user in users:
        decision_make(user=user, context="MISSION")  # creates their configs
    users[2].behavioral_analysis_enabled = False
    users[2].save()
    effectiveness_windows_compute(windows={WINDOW})
    rows = Effectiveness.objects.filter(scope="USER", window_start=START)
    assert {row.user_id for row in rows} == {users[0].pk, users[1].pk}
    mine = rows.get(user=users[0])
    assert mine.config.strategy.key == "balanced"
    assert mine.n_personalized == 2  # p0, p3
    assert mine.n_baseline == 2  # b0, b3


def test_windows__config_scores_refreshed(strategy_catalog):
    user = UserFactory()
    decision_make(user=user, context="MISSION")
    rng = np.random.default_rng(9)
    for i in range(25):
        _explicit(
            user,
            f"p{i}",
            strategy="balanced",
            applied=True,
            retention_score=float(rng.uniform(0.6, 0.9)),
            when=_at(i),
        )
        _explicit(
            user, f"b{i}", applied=False, retention_score=float(rng.uniform(0.3, 0.6)), when=_at(i)
        )
    effectiveness_windows_compute(windows={WINDOW})
    row = Effectiveness.objects.get(scope="USER", user=user, window_start=START)
    config = StrategyConfig.objects.get(user=user, strategy__key="balanced")
    assert config.effectiveness_score == pytest.approx(row.composite_score)
    assert config.confidence_score == 0.7  # the §5.5 posterior is the reward run's to keep
    assert row.is_statistically_significant is True


def test_rewards__confidence_is_the_posterior_of_every_config_of_changed_learners(
    strategy_catalog,
):
    """§5.5 through the service: after the reward run, each config of a learner whose
    statistics changed holds P(its strategy beats the baseline for the learner), computed
    from the learner's rewards and the population's (here k falls back to 10, σ²_w from all
    rewards); a learner without rewards falls back to the population, so the first model
    refreshes them too."""
    from experiments import bandits
    from experiments.catalog import population_model

    learners = UserFactory.create_batch(3)
    untouched = UserFactory()
    decision_make(user=untouched, context="MISSION")
    bandit_rewards_recompute()
    StrategyConfig.objects.filter(user=untouched).update(confidence_score=0.33)
    rng = np.random.default_rng(5)
    for learner in learners:
        for index in range(12):
            decision = decision_make(user=learner, context="MISSION", rng=rng).decision
            outcome_record_many(
                user=learner,
                items=[
                    {
                        "event_id": f"r{index}",
                        "decision": decision.pk,
                        "outcome_type": "MISSION_COMPLETED",
                        "retention_score": float(rng.uniform(0.2, 0.9)),
                    }
                ],
            )
    result = bandit_rewards_recompute()
    assert result["rescored"] >= 1
    population = population_model("MISSION")
    strategies = list(StrategyConfig.objects.filter(user=learners[0]).order_by("strategy__key"))
    keys = [c.strategy.key for c in strategies]
    baseline = keys.index("conservative")
    strength = bandits.arm_prior_strengths(
        population.prior.prior_strength,
        np.array([population.rewards.get(c.strategy_id, 0.0) for c in strategies]),
    )
    expected = bandits.posterior_confidence(
        [[c.times_rewarded for c in strategies]],
        [[c.avg_reward for c in strategies]],
        [population.means.get(c.strategy_id, 0.0) for c in strategies],
        baseline,
        prior_strength=strength,
        within_variance=population.prior.within_variance,
    )[0]
    for config, value in zip(strategies, expected, strict=True):
        if np.isfinite(value):
            assert config.confidence_score == pytest.approx(value), config.strategy.key
    assert strategies[baseline].confidence_score == 0.5
    fallback = bandits.posterior_confidence(
        [[0] * len(strategies)],
        [[0.0] * len(strategies)],
        [population.means.get(c.strategy_id, 0.0) for c in strategies],
        baseline,
        prior_strength=strength,
        within_variance=population.prior.within_variance,
    )[0]
    stored = dict(
        StrategyConfig.objects.filter(user=untouched).values_list(
            "strategy__key", "confidence_score"
        )
    )
    for key, value in zip(keys, fallback, strict=True):
        assert stored[key] == pytest.approx(value if np.isfinite(value) else 0.33), key


def _rewarded(users, strategy, values, prefix):
    for user in users:
        for index, value in enumerate(values):
            _explicit(
                user,
                f"{prefix}{index}",
                strategy=strategy,
                applied=True,
                retention_score=value,
                when=timezone.now(),
            )


def test_rewards__population_moves__learners_who_fall_back_to_it_are_refreshed(
    strategy_catalog, django_capture_on_commit_callbacks
):
    """The stale-confidence case: a learner with no rewards of their own takes the
    population's word, so when the population's balanced arm falls below the baseline their
    stored confidence follows it down, though they sent nothing; a small move (under
    CONFIDENCE_DRIFT) rewrites only the learners who sent outcomes."""
    learners = UserFactory.create_batch(12)
    quiet = UserFactory()
    for user in [*learners, quiet]:
        decision_make(user=user, context="MISSION")
    _rewarded(learners, "conservative", [0.5, 0.52, 0.48, 0.5], "c")
    _rewarded(learners, "balanced", [0.8, 0.82, 0.78, 0.8], "b")

    def run() -> dict[str, int]:  # the model scored with is recorded after commit
        with django_capture_on_commit_callbacks(execute=True):
            return bandit_rewards_recompute()

    run()

    def quiet_balanced() -> float:
        return StrategyConfig.objects.get(user=quiet, strategy__key="balanced").confidence_score

    assert quiet_balanced() > 0.99

    _rewarded(learners[:1], "conservative", [0.5], "c-again")
    StrategyConfig.objects.filter(user=quiet).update(confidence_score=0.33)
    result = run()
    assert result["updated"] == 1
    assert quiet_balanced() == 0.33  # a small move leaves everyone else alone

    _rewarded(learners, "balanced", [0.1] * 12, "b-low")
    run()
    assert quiet_balanced() < 0.01


# --- Experiment evaluation ------------------------------------------------------------------


def _assigned_outcomes(experiment, values_by_variant, context="MISSION"):
    """One user per value; each user's outcomes average to the value."""
    expected: dict[str, list[float]] = {}
    users = UserFactory.create_batch(40)
    for user in users:
        decision = decision_make(user=user, context=context).decision
        variant = Variant.objects.get(pk=decision.variant_id).key
        values = values_by_variant[variant]
        value = values[len(expected.setdefault(variant, [])) % len(values)]
        outcome_record_many(
            user=user,
            items=[
                {
                    "event_id": f"{user.pk}-a",
                    "decision": decision.pk,
                    "outcome_type": "MISSION_COMPLETED",
                    "retention_score": value,
                },
                {
                    "event_id": f"{user.pk}-b",
                    "decision": decision.pk,
                    "outcome_type": "MISSION_COMPLETED",
                    "retention_score": value,
                },
            ],
        )
        expected[variant].append(value)
    return expected


def test_evaluate__per_user_unit_matches_scipy(strategy_catalog):
    experiment = make_experiment(min_participants=10, min_duration_days=0, analysis="FIXED")
    expected = _assigned_outcomes(
        experiment, {"control": [0.4, 0.5, 0.45, 0.35], "treatment": [0.6, 0.7, 0.65, 0.55]}
    )
    results = experiment_evaluate(experiment=experiment)
    control = np.array(expected["control"])
    treatment = np.array(expected["treatment"])
    by_key = {v["key"]: v for v in results["variants"]}
    assert by_key["control"]["with_outcomes"] == control.size
    assert by_key["treatment"]["mean"] == pytest.approx(treatment.mean())
    assert by_key["treatment"]["variance"] == pytest.approx(treatment.var(ddof=1))
    (comparison,) = results["comparisons"]
    welch = scipy_stats.ttest_ind(treatment, control, equal_var=False)
    assert comparison["p_value"] == pytest.approx(welch.pvalue)
    assert comparison["difference"] == pytest.approx(treatment.mean() - control.mean())
    assert results["winner"] == "treatment"
    assert results["readiness"]["ready"] is True
    srm = scipy_stats.chisquare([control.size, treatment.size]).pvalue
    assert results["sample_ratio"]["p_value"] == pytest.approx(srm)
    experiment.refresh_from_db()
    assert experiment.winning_variant.key == "treatment"
    assert experiment.statistical_significance is True
    assert experiment.variant_metrics["winner"] == "treatment"
    assignment = Assignment.objects.filter(experiment=experiment).first()
    assert assignment.metrics["outcomes"] == 2


def test_evaluate__multivariate_holm_adjusted(strategy_catalog):
    experiment = make_experiment(
        experiment_type=Experiment.Type.MULTIVARIATE,
        variants=[
            ("control", "conservative", 1.0),
            ("b", "balanced", 1.0),
            ("p", "pattern_heavy", 1.0),
        ],
    )
    _assigned_outcomes(experiment, {"control": [0.4, 0.5], "b": [0.5, 0.6], "p": [0.42, 0.52]})
    results = experiment_evaluate(experiment=experiment)
    raw = [row["p_value"] for row in results["comparisons"]]
    adjusted = [row["adjusted_p_value"] for row in results["comparisons"]]
    from outcomes.stats import holm

    assert adjusted == pytest.approx(holm(raw))


def test_evaluate__srm_flagged(strategy_catalog):
    experiment = make_experiment(
        variants=[("control", "conservative", 1.0), ("treatment", "balanced", 1.0)]
    )
    variants = list(experiment.variants.order_by("pk"))
    now = timezone.now()
    users = UserFactory.create_batch(120)
    Assignment.objects.bulk_create(
        Assignment(
            experiment=experiment,
            user=u,
            variant=variants[0 if i < 90 else 1],
            propensity=0.5,
            assigned_at=now,
        )
        for i, u in enumerate(users)
    )
    results = experiment_evaluate(experiment=experiment)
    assert results["sample_ratio"]["mismatch"] is True
    assert results["sample_ratio"]["p_value"] == pytest.approx(
        scipy_stats.chisquare([90, 30]).pvalue
    )


def test_evaluate_due__scheduled_start_and_end(strategy_catalog):
    from experiments.services.experiments import experiment_start

    scheduled = make_experiment(start=False, name="Later")
    experiment_start(
        actor=None, experiment=scheduled, start_date=timezone.now() + datetime.timedelta(hours=1)
    )
    Experiment.objects.filter(pk=scheduled.pk).update(
        start_date=timezone.now() - datetime.timedelta(minutes=1)
    )
    ending = make_experiment(context="SESSION", name="Ends")
    Experiment.objects.filter(pk=ending.pk).update(
        start_date=timezone.now() - datetime.timedelta(days=2),
        end_date=timezone.now() - datetime.timedelta(minutes=1),
    )
    result = experiments_evaluate_due()
    assert result["started"] == 1
    assert result["completed"] == 1
    assert Experiment.objects.get(pk=scheduled.pk).status == "ACTIVE"
    assert Experiment.objects.get(pk=ending.pk).status == "COMPLETED"


# --- Bandit weights -------------------------------------------------------------------------


def test_bandit_weights__burn_in_equal_then_best_favoured(strategy_catalog, settings):
    settings.BANDIT_BURN_IN = 5
    experiment = make_experiment(
        experiment_type=Experiment.Type.MULTI_ARMED_BANDIT,
        variants=[("control", "conservative", 1.0), ("b", "balanced", 1.0)],
    )
    bandit_weights_update(seed=1)
    snapshot = BanditWeightSnapshot.objects.get(experiment=experiment)
    assert snapshot.weights == {"control": 0.5, "b": 0.5}
    assert snapshot.seed == 1
    _assigned_outcomes(experiment, {"control": [0.2, 0.3, 0.25], "b": [0.8, 0.9, 0.85]})
    bandit_weights_update(seed=2)
    latest = BanditWeightSnapshot.objects.filter(experiment=experiment).latest("computed_at")
    assert latest.weights["b"] > 0.9
    assert latest.weights["control"] >= experiment.min_arm_share - 1e-12
    weights = dict(Variant.objects.filter(experiment=experiment).values_list("key", "weight"))
    assert weights == pytest.approx(latest.weights)
    assert Outcome.objects.exists()


def test_admin_experiment_page__results_and_allocation_charts(
    client, staff_user, strategy_catalog, settings
):
    from django.urls import reverse

    settings.BANDIT_BURN_IN = 2
    experiment = make_experiment(
        experiment_type=Experiment.Type.MULTI_ARMED_BANDIT,
        variants=[("control", "conservative", 1.0), ("b", "balanced", 1.0)],
    )
    _assigned_outcomes(experiment, {"control": [0.2, 0.3], "b": [0.7, 0.8]})
    bandit_weights_update(seed=1)
    bandit_weights_update(seed=2)
    client.force_login(staff_user)
    response = client.post(
        reverse("admin:experiments_experiment_changelist"),
        {"action": "evaluate_now", "_selected_action": [experiment.pk]},
        follow=True,
    )
    assert "evaluated" in response.content.decode()
    page = client.get(
        reverse("admin:experiments_experiment_change", args=[experiment.pk])
    ).content.decode()
    assert 'aria-label="Means with 95% intervals"' in page
    assert 'aria-label="Allocation over time"' in page
    assert "Chance to beat control" in page
    assert "cdn" not in page.lower()


def test_assignment_metrics_store__writes_only_changes_values_and_nulls(strategy_catalog):
    from experiments.services.experiments import assignment_metrics_store

    experiment = make_experiment(context="MISSION")
    users = UserFactory.create_batch(3)
    for user in users:
        decision_make(user=user, context="MISSION")
    ids = list(
        Assignment.objects.filter(experiment=experiment).order_by("pk").values_list("pk", flat=True)
    )
    values, counts = [0.1, None, 0.73125], [1, 0, 4]
    assert assignment_metrics_store(assignment_ids=ids, values=values, counts=counts) == 3
    stored = dict(Assignment.objects.filter(pk__in=ids).values_list("pk", "metrics"))
    assert stored == {
        ids[0]: {"value": 0.1, "outcomes": 1},
        ids[1]: {"value": None, "outcomes": 0},
        ids[2]: {"value": 0.73125, "outcomes": 4},
    }
    assert assignment_metrics_store(assignment_ids=ids, values=values, counts=counts) == 0
    assert (
        assignment_metrics_store(assignment_ids=ids, values=[0.1, 0.5, 0.73125], counts=[1, 1, 4])
        == 1
    )
    assert Assignment.objects.get(pk=ids[1]).metrics == {"value": 0.5, "outcomes": 1}
