"""Per-config bandit statistics, rebuilt from the raw rows (DESIGN.md §6), and the
per-learner confidence of §5.5 of every learner whose statistics changed."""

from collections.abc import Sequence

import numpy as np
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import F, Q

from config.db import serialized
from experiments import bandits
from experiments.catalog import (
    CONFIDENCE_DRIFT,
    PopulationModel,
    context_catalog,
    population_drift,
    population_invalidate,
    population_model,
)
from experiments.models import Context, StrategyConfig
from outcomes.sql import AnyOf, Codes, field_arrays, update_columns

CONTEXTS = list(Context.values)

LOCK = "outcomes.recompute_bandit_rewards"
# The population model each context's stored confidences were last all computed with.
SCORED_KEY = "outcomes:population-scored:{context}"

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
    SELECT config_id, COUNT(*) AS n, SUM(reward) AS total, SUM(reward * reward) AS total_sq
    FROM outcomes_outcome WHERE config_id IS NOT NULL GROUP BY config_id
)
SELECT c.id,
       COALESCE(chosen.n, 0) AS selected,
       COALESCE(rewarded.n, 0) AS rewarded_n,
       COALESCE(rewarded.total, 0.0) AS total,
       COALESCE(rewarded.total_sq, 0.0) AS total_sq
FROM experiments_strategyconfig c
LEFT JOIN chosen ON chosen.config_id = c.id
LEFT JOIN rewarded ON rewarded.config_id = c.id
"""
UPDATE_SQL = """
UPDATE experiments_strategyconfig
SET times_selected = fresh.selected,
    times_rewarded = fresh.rewarded_n,
    total_reward = fresh.total,
    total_reward_sq = fresh.total_sq,
    avg_reward = CASE WHEN fresh.rewarded_n > 0 THEN fresh.total / fresh.rewarded_n ELSE 0.0 END
FROM attune_fresh_rewards AS fresh
WHERE fresh.id = experiments_strategyconfig.id
  AND (experiments_strategyconfig.times_selected <> fresh.selected
       OR experiments_strategyconfig.times_rewarded <> fresh.rewarded_n
       OR ABS(experiments_strategyconfig.total_reward - fresh.total) > 1e-9
       OR ABS(experiments_strategyconfig.total_reward_sq - fresh.total_sq) > 1e-9)
RETURNING experiments_strategyconfig.user_id
"""
# On PostgreSQL an UPDATE … FROM locks its rows in the order its join meets them (scan order),
# while the decide call's config_activate and every other writer lock a learner's configs in
# id order: crossing orders deadlock (STYLE.md rule 5). So the same statement first locks the
# rows that differ sorted by id (FOR NO KEY UPDATE runs above the sort, and a CTE with a
# locking clause is always materialised), then rewrites only those.
LOCKED_UPDATE_SQL = """
WITH stale AS MATERIALIZED (
    SELECT c.id, fresh.selected, fresh.rewarded_n, fresh.total, fresh.total_sq
    FROM experiments_strategyconfig c
    JOIN attune_fresh_rewards AS fresh ON fresh.id = c.id
    WHERE c.times_selected <> fresh.selected
       OR c.times_rewarded <> fresh.rewarded_n
       OR ABS(c.total_reward - fresh.total) > 1e-9
       OR ABS(c.total_reward_sq - fresh.total_sq) > 1e-9
    ORDER BY c.id
    FOR NO KEY UPDATE OF c
)
UPDATE experiments_strategyconfig
SET times_selected = stale.selected,
    times_rewarded = stale.rewarded_n,
    total_reward = stale.total,
    total_reward_sq = stale.total_sq,
    avg_reward = CASE WHEN stale.rewarded_n > 0 THEN stale.total / stale.rewarded_n ELSE 0.0 END
