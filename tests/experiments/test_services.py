"""Experiment lifecycle (DESIGN.md §3) and strategy catalog services."""

import datetime

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from config.errors import ConflictError
from experiments.models import Experiment, Strategy, Variant
from experiments.services.experiments import (
    ALLOWED,
    experiment_cancel,
    experiment_complete,
    experiment_start,
    experiment_update,
)
from experiments.services.strategies import strategy_update
from logs.models import AuditEvent
from tests.experiments.factories import make_experiment
from tests.personalization.factories import UserFactory

Status = Experiment.Status


def _set_status(experiment, status):
    Experiment.objects.filter(pk=experiment.pk).update(status=status)
    experiment.refresh_from_db()
    return experiment


def _transition(experiment, target, actor):
    if target == Status.ACTIVE:
        return experiment_start(actor=actor, experiment=experiment)
    if target == Status.SCHEDULED:
        return experiment_start(
            actor=actor,
            experiment=experiment,
            start_date=timezone.now() + datetime.timedelta(days=2),
        )
    if target == Status.COMPLETED:
        return experiment_complete(actor=actor, experiment=experiment, force=True)
    return experiment_cancel(actor=actor, experiment=experiment)


TARGETS = [Status.SCHEDULED, Status.ACTIVE, Status.COMPLETED, Status.CANCELLED]
PAIRS = [(source, target) for source in Status.values for target in TARGETS]


@pytest.mark.parametrize(("source", "target"), PAIRS)
def test_lifecycle__every_transition(strategy_catalog, staff_user, source, target):
    experiment = _set_status(make_experiment(start=False), source)
    if target in ALLOWED[source]:
        result = _transition(experiment, target, staff_user)
        assert result.status == target
        assert AuditEvent.objects.filter(target_id=str(experiment.pk), actor=staff_user).exists()
    else:
        with pytest.raises(ConflictError) as excinfo:
            _transition(experiment, target, staff_user)
        assert excinfo.value.status_code == 409
        experiment.refresh_from_db()
        assert experiment.status == source


def test_lifecycle__table_is_the_design():
    assert {
        "DRAFT": {"SCHEDULED", "ACTIVE", "CANCELLED"},
        "SCHEDULED": {"ACTIVE", "CANCELLED"},
        "ACTIVE": {"COMPLETED", "CANCELLED"},
        "COMPLETED": set(),
        "CANCELLED": set(),
    } == ALLOWED


def test_start__audit_event_with_status_change(strategy_catalog, staff_user):
    experiment = make_experiment(start=False)
    experiment_start(actor=staff_user, experiment=experiment)
    event = AuditEvent.objects.get(action="EXPERIMENT_STARTED")
    assert event.changes["status"] == {"old": "DRAFT", "new": "ACTIVE"}
    assert event.actor == staff_user


def test_start__scheduled_keeps_the_start_date(strategy_catalog):
    when = timezone.now() + datetime.timedelta(days=3)
    experiment = experiment_start(
        actor=None, experiment=make_experiment(start=False), start_date=when
    )
    assert experiment.status == Status.SCHEDULED
    assert experiment.start_date == when


@pytest.mark.parametrize(
    ("experiment_type", "variants", "problem"),
    [
        (
            Experiment.Type.AB_TEST,
            [("c", "conservative", 1), ("b", "balanced", 1), ("p", "pattern_heavy", 1)],
            "exactly two variants",
        ),
        (Experiment.Type.MULTIVARIATE, [("c", "conservative", 1)], "at least two variants"),
        (
            Experiment.Type.AB_TEST,
            [("c", "conservative", 1), ("b", "balanced", 0)],
            "positive weight",
        ),
    ],
)
def test_start__checks(strategy_catalog, experiment_type, variants, problem):
    experiment = make_experiment(experiment_type=experiment_type, variants=variants, start=False)
    with pytest.raises(ConflictError, match=problem):
        experiment_start(actor=None, experiment=experiment)


def test_start__needs_exactly_one_control(strategy_catalog):
    experiment = make_experiment(start=False)
    Variant.objects.filter(experiment=experiment).update(is_control=False)
    with pytest.raises(ConflictError, match="exactly one control"):
        experiment_start(actor=None, experiment=experiment)


def test_start__variant_strategy_of_another_context(strategy_catalog):
    experiment = make_experiment(start=False)
    foreign = Strategy.objects.get(context="SESSION", key="balanced")
    Variant.objects.filter(experiment=experiment, is_control=False).update(strategy=foreign)
    with pytest.raises(ConflictError, match="another context"):
        experiment_start(actor=None, experiment=experiment)


def test_start__another_active_experiment_in_context__409_names_it(strategy_catalog):
    running = make_experiment(name="Running one")
    waiting = make_experiment(name="Waiting one", start=False)
    with pytest.raises(ConflictError, match="Running one") as excinfo:
        experiment_start(actor=None, experiment=waiting)
    assert str(running.pk) in excinfo.value.detail


