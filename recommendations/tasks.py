from typing import Any

from celery import shared_task

from config.tasks import TASK_OPTIONS


@shared_task(
    name="recommendations.expire_stale", time_limit=600, soft_time_limit=540, **TASK_OPTIONS
)
def expire_stale(self: Any) -> int:
    """PENDING recommendations older than 7 days → EXPIRED. Twin: `manage.py expire_stale`."""
    from recommendations.services.feedback import recommendations_expire_stale

    return recommendations_expire_stale()
