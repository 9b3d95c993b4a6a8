"""Experiment evaluation through the service and `results/` (DESIGN.md §5.3): CUPED from
the pre-period, the Bayesian engine, sequential results, bandits within allocation periods."""

import datetime

import numpy as np
import pytest
from django.utils import timezone

from experiments.models import BanditWeightSnapshot, Experiment, Variant
from experiments.services.decisions import decision_make
from outcomes.services.evaluation import experiment_evaluate
from outcomes.services.ingest import outcome_record_many
from tests.experiments.factories import make_experiment
from tests.personalization.factories import UserFactory


def _outcome(user, event_id, value, *, when=None, context="MISSION", decision=None):
    item = {
        "event_id": event_id,
        "outcome_type": "MISSION_COMPLETED",
        "context": context,
        "retention_score": float(np.clip(value, 0.0, 1.0)),
    }
    if decision is not None:
        item["decision"] = decision
    if when is not None:
        item["occurred_at"] = when
    outcome_record_many(user=user, items=[item])


def _learners_with_history(experiment, n, *, effect=0.0, seed=1, history=True):
    """n learners with a stable ability: an outcome 5 days before assignment (in another
    context: the covariate takes any context) and one after it."""
    rng = np.random.default_rng(seed)
    for index in range(n):
        user = UserFactory()
        ability = float(rng.normal(0.5, 0.12))
        if history:
            before = timezone.now() - datetime.timedelta(days=5)
            _outcome(
                user, f"pre-{index}", ability + rng.normal(0, 0.02), when=before, context="CONTENT"
            )
        decision = decision_make(user=user, context=experiment.context).decision
        treated = Variant.objects.get(pk=decision.variant_id).key != "control"
        value = ability + rng.normal(0, 0.02) + (effect if treated else 0.0)
        _outcome(user, f"post-{index}", value, decision=decision.pk)


def test_evaluate__cuped_uses_the_pre_period_and_reports_the_reduction(strategy_catalog):
    experiment = make_experiment(analysis="FIXED")
    _learners_with_history(experiment, 60)
    results = experiment_evaluate(experiment=experiment)
    assert results["cuped"]["applied"] is True
    assert results["cuped"]["variance_reduction"] > 0.8
    plain = Experiment.objects.get(pk=experiment.pk)
    Experiment.objects.filter(pk=plain.pk).update(cuped=False)
    plain.refresh_from_db()
    unadjusted = experiment_evaluate(experiment=plain)
    assert unadjusted["cuped"]["applied"] is False
    adjusted_se = results["comparisons"][0]["standard_error"]
    assert adjusted_se < 0.5 * unadjusted["comparisons"][0]["standard_error"]


def test_evaluate__outcomes_older_than_the_pre_period_are_no_covariate(strategy_catalog):
    experiment = make_experiment()
    for index in range(12):
        user = UserFactory()
        long_ago = timezone.now() - datetime.timedelta(days=20)
        _outcome(user, f"old-{index}", 0.5, when=long_ago)
        decision = decision_make(user=user, context="MISSION").decision
        _outcome(user, f"post-{index}", 0.3 + index / 40, decision=decision.pk)
    results = experiment_evaluate(experiment=experiment)
    assert results["cuped"]["applied"] is False


def test_results_api__shows_method_engine_and_cuped(staff_client, strategy_catalog):
    experiment = make_experiment(engine="BAYESIAN")
    _learners_with_history(experiment, 40, effect=0.1)
    body = staff_client.get(f"/api/v1/experiments/{experiment.pk}/results/").json()
    assert body["method"]["engine"] == "BAYESIAN"
    assert body["method"]["analysis"] == "SEQUENTIAL"
    assert "Bayesian" in body["method"]["description"]
    assert body["cuped"]["applied"] is True
    assert body["cuped"]["variance_reduction"] > 0
    row = body["comparisons"][0]
    assert 0.0 <= row["chance_to_win"] <= 1.0
    assert row["risk"] >= 0.0
    assert body["winner_reason"]


def test_evaluate__sequential_by_default_wider_than_fixed(strategy_catalog):
    sequential = make_experiment(context="MISSION")
    _learners_with_history(sequential, 40, effect=0.05, seed=3)
    always = experiment_evaluate(experiment=sequential)["comparisons"][0]
    Experiment.objects.filter(pk=sequential.pk).update(analysis="FIXED")
    sequential.refresh_from_db()
    fixed = experiment_evaluate(experiment=sequential)["comparisons"][0]
    assert always["difference"] == pytest.approx(fixed["difference"])
    assert always["ci_upper"] - always["ci_lower"] > fixed["ci_upper"] - fixed["ci_lower"]
    assert always["p_value"] >= fixed["p_value"]


def test_evaluate__identical_constant_values__no_p_no_winner(strategy_catalog):
    """Outcomes that carry the same value in both arms: undefined, not certain."""
    experiment = make_experiment(cuped=False)
    for index in range(30):
        user = UserFactory()
        decision = decision_make(user=user, context="MISSION").decision
        _outcome(user, f"c-{index}", 0.1, decision=decision.pk)
    results = experiment_evaluate(experiment=experiment)
    row = results["comparisons"][0]
    assert row["difference"] == 0.0
    assert row["p_value"] is None
    assert row["ci_lower"] is None
    assert results["winner"] is None
    assert "can be tested" in results["winner_reason"]
    experiment.refresh_from_db()
    assert experiment.statistical_significance is False


def test_evaluate__bandit_compared_within_allocation_periods(strategy_catalog):
    experiment = make_experiment(
        experiment_type=Experiment.Type.MULTI_ARMED_BANDIT,
        variants=[("control", "conservative", 1.0), ("b", "balanced", 1.0)],
    )
    _learners_with_history(experiment, 30, seed=5, history=False)
    BanditWeightSnapshot.objects.create(
        experiment=experiment, weights={"control": 0.2, "b": 0.8}, computed_at=timezone.now()
    )
    _learners_with_history(experiment, 30, seed=6, history=False)
    results = experiment_evaluate(experiment=experiment)
    assert results["method"]["estimator"] == "period-stratified difference of means"
    assert results["method"]["multiple_comparisons"] == "Holm"
    assert results["cuped"]["applied"] is False
    assert results["comparisons"][0]["difference"] is not None


def test_learner_values__as_of_sees_only_what_had_happened_by_then(strategy_catalog):
    from experiments.models import Assignment
    from outcomes.services.evaluation import learner_values

    experiment = make_experiment()
    now = timezone.now()
    early, late = UserFactory(), UserFactory()
    for user, joined in ((early, now - datetime.timedelta(days=10)), (late, now)):
        decision = decision_make(user=user, context=experiment.context).decision
        Assignment.objects.filter(user=user).update(assigned_at=joined)
        _outcome(
            user, "first", 0.2, when=joined + datetime.timedelta(hours=1), decision=decision.pk
        )
    _outcome(early, "second", 0.8, when=now - datetime.timedelta(days=2))

    then = learner_values(experiment, covariate=False, as_of=now - datetime.timedelta(days=5))
    assert then.values.tolist() == [pytest.approx(0.2)]
    assert then.counts.tolist() == [1]
    everything = learner_values(experiment, covariate=False)
    assert sorted(everything.values.tolist()) == [pytest.approx(0.2), pytest.approx(0.5)]
