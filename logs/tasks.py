from typing import Any

from celery import shared_task

from config.tasks import TASK_OPTIONS


@shared_task(name="logs.purge_expired_logs", time_limit=900, soft_time_limit=840, **TASK_OPTIONS)
def purge_expired_logs(self: Any) -> dict[str, int]:
    """Delete request logs older than LOG_RETENTION_DAYS and decisions older than
    DECISION_RETENTION_DAYS, in batches. Twin: `manage.py purge_expired_logs`."""
    from logs.services import request_logs_purge_expired
    from outcomes.services.retention import decisions_purge_expired

    decisions = decisions_purge_expired()
    return {**request_logs_purge_expired(), "decisions": decisions["decisions"]}
