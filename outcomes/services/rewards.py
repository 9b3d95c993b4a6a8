"""Per-config bandit statistics, rebuilt from the raw rows (DESIGN.md §6)."""

from django.db import connection, transaction

from config.db import serialized
from experiments.catalog import population_invalidate

LOCK = "outcomes.recompute_bandit_rewards"

# Two GROUP BYs over the raw rows, joined to every config, into a temporary table: a query
# that only reads runs in parallel on PostgreSQL, where an UPDATE's own subqueries never do.
# Then one UPDATE of only the configs whose figures differ, so a rerun writes nothing:
# standard SQL that SQLite (≥ 3.33, UPDATE … FROM) runs; PostgreSQL runs LOCKED_UPDATE_SQL.
FRESH_SQL = """
CREATE TEMPORARY TABLE attune_fresh_rewards AS
WITH chosen AS (
    SELECT config_id, COUNT(*) AS n
    FROM experiments_decision WHERE config_id IS NOT NULL GROUP BY config_id
), rewarded AS (
    SELECT config_id, COUNT(*) AS n, SUM(reward) AS total
    FROM outcomes_outcome WHERE config_id IS NOT NULL GROUP BY config_id
)
SELECT c.id,
       COALESCE(chosen.n, 0) AS selected,
       COALESCE(rewarded.n, 0) AS rewarded_n,
       COALESCE(rewarded.total, 0.0) AS total
FROM experiments_strategyconfig c
LEFT JOIN chosen ON chosen.config_id = c.id
LEFT JOIN rewarded ON rewarded.config_id = c.id
"""
UPDATE_SQL = """
UPDATE experiments_strategyconfig
SET times_selected = fresh.selected,
    times_rewarded = fresh.rewarded_n,
    total_reward = fresh.total,
    avg_reward = CASE WHEN fresh.rewarded_n > 0 THEN fresh.total / fresh.rewarded_n ELSE 0.0 END
FROM attune_fresh_rewards AS fresh
WHERE fresh.id = experiments_strategyconfig.id
  AND (experiments_strategyconfig.times_selected <> fresh.selected
       OR experiments_strategyconfig.times_rewarded <> fresh.rewarded_n
       OR ABS(experiments_strategyconfig.total_reward - fresh.total) > 1e-9)
"""
# On PostgreSQL an UPDATE … FROM locks its rows in the order its join meets them (scan order),
# while the decide call's config_activate and every other writer lock a learner's configs in
# id order: crossing orders deadlock (STYLE.md rule 5). So the same statement first locks the
# rows that differ sorted by id (FOR NO KEY UPDATE runs above the sort, and a CTE with a
# locking clause is always materialised), then rewrites only those.
LOCKED_UPDATE_SQL = """
WITH stale AS MATERIALIZED (
    SELECT c.id, fresh.selected, fresh.rewarded_n, fresh.total
    FROM experiments_strategyconfig c
    JOIN attune_fresh_rewards AS fresh ON fresh.id = c.id
    WHERE c.times_selected <> fresh.selected
       OR c.times_rewarded <> fresh.rewarded_n
       OR ABS(c.total_reward - fresh.total) > 1e-9
    ORDER BY c.id
    FOR NO KEY UPDATE OF c
)
UPDATE experiments_strategyconfig
SET times_selected = stale.selected,
    times_rewarded = stale.rewarded_n,
    total_reward = stale.total,
    avg_reward = CASE WHEN stale.rewarded_n > 0 THEN stale.total / stale.rewarded_n ELSE 0.0 END
FROM stale
WHERE stale.id = experiments_strategyconfig.id
"""


@transaction.atomic
def bandit_rewards_recompute() -> dict[str, int]:
    """times_selected = decisions that chose the config; times_rewarded, total_reward and
    avg_reward = count, sum and mean of the rewards of outcomes attributed to it. Computed
    and written by the database, serialised by an advisory lock; on PostgreSQL the rows it
    rewrites are locked in id order, as every writer of configs locks them."""
    serialized(LOCK)
    with connection.cursor() as cursor:
        cursor.execute(FRESH_SQL)
        cursor.execute("SELECT COUNT(*) FROM attune_fresh_rewards")
        configs = cursor.fetchone()[0]
        cursor.execute(LOCKED_UPDATE_SQL if connection.vendor == "postgresql" else UPDATE_SQL)
        updated = cursor.rowcount
        cursor.execute("DROP TABLE attune_fresh_rewards")
    if updated:
        population_invalidate()
    return {"configs": configs, "updated": updated}
