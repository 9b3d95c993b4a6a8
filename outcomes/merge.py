"""How the outcomes app's rows follow a learner merged into another (DESIGN.md §10)."""

import hashlib
from typing import Any

from django.db import connection

from config.db import serialized
from experiments.models import StrategyConfig
from outcomes.models import Outcome
from outcomes.services.effectiveness import effectiveness_windows_mark_stale
from outcomes.services.rewards import LOCK as REWARDS_LOCK
from outcomes.watermarks import committed_by_last_run

MAX_EVENT_ID = 64
# 80 bits: no two re-keyed ids of a learner meet by chance.
DIGEST_CHARS = 20


def merged_event_id(event_id: str, source_id: int) -> str:
    """The event id a merged learner's outcome takes when the survivor already holds its
    own: deterministic, so a repeated merge (or a client that knows the rule) finds it.
    `<event id>~merged-<id>` where that fits the column; otherwise the event id is cut and a
    digest of the whole event id and the merged learner's id keeps cut ids apart
    (`<head>~<digest>~merged-<id>`: cutting alone made two long ids with a common head one)."""
    suffix = f"~merged-{source_id}"
    if len(event_id) + len(suffix) <= MAX_EVENT_ID:
        return event_id + suffix
    digest = hashlib.sha256(f"{source_id}:{event_id}".encode()).hexdigest()[:DIGEST_CHARS]
    tail = f"~{digest}{suffix}"
    return event_id[: MAX_EVENT_ID - len(tail)] + tail


def outcomes_merge(source: Any, target: Any) -> int:
    """Outcomes move to the survivor, pointed at the survivor's config of the same strategy
    where it has one; an outcome whose event id the survivor already holds is re-keyed
    (merged_event_id), so no measurement is lost. The watermark cannot see rows that change
    owner, so their windows are marked for the next hourly effectiveness run."""
    effectiveness_windows_mark_stale(
        key=f"merged-{source.pk}", outcomes=Outcome.objects.filter(user=source), user_id=target.pk
    )
    taken = Outcome.objects.filter(user=target).values("event_id")
    for pk, event_id in Outcome.objects.filter(user=source, event_id__in=taken).values_list(
        "pk", "event_id"
    ):
        Outcome.objects.filter(pk=pk).update(event_id=merged_event_id(event_id, source.pk))
    rows = Outcome.objects.filter(user=source)
    mine = dict(StrategyConfig.objects.filter(user=target).values_list("strategy_id", "id"))
    for config_id, strategy_id in StrategyConfig.objects.filter(user=source).values_list(
        "id", "strategy_id"
    ):
        if strategy_id in mine:
            rows.filter(config_id=config_id).update(config_id=mine[strategy_id])
    return rows.update(user=target)


REBUILD_SQL = """
UPDATE experiments_strategyconfig AS c
SET times_selected = c.selections_purged + (
        SELECT COUNT(*) FROM experiments_decision d WHERE d.config_id = c.id AND {decisions}),
    times_rewarded = figures.n,
    total_reward = figures.total,
    total_reward_sq = figures.total_sq,
    avg_reward = CASE WHEN figures.n > 0 THEN figures.total / figures.n ELSE 0.0 END
FROM (
    SELECT c2.id,
           COUNT(o.id) AS n,
           COALESCE(SUM(o.reward), 0.0) AS total,
           COALESCE(SUM(o.reward * o.reward), 0.0) AS total_sq
    FROM experiments_strategyconfig c2
    LEFT JOIN outcomes_outcome o ON o.config_id = c2.id AND {outcomes}
    WHERE c2.user_id = %s
    GROUP BY c2.id
) AS figures
WHERE figures.id = c.id
"""


def reward_figures_rebuild(source: Any, target: Any) -> int:
    """The survivor's configs' reward figures from the rows the last reward run counted
    (rows after it are the next run's to add), so the incremental figures stay equal to a
    rebuild. Before any reward run there is nothing to rebuild: the first run rebuilds all."""
    serialized(REWARDS_LOCK)
    decisions = committed_by_last_run(REWARDS_LOCK, "d", "experiments_decision")
    outcomes = committed_by_last_run(REWARDS_LOCK, "o", "outcomes_outcome")
    if decisions is None or outcomes is None:
        return 0
    if connection.vendor == "postgresql":  # id order, as every writer of configs
        list(
            StrategyConfig.objects.filter(user=target)
            .order_by("id")
            .select_for_update(no_key=True)
            .values_list("id", flat=True)
        )
    with connection.cursor() as cursor:
        cursor.execute(
            REBUILD_SQL.format(decisions=decisions[0], outcomes=outcomes[0]),
            [*decisions[1], *outcomes[1], target.pk],
        )
        return cursor.rowcount
