"""Retention of the decision log (DESIGN.md §6 `logs.purge_expired_logs`): decisions older
than DECISION_RETENTION_DAYS are deleted in small batches, each its own short transaction, so
no lock is held for long and the decide call never waits behind the purge.

What the aggregates need survives: outcomes and recommendations keep their attribution (the
context, strategy, config, experiment and variant are copied onto them at ingest; only the
link to the decision row is cleared), and each config counts the decisions purged from it
(`selections_purged`), which a rebuild of the reward statistics adds back. Only decisions the
reward run has already counted are purged, so the incremental figures and a rebuild agree."""

import datetime
import json
import logging
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from config.db import serialized
from outcomes.services.rewards import LOCK as REWARDS_LOCK
from outcomes.watermarks import committed_by_last_run

logger = logging.getLogger(__name__)

BATCH = 5000

# `{column}` equals one of an id array passed as one parameter.
ANY = {
    "postgresql": "{column} = ANY(%s::bigint[])",
    "sqlite": "{column} IN (SELECT value FROM json_each(%s))",
}
EXPIRED_SQL = """
SELECT d.id, d.config_id FROM experiments_decision d
WHERE d.created_at < %s AND {counted} LIMIT %s
"""
UNLINK_SQL = "UPDATE {table} SET decision_id = NULL WHERE {matches}"
LOCK_SQL = "SELECT id FROM experiments_strategyconfig WHERE {matches} ORDER BY id FOR NO KEY UPDATE"
PURGED = {
    "postgresql": "SELECT * FROM unnest(%s::bigint[], %s::bigint[]) AS v(id, n)",
    "sqlite": (
        "SELECT json_extract(value, '$[0]') AS id, json_extract(value, '$[1]') AS n "
        "FROM json_each(%s)"
    ),
}
COUNT_SQL = """
UPDATE experiments_strategyconfig SET selections_purged = selections_purged + purged.n
FROM ({purged}) AS purged WHERE purged.id = experiments_strategyconfig.id
"""
DELETE_SQL = "DELETE FROM experiments_decision WHERE {matches}"


def _matches(column: str) -> str:
    return ANY[connection.vendor].format(column=column)


def _ids_parameter(ids: list[int]) -> Any:
    return ids if connection.vendor == "postgresql" else json.dumps(ids)


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
    postgresql = connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        cursor.execute(EXPIRED_SQL.format(counted=condition), [cutoff, *params, batch])
        rows = cursor.fetchall()
        if not rows:
            return 0
        ids = sorted(row[0] for row in rows)
        per_config: dict[int, int] = {}
        for _, config_id in rows:
            if config_id is not None:
                per_config[config_id] = per_config.get(config_id, 0) + 1
        parameter = _ids_parameter(ids)
        for table in ("outcomes_outcome", "recommendations_recommendation"):
            cursor.execute(
                UNLINK_SQL.format(table=table, matches=_matches("decision_id")), [parameter]
            )
        if per_config:
            configs = sorted(per_config)
            counts = [per_config[c] for c in configs]
            if postgresql:  # in id order, as every writer of configs locks them
                cursor.execute(LOCK_SQL.format(matches=_matches("id")), [configs])
            values: list[Any] = (
                [configs, counts]
                if postgresql
                else [json.dumps(list(zip(configs, counts, strict=True)))]
            )
            cursor.execute(COUNT_SQL.format(purged=PURGED[connection.vendor]), values)
        cursor.execute(DELETE_SQL.format(matches=_matches("id")), [parameter])
    return len(ids)
