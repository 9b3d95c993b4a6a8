"""The decide call with holdouts, namespaces, targeting and rollouts (DESIGN.md §4 steps 1b,
2 and 4, §4.1)."""

import numpy as np
import pytest

from experiments.assignment import bucket
from experiments.catalog import catalog_invalidate
from experiments.models import Assignment, Experiment, Holdout, Rollout, Strategy, StrategyConfig
from experiments.services.decisions import decision_make
from experiments.services.experiments import experiment_start
from experiments.services.holdouts import holdout_create
from experiments.services.rollouts import experiment_ship, rollout_deactivate
from personalization.models import Preferences
from tests.experiments.factories import make_experiment
from tests.personalization.factories import UserFactory


def _decide(user, context="MISSION"):
    return decision_make(user=user, context=context, rng=np.random.default_rng(user.pk)).decision


def test_holdout__held_out_learners_get_the_baseline_and_join_no_experiment(strategy_catalog):
    experiment = make_experiment()
    holdout = holdout_create(actor=None, data={"name": "H", "percent": 20, "contexts": ["MISSION"]})
    users = UserFactory.create_batch(60)
    held = [u for u in users if bucket(holdout.salt, u.pk) < 0.2]
    assert 3 <= len(held) <= 25
    for user in users:
        decision = _decide(user)
        if user in held:
            assert (decision.source, decision.strategy.key) == ("HOLDOUT", "conservative")
            assert decision.propensity == 1.0
            assert not decision.personalization_applied
        else:
            assert decision.source == "EXPERIMENT"
    assert not Assignment.objects.filter(experiment=experiment, user__in=held).exists()
    # A context it does not cover decides as usual.
    assert _decide(held[0], "SESSION").source != "HOLDOUT"


def test_namespaces__two_experiments_split_learners__sticky_when_a_third_starts(
    strategy_catalog,
):
    left = make_experiment(name="Left", namespace_start=0.0, namespace_end=0.5)
    right = make_experiment(name="Right", namespace_start=0.5, namespace_end=1.0)
    users = UserFactory.create_batch(80)
    for user in users:
        _decide(user)
    for user in users:
        position = bucket("namespace:MISSION", user.pk)
        expected = left if position < 0.5 else right
        assignments = list(
            Assignment.objects.filter(user=user).values_list("experiment", flat=True)
        )
        assert assignments == [expected.pk], (user.pk, position)
    # A third experiment on a free range changes no existing assignment.
    Experiment.objects.filter(pk=right.pk).update(namespace_end=1.0)
    third = make_experiment(name="Third", namespace_start=0.5, namespace_end=1.0, start=False)
    right.status = Experiment.Status.COMPLETED
    right.save()
    catalog_invalidate()
    experiment_start(actor=None, experiment=third)
    before = dict(Assignment.objects.filter(experiment=left).values_list("user", "variant"))
    for user in users:
        decision = _decide(user)
        if bucket("namespace:MISSION", user.pk) < 0.5:
            assert decision.experiment_id == left.pk
        else:
            assert decision.experiment_id == third.pk
    assert dict(Assignment.objects.filter(experiment=left).values_list("user", "variant")) == before


def test_targeting__evaluated_once_at_assignment(strategy_catalog):
    experiment = make_experiment(
        targeting=[{"attr": "attributes.plan", "op": "eq", "value": "pro"}]
    )
    pro = UserFactory(attributes={"plan": "pro"})
    free = UserFactory(attributes={"plan": "free"})
    assert _decide(pro).source == "EXPERIMENT"
    assert _decide(free).source != "EXPERIMENT"
    # Later attribute changes move nobody: the assigned stays, the other is still out.
    pro.attributes = {"plan": "free"}
    pro.save()
    assert _decide(pro).experiment_id == experiment.pk
    assert not Assignment.objects.filter(user=free).exists()


def test_targeting__learner_facts_from_profile_and_preferences(strategy_catalog):
    make_experiment(
        targeting=[
            {"attr": "software_level", "op": "eq", "value": "BEGINNER"},
            {"attr": "preferred_language", "op": "in", "value": ["ur", "en"]},
            {"attr": "learning_style", "op": "eq", "value": "VISUAL"},
        ]
    )
    fits = UserFactory(software_background={"level": "BEGINNER"})
    Preferences.objects.create(user=fits, preferred_language="ur", learning_style="VISUAL")
    other = UserFactory(software_background={"level": "ADVANCED"})
    Preferences.objects.create(user=other, preferred_language="ur", learning_style="VISUAL")
    assert _decide(fits).source == "EXPERIMENT"
    assert _decide(other).source != "EXPERIMENT"


def test_rollout__serves_the_shipped_strategy_until_deactivated(strategy_catalog):
    experiment = make_experiment()
    experiment.status = Experiment.Status.COMPLETED
    experiment.winning_variant = experiment.variants.get(key="treatment")
    experiment.save()
    catalog_invalidate()
    rollout = experiment_ship(actor=None, experiment=experiment)
    learner = UserFactory()
    Preferences.objects.create(user=learner, auto_adapt_enabled=False)
    decision = _decide(learner)
    assert (decision.source, decision.strategy.key) == ("ROLLOUT", "balanced")
    assert decision.personalization_applied is True
    # The rollout does not become the learner's own config.
    assert not StrategyConfig.objects.filter(
        user=learner, strategy__key="balanced", is_active=True
    ).exists()
    rollout_deactivate(actor=None, rollout=rollout)
    assert _decide(learner).source == "BASELINE"
    assert _decide(learner).strategy.key == "conservative"


def test_rollout__a_learners_own_active_config_wins(strategy_catalog):
    balanced = Strategy.objects.get(context="MISSION", key="balanced")
    Rollout.objects.create(context="MISSION", strategy=balanced)
    catalog_invalidate()
    learner = UserFactory()
    Preferences.objects.create(user=learner, auto_adapt_enabled=False)
    _decide(learner)
    StrategyConfig.objects.filter(user=learner, context="MISSION").update(is_active=False)
    StrategyConfig.objects.filter(
        user=learner, strategy__key="pattern_heavy", context="MISSION"
    ).update(is_active=True)
    decision = _decide(learner)
    assert (decision.source, decision.strategy.key) == ("BASELINE", "pattern_heavy")


@pytest.mark.parametrize("holdouts", [0, 2])
def test_warm_path__with_holdouts_namespaces_and_rollout__still_3_queries(
    strategy_catalog, user, user_client, django_assert_max_num_queries, holdouts
):
    make_experiment(name="A", namespace_start=0.0, namespace_end=0.5)
    make_experiment(name="B", namespace_start=0.5, namespace_end=1.0)
    for index in range(holdouts):
        Holdout.objects.create(name=f"H{index}", percent=0.01)
    Rollout.objects.create(
        context="MISSION", strategy=Strategy.objects.get(context="MISSION", key="balanced")
    )
    catalog_invalidate()
    Preferences.objects.create(user=user)
    user_client.post("/api/v1/decisions/", {"context": "MISSION"}, format="json")
    with django_assert_max_num_queries(3):
        response = user_client.post("/api/v1/decisions/", {"context": "MISSION"}, format="json")
    assert response.status_code == 201
    assert response.json()["source"] == "EXPERIMENT"
