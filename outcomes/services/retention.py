"""Retention of the decision log (DESIGN.md §6 `logs.purge_expired_logs`): decisions older
than DECISION_RETENTION_DAYS are deleted in small batches, each its own short transaction, so
no lock is held for long and the decide call never waits behind the purge.

What the aggregates need survives: outcomes and recommendations keep their attribution (the
context, strategy, config, experiment and variant are copied onto them at ingest; only the
link to the decision row is cleared), and each config counts the decisions purged from it
(`selections_purged`), which a rebuild of the reward statistics adds back. Only decisions the
reward run has already counted are purged, so the incremental figures and a rebuild agree."""

import datetime
import logging

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from config.arrays import AnyOf
from config.db import serialized
from experiments.services.retention import config_selections_purged_add, decisions_delete
from outcomes.models import Outcome
from outcomes.services.rewards import LOCK as REWARDS_LOCK
from outcomes.watermarks import committed_by_last_run
from recommendations.services.retention import recommendations_decisions_unlink

logger = logging.getLogger(__name__)

BATCH = 5000

EXPIRED_SQL = """
SELECT d.id, d.config_id FROM experiments_decision d
WHERE d.created_at < %s AND {counted} ORDER BY d.id LIMIT %s
"""


def decisions_purge_expired(
    *, now: datetime.datetime | None = None, batch: int = BATCH
) -> dict[str, int]:
    """Delete decisions older than DECISION_RETENTION_DAYS that the reward run has counted,
    `batch` at a time; returns the decisions deleted and the batches."""
    cutoff = (now or timezone.now()) - datetime.timedelta(days=settings.DECISION_RETENTION_DAYS)
    deleted = batches = 0
    while True:
        count = _purge_batch(cutoff, batch)
        deleted, batches = deleted + count, batches + (1 if count else 0)
        if count < batch:
            break
    if deleted:
        logger.info("purged %s decisions older than %s", deleted, cutoff.isoformat())
    return {"decisions": deleted, "batches": batches}


@transaction.atomic
def _purge_batch(cutoff: datetime.datetime, batch: int) -> int:
    serialized(REWARDS_LOCK)  # the reward run's watermark stays put while this batch runs
    counted = committed_by_last_run(REWARDS_LOCK, "d", "experiments_decision")
    if counted is None:
        return 0
    condition, params = counted
    with connection.cursor() as cursor:
        cursor.execute(EXPIRED_SQL.format(counted=condition), [cutoff, *params, batch])
        rows = cursor.fetchall()
    if not rows:
        return 0
    ids = [row[0] for row in rows]
    per_config: dict[int, int] = {}
    for _, config_id in rows:
        if config_id is not None:
            per_config[config_id] = per_config.get(config_id, 0) + 1
    # Each owner clears its link, the experiments app counts and deletes.
    Outcome.objects.filter(AnyOf(F("decision_id"), ids)).update(decision=None)
    recommendations_decisions_unlink(decision_ids=ids)
    config_selections_purged_add(counts=per_config)
    decisions_delete(ids=ids)
    return len(ids)
