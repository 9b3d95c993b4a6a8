"""The Celery application. Configuration comes from Django settings (CELERY_*); the beat
schedule is code, so that every deployment runs the same timetable."""

import os
from pathlib import Path
from typing import Any

from celery import Celery
from celery.schedules import crontab
from celery.signals import worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("attune")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def beat_schedule() -> dict[str, dict[str, Any]]:
    """DESIGN.md §6. Task names are stable strings; read when Celery is configured, after
    Django's settings."""
    from django.conf import settings

    return {
        "outcomes.recompute_bandit_rewards": {
            "task": "outcomes.recompute_bandit_rewards",
            "schedule": 60.0,
        },
        "experiments.update_bandit_weights": {
            "task": "experiments.update_bandit_weights",
            "schedule": settings.BANDIT_UPDATE_MINUTES * 60.0,
        },
        "outcomes.compute_effectiveness_windows": {
            "task": "outcomes.compute_effectiveness_windows",
            "schedule": crontab(minute="5"),
        },
        "outcomes.evaluate_experiments": {
            "task": "outcomes.evaluate_experiments",
            "schedule": crontab(minute="10"),
        },
        "recommendations.expire_stale": {
            "task": "recommendations.expire_stale",
            "schedule": crontab(minute="30", hour="2"),
        },
        "experiments.deliver_webhooks": {
            "task": "experiments.deliver_webhooks",
            "schedule": 60.0,
        },
        "logs.purge_expired_logs": {
            "task": "logs.purge_expired_logs",
            "schedule": crontab(minute="17", hour="3"),
        },
    }


@app.on_after_configure.connect
def _configure(sender: Celery, **kwargs: object) -> None:
    """The beat schedule, and the folders the embedded broker (kombu's filesystem transport)
    needs."""
    sender.conf.beat_schedule = beat_schedule()
    options = sender.conf.broker_transport_options or {}
    for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
        if options.get(key):
            Path(options[key]).mkdir(parents=True, exist_ok=True)
    backend = sender.conf.result_backend or ""
    if isinstance(backend, str) and backend.startswith("file://"):
        Path(backend.removeprefix("file://")).mkdir(parents=True, exist_ok=True)


@worker_ready.connect
def _record_liveness(sender: Any, **kwargs: object) -> None:
    """Before the worker consumes: its record of held messages, so that the messages of a
    worker killed without acking go back to their queues within WORKER_LIVENESS_SECONDS
    instead of the visibility timeout (config/worker_liveness.py)."""
    from config.worker_liveness import worker_liveness_start

    worker_liveness_start(sender)
