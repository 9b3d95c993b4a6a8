"""Per-config bandit statistics from the raw rows, incrementally (DESIGN.md §6), and the
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
from outcomes.watermarks import span_begin, span_commit

CONTEXTS = list(Context.values)

LOCK = "outcomes.recompute_bandit_rewards"
# The population model each context's stored confidences were last all computed with.
SCORED_KEY = "outcomes:population-scored:{context}"

TABLES = ("experiments_decision", "outcomes_outcome")

# A run reads only the decisions and outcomes committed since the last one (the watermark of
# outcomes/watermarks.py) and adds their counts and sums to the configs: its cost follows the
# new rows, not the history. A rebuild (`--all`, and the first run) aggregates every row the
# run's snapshot sees, plus each config's purged decisions.
#
# Two GROUP BYs into a temporary table: a query that only reads runs in parallel on
# PostgreSQL, where an UPDATE's own subqueries never do.
DELTA_SQL = """
CREATE TEMPORARY TABLE attune_reward_delta AS
WITH chosen AS (
    SELECT d.config_id, COUNT(*) AS n
    FROM experiments_decision d WHERE d.config_id IS NOT NULL AND {decisions}
    GROUP BY d.config_id
), rewarded AS (
    SELECT o.config_id, COUNT(*) AS n, SUM(o.reward) AS total, SUM(o.reward * o.reward) AS sq
    FROM outcomes_outcome o WHERE o.config_id IS NOT NULL AND {outcomes}
    GROUP BY o.config_id
), touched AS (
    SELECT config_id FROM chosen UNION SELECT config_id FROM rewarded
)
SELECT touched.config_id AS id,
       COALESCE(chosen.n, 0) AS selected,
       COALESCE(rewarded.n, 0) AS rewarded_n,
       COALESCE(rewarded.total, 0.0) AS total,
       COALESCE(rewarded.sq, 0.0) AS total_sq
FROM touched
LEFT JOIN chosen ON chosen.config_id = touched.config_id
LEFT JOIN rewarded ON rewarded.config_id = touched.config_id
"""
REBUILD_SQL = """
CREATE TEMPORARY TABLE attune_reward_delta AS
WITH chosen AS (
    SELECT d.config_id, COUNT(*) AS n
    FROM experiments_decision d WHERE d.config_id IS NOT NULL AND {decisions}
    GROUP BY d.config_id
), rewarded AS (
    SELECT o.config_id, COUNT(*) AS n, SUM(o.reward) AS total, SUM(o.reward * o.reward) AS sq
    FROM outcomes_outcome o WHERE o.config_id IS NOT NULL AND {outcomes}
    GROUP BY o.config_id
)
SELECT c.id,
       COALESCE(chosen.n, 0) + c.selections_purged AS selected,
       COALESCE(rewarded.n, 0) AS rewarded_n,
       COALESCE(rewarded.total, 0.0) AS total,
       COALESCE(rewarded.sq, 0.0) AS total_sq
FROM experiments_strategyconfig c
LEFT JOIN chosen ON chosen.config_id = c.id
LEFT JOIN rewarded ON rewarded.config_id = c.id
"""
# How a row of attune_reward_delta ("fresh") changes its config ("c"): added, or (rebuild)
# replaced, and only where the figures differ, so a rerun writes nothing.
ADDED = {
    "selected": "c.times_selected + fresh.selected",
    "rewarded_n": "c.times_rewarded + fresh.rewarded_n",
    "total": "c.total_reward + fresh.total",
    "total_sq": "c.total_reward_sq + fresh.total_sq",
}
REPLACED = {
    "selected": "fresh.selected",
    "rewarded_n": "fresh.rewarded_n",
    "total": "fresh.total",
    "total_sq": "fresh.total_sq",
}
# The new figures of the configs that change, computed without locks: only this run (under its
# advisory lock) writes them.
STALE_SQL = """
CREATE TEMPORARY TABLE attune_reward_stale AS
SELECT c.id, c.user_id, figures.selected, figures.rewarded_n, figures.total, figures.total_sq
FROM experiments_strategyconfig c
JOIN (
    SELECT c.id,
           {selected} AS selected, {rewarded_n} AS rewarded_n,
           {total} AS total, {total_sq} AS total_sq
    FROM experiments_strategyconfig c
    JOIN attune_reward_delta AS fresh ON fresh.id = c.id
) AS figures ON figures.id = c.id
WHERE c.times_selected <> figures.selected
   OR c.times_rewarded <> figures.rewarded_n
   OR ABS(c.total_reward - figures.total) > 1e-9
   OR ABS(c.total_reward_sq - figures.total_sq) > 1e-9
