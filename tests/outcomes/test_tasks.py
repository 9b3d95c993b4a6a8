from io import StringIO

import pytest
from django.core.management import call_command
from kombu.exceptions import OperationalError as BrokerError

from config.celery_app import app, beat_schedule
from experiments.models import StrategyConfig
from experiments.services.decisions import decision_make
from outcomes import tasks
from outcomes.models import Outcome

TASKS = [
    tasks.recompute_bandit_rewards,
    tasks.update_bandit_weights,
    tasks.compute_effectiveness_windows,
    tasks.evaluate_experiments,
]


def test_beat_schedule__every_task_registered():
    app.loader.import_default_modules()
    schedule = beat_schedule()
    for entry in schedule.values():
        assert entry["task"] in app.tasks, entry["task"]
    assert {t.name for t in TASKS} <= {entry["task"] for entry in schedule.values()}


@pytest.mark.parametrize("task", TASKS, ids=lambda t: t.name)
def test_tasks__reliability_options(task):
    assert task.acks_late is True
    assert task.reject_on_worker_lost is True
    assert task.max_retries == 5
    assert task.time_limit
    assert task.soft_time_limit < task.time_limit
    assert any(issubclass(BrokerError, e) for e in task.autoretry_for)


def test_visibility_timeout_above_every_time_limit(settings):
    timeout = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout")
    if timeout is None:
        pytest.skip("the embedded broker has no visibility timeout")
    longest = max(t.time_limit for t in TASKS) + 300  # plus the longest retry backoff
    assert timeout > longest


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("recompute_bandit_rewards", "configs changed"),
        ("update_bandit_weights", "Reweighted 0 bandit"),
        ("compute_effectiveness_windows", "window(s)"),
        ("evaluate_experiments", "evaluated 0"),
    ],
)
def test_command_twins(db, command, expected):
    out = StringIO()
    call_command(command, stdout=out)
    assert expected in out.getvalue()


def test_enqueue__broker_down__request_still_succeeds(
    user_client, user, strategy_catalog, monkeypatch, django_capture_on_commit_callbacks, caplog
):
    def broker_down(*args, **kwargs):
        raise BrokerError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(tasks.recompute_bandit_rewards, "delay", broker_down)
    decision_make(user=user, context="MISSION")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = user_client.post(
            "/api/v1/outcomes/",
            {
                "event_id": "e1",
                "context": "MISSION",
                "outcome_type": "MISSION_COMPLETED",
                "retention_score": 0.5,
            },
            format="json",
        )
    assert response.status_code == 201
    assert callbacks, "the recompute is enqueued after commit"
    assert Outcome.objects.filter(user=user).count() == 1
    assert "could not enqueue outcomes.recompute_bandit_rewards" in caplog.text
    assert StrategyConfig.objects.filter(user=user).exists()