FROM stale
WHERE stale.id = experiments_strategyconfig.id
RETURNING experiments_strategyconfig.user_id
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
        rewritten = cursor.fetchall()
        cursor.execute("DROP TABLE attune_fresh_rewards")
    updated, rescored = len(rewritten), 0
    if rewritten:
        population_invalidate()
        drifted = _drifted_contexts()
        rescored = config_confidence_refresh(
            users=sorted({row[0] for row in rewritten}), contexts=sorted(drifted)
        )
        transaction.on_commit(
            lambda: cache.set_many(
                {SCORED_KEY.format(context=c): m for c, m in drifted.items()}, timeout=None
            )
        )
    return {"configs": configs, "updated": updated, "rescored": rescored}


def _drifted_contexts() -> dict[str, PopulationModel]:
    """Contexts whose population model moved by more than CONFIDENCE_DRIFT since their stored
    confidences were all computed (§5.5: a learner's confidence also depends on what everyone
    says), with the model they are now computed with. Without a record (a cold cache), every
    context counts as moved: stale is worse than a wasted pass."""
    models = {context: population_model(context) for context in CONTEXTS}
    scored = cache.get_many([SCORED_KEY.format(context=c) for c in CONTEXTS])
    return {
        context: model
        for context, model in models.items()
        if population_drift(scored.get(SCORED_KEY.format(context=context)), model)
        > CONFIDENCE_DRIFT
    }


CONFIG_FIELDS: dict[str, "str | Codes"] = {
    "id": "int8",
    "user_id": "int8",
    "strategy_id": "int8",
    "times_rewarded": "int8",
    "avg_reward": "float8",
    "confidence_score": "float8",
    "context": Codes(CONTEXTS),
}


def config_confidence_refresh(*, users: list[int], contexts: Sequence[str] = ()) -> int:
    """confidence_score of every config of these learners, and of everyone in these
    contexts, = the §5.5 posterior probability that its strategy beats the context's
    baseline for the learner (the baseline's own: 0.5), from the same statistics and
    population model the decide call uses. Undefined (nobody rewarded yet) keeps the stored
    value. Changed rows are locked in id order first."""
    columns = field_arrays(
        StrategyConfig.objects.filter(
            Q(AnyOf(F("user_id"), users)) | Q(context__in=list(contexts))
        ).order_by(),
        CONFIG_FIELDS,
    )
    computed = columns["confidence_score"].copy()
    for code in np.unique(columns["context"]).tolist():
        context = CONTEXTS[code]
        catalog = context_catalog(context)
        if catalog.baseline is None:
            continue
        strategies = [s.id for s in catalog.strategies]
        baseline = strategies.index(catalog.baseline.id)
        population = population_model(context)
        mine = np.isin(columns["strategy_id"], strategies)
        people, row = np.unique(columns["user_id"][mine], return_inverse=True)
        position = {sid: i for i, sid in enumerate(strategies)}
        col = np.array([position[sid] for sid in columns["strategy_id"][mine].tolist()], dtype=int)
        n = np.zeros((people.size, len(strategies)))
        own = np.zeros_like(n)
        n[row, col] = columns["times_rewarded"][mine]
        own[row, col] = columns["avg_reward"][mine]
        strength = bandits.arm_prior_strengths(
            population.prior.prior_strength,
            np.array([population.rewards.get(s, 0.0) for s in strategies]),
        )
        confidence = bandits.posterior_confidence(
            n,
            own,
            np.array([population.means.get(s, 0.0) for s in strategies]),
            baseline,
            prior_strength=strength,
            within_variance=population.prior.within_variance,
        )
        fresh = confidence[row, col]
        computed[mine] = np.where(np.isfinite(fresh), fresh, computed[mine])
    changed = np.flatnonzero(np.abs(computed - columns["confidence_score"]) > 1e-12)
    ids = columns["id"][changed]
    order = np.argsort(ids)
    ids, values = ids[order].tolist(), computed[changed][order].tolist()
    if ids and connection.vendor == "postgresql":
        list(
            StrategyConfig.objects.filter(AnyOf(F("id"), ids))
            .order_by("id")
            .select_for_update(no_key=True)
            .values_list("id", flat=True)
        )
    return update_columns(StrategyConfig, ids, {"confidence_score": values})