"""
# Every writer of configs locks a learner's configs in id order, in one statement (STYLE.md
# rule 5): the decide call's config_activate, and here every config of every learner whose
# figures change, since their confidences are rewritten next; locks taken by a second
# statement below the first one's would cross the decide call's order and deadlock.
# (An UPDATE … FROM would lock in scan order.) SQLite has one writer and no row locks.
LOCK_SQL = """
SELECT c.id FROM experiments_strategyconfig c
WHERE c.user_id IN (SELECT user_id FROM attune_reward_stale)
ORDER BY c.id
FOR NO KEY UPDATE
"""
UPDATE_SQL = """
UPDATE experiments_strategyconfig
SET times_selected = stale.selected,
    times_rewarded = stale.rewarded_n,
    total_reward = stale.total,
    total_reward_sq = stale.total_sq,
    avg_reward = CASE WHEN stale.rewarded_n > 0 THEN stale.total / stale.rewarded_n ELSE 0.0 END
FROM attune_reward_stale AS stale
WHERE stale.id = experiments_strategyconfig.id
RETURNING experiments_strategyconfig.user_id
"""


def bandit_rewards_recompute(*, rebuild: bool = False) -> dict[str, int]:
    """times_selected = decisions that chose the config (with those purged since);
    times_rewarded, total_reward, total_reward_sq and avg_reward = count, sums and mean of the
    rewards of outcomes attributed to it. By default from the rows committed since the last
    run, added to the stored figures; `rebuild` (and the first run) from every row. Computed
    and written by the database, serialised by an advisory lock. Then the §5.5 confidence of
    those learners, and (in a transaction of its own) of every learner of a context whose
    population model moved."""
    with transaction.atomic():
        serialized(LOCK)
        configs, rewritten = _figures_update(rebuild=rebuild)
        users = sorted(set(rewritten))
        rescored = 0
        if users:
            population_invalidate()
            rescored = config_confidence_refresh(users=users)
    if users:
        rescored += _drifted_contexts_refresh()
    return {"configs": configs, "updated": len(rewritten), "rescored": rescored}


def _figures_update(*, rebuild: bool) -> tuple[int, list[int]]:
    """(configs read, the learner of each config rewritten); moves the watermark."""
    span = span_begin(LOCK, TABLES)
    whole = rebuild or span.first
    condition = span.seen if whole else span.new
    decisions, decision_params = condition("d", "experiments_decision")
    outcomes, outcome_params = condition("o", "outcomes_outcome")
    with connection.cursor() as cursor:
        cursor.execute(
            (REBUILD_SQL if whole else DELTA_SQL).format(decisions=decisions, outcomes=outcomes),
            [*decision_params, *outcome_params],
        )
        cursor.execute("SELECT COUNT(*) FROM attune_reward_delta")
        configs = cursor.fetchone()[0]
        cursor.execute(STALE_SQL.format(**(REPLACED if whole else ADDED)))
        if connection.vendor == "postgresql":
            cursor.execute(LOCK_SQL)
        cursor.execute(UPDATE_SQL)
        rewritten = [row[0] for row in cursor.fetchall()]
        cursor.execute("DROP TABLE attune_reward_delta")
        cursor.execute("DROP TABLE attune_reward_stale")
    span_commit(span)
    return configs, rewritten


def _drifted_contexts_refresh() -> int:
    """Rescore every config of the contexts whose population moved (_drifted_contexts), in
    one transaction whose single locking statement takes the rows in id order."""
    with transaction.atomic():
        serialized(LOCK)
        drifted = _drifted_contexts()
        if not drifted:
            return 0
        rescored = config_confidence_refresh(users=[], contexts=sorted(drifted))
        models = {SCORED_KEY.format(context=c): m for c, m in drifted.items()}
        transaction.on_commit(lambda: cache.set_many(models, timeout=None))
    return rescored


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
