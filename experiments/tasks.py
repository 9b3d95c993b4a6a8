"""Tasks of the experiments app (DESIGN.md §6). Thin: each calls its service, which an
operator can also run through the manage.py twin. (`experiments.update_bandit_weights`
lives in outcomes/tasks.py because it reads outcomes.)"""

from typing import Any

from celery import shared_task

from config.tasks import TASK_OPTIONS


@shared_task(
    name="experiments.deliver_webhooks", time_limit=300, soft_time_limit=270, **TASK_OPTIONS
)
def deliver_webhooks(self: Any, delivery_id: int | None = None) -> dict[str, int]:
    """With `delivery_id` (enqueued when an event is emitted): one attempt at that delivery.
    Without (every minute): hand each due delivery to a task of its own, so that one slow
    receiver holds up nobody else."""
    from experiments.services.webhooks import (
        webhook_deliveries_dispatch,
        webhook_delivery_attempt,
    )

    if delivery_id is None:
        return webhook_deliveries_dispatch()
    status = webhook_delivery_attempt(delivery_id=delivery_id)
    return {"attempted": int(status is not None)}
