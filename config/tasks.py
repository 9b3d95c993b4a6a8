"""What every Attune task shares: late acknowledgement, rejection when a worker dies, retries
with capped exponential backoff on database and broker errors (DESIGN.md §10), and no stored
result: the tasks write their effects to the database and nobody reads their return values."""

import logging
from typing import Any

from django.db import InterfaceError, OperationalError, transaction
from kombu.exceptions import OperationalError as BrokerOperationalError

logger = logging.getLogger(__name__)

TRANSIENT_ERRORS = (OperationalError, InterfaceError, BrokerOperationalError, ConnectionError)

TASK_OPTIONS: dict[str, Any] = {
    "bind": True,
    "acks_late": True,
    "reject_on_worker_lost": True,
    "autoretry_for": TRANSIENT_ERRORS,
    "retry_backoff": 5,
    "retry_backoff_max": 300,
    "retry_jitter": True,
    "max_retries": 5,
    "ignore_result": True,
}


def enqueue_on_commit(task: Any, *args: Any, **kwargs: Any) -> None:
    """`task.delay(...)` once the current transaction commits. A broker outage is logged, not
    raised: the write has committed, and the periodic tasks catch up (DESIGN.md §10)."""

    def publish() -> None:
        try:
            task.delay(*args, **kwargs)
        except Exception:
            logger.warning(
                "could not enqueue %s; the periodic run will catch up", task.name, exc_info=True
            )

    transaction.on_commit(publish)