def test_start__other_context_free(strategy_catalog):
    make_experiment(context="MISSION")
    assert make_experiment(context="SESSION").status == Status.ACTIVE


def test_start__bandit_weights_equal(strategy_catalog):
    experiment = make_experiment(
        experiment_type=Experiment.Type.MULTI_ARMED_BANDIT,
        variants=[("c", "conservative", 5.0), ("b", "balanced", 1.0), ("p", "pattern_heavy", 0.0)],
    )
    assert sorted(experiment.variants.values_list("weight", flat=True)) == pytest.approx(
        [1 / 3] * 3
    )


def test_complete__not_ready__409_then_force_audited(strategy_catalog, staff_user):
    experiment = make_experiment(min_participants=5, min_duration_days=14)
    with pytest.raises(ConflictError, match="0 of 5 participants"):
        experiment_complete(actor=staff_user, experiment=experiment)
    completed = experiment_complete(actor=staff_user, experiment=experiment, force=True)
    assert completed.status == Status.COMPLETED
    assert completed.completed_at is not None
    event = AuditEvent.objects.get(action="EXPERIMENT_COMPLETED")
    assert event.changes["forced"] == {"old": None, "new": True}


def test_complete__ready__no_force_needed(strategy_catalog):
    from experiments.services.decisions import decision_make

    experiment = make_experiment(min_participants=3, min_duration_days=1)
    for user in UserFactory.create_batch(3):
        decision_make(user=user, context="MISSION")
    Experiment.objects.filter(pk=experiment.pk).update(
        start_date=timezone.now() - datetime.timedelta(days=2)
    )
    assert experiment_complete(actor=None, experiment=experiment).status == Status.COMPLETED
    assert "forced" not in AuditEvent.objects.get(action="EXPERIMENT_COMPLETED").changes


def test_update__variants_only_in_draft(strategy_catalog):
    experiment = make_experiment()
    with pytest.raises(ConflictError, match="only DRAFT"):
        experiment_update(actor=None, experiment=experiment, data={"description": "x"})


def test_update__draft_replaces_variants_and_audits(strategy_catalog, staff_user):
    experiment = make_experiment(start=False)
    pattern = Strategy.objects.get(context="MISSION", key="pattern_heavy")
    control = Strategy.objects.get(context="MISSION", key="conservative")
    experiment_update(
        actor=staff_user,
        experiment=experiment,
        data={"traffic_percent": 50.0},
        variants=[
            {"key": "c", "name": "C", "strategy": control, "weight": 1.0, "is_control": True},
            {"key": "p", "name": "P", "strategy": pattern, "weight": 2.0},
        ],
    )
    assert sorted(experiment.variants.values_list("key", flat=True)) == ["c", "p"]
    event = AuditEvent.objects.get(action="EXPERIMENT_UPDATED")
    assert event.changes["traffic_percent"] == {"old": 100.0, "new": 50.0}
    assert event.changes["variants"] == {"old": ["control", "treatment"], "new": ["c", "p"]}


def test_update__variant_from_another_context__validation_error(strategy_catalog):
    experiment = make_experiment(start=False)
    foreign = Strategy.objects.get(context="CONTENT", key="balanced")
    with pytest.raises(ValidationError) as excinfo:
        experiment_update(
            actor=None,
            experiment=experiment,
            data={},
            variants=[
                {"key": "x", "name": "X", "strategy": foreign, "weight": 1.0, "is_control": True}
            ],
        )
    assert "variants.0.strategy" in excinfo.value.message_dict


def test_strategy_update__new_baseline_demotes_the_old(strategy_catalog, staff_user):
    balanced = Strategy.objects.get(context="MISSION", key="balanced")
    strategy_update(actor=staff_user, strategy=balanced, data={"is_baseline": True})
    baselines = Strategy.objects.filter(context="MISSION", is_baseline=True)
    assert list(baselines.values_list("key", flat=True)) == ["balanced"]
    assert AuditEvent.objects.filter(action="STRATEGY_CHANGED").exists()


def test_strategy_update__baseline_cannot_be_switched_off(strategy_catalog):
    baseline = Strategy.objects.get(context="MISSION", key="conservative")
    with pytest.raises(ValidationError):
        strategy_update(actor=None, strategy=baseline, data={"is_active": False})


def test_strategy_update__bad_default_params__names_them(strategy_catalog):
    strategy = Strategy.objects.get(context="MISSION", key="balanced")
    with pytest.raises(ValidationError) as excinfo:
        strategy_update(actor=None, strategy=strategy, data={"default_params": {"duration": 3}})
    assert "duration" in str(excinfo.value.message_dict["default_params"])
