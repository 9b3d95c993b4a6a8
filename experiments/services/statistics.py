"""Writers of the per-config learning statistics that the recomputations of the outcomes app
compute (DESIGN.md §6, §5.5): the reward figures, the §5.5 confidence and the effectiveness
score. Every writer of configs locks a learner's configs in id order, in one statement
(STYLE.md rule 5), as the decide call's config_activate does; crossing orders deadlock."""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import F, Q

from config.arrays import AnyOf, Codes, field_arrays, update_columns
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

CONTEXTS = list(Context.values)
# The population model each context's stored confidences were last all computed with.
SCORED_KEY = "experiments:population-scored:{context}"


@dataclass(frozen=True)
class RewardFigures:
    """Per config (ids distinct): decisions that chose it, rewards attributed to it, their
    sum and sum of squares."""

    ids: np.ndarray
    selected: np.ndarray
    rewarded: np.ndarray
    total: np.ndarray
    total_sq: np.ndarray


FIGURE_FIELDS: dict[str, "str | Codes"] = {
    "id": "int8",
    "user_id": "int8",
    "times_selected": "int8",
    "times_rewarded": "int8",
    "total_reward": "float8",
    "total_reward_sq": "float8",
    "selections_purged": "int8",
}


def _lock_learners(users: list[int]) -> None:
    if users and connection.vendor == "postgresql":
        list(
            StrategyConfig.objects.filter(AnyOf(F("user_id"), users))
            .order_by("id")
            .select_for_update(no_key=True)
            .values_list("id", flat=True)
        )


def config_rewards_apply(
    *, figures: RewardFigures, replace: bool, within: list[int] | None = None
) -> list[int]:
    """Add `figures` to the configs' reward statistics, or (`replace`, a rebuild) make them
    the statistics of every config (of the configs `within`, when given): those absent count
    only their purged decisions. Only configs whose figures change are written; every config
    of their learners is locked first (their confidences are rewritten next, in the same
    transaction). Returns the learners whose configs changed, one entry per config written.
    The caller serialises runs: nothing else writes these columns."""
    configs = StrategyConfig.objects.order_by()
    if not replace:
        configs = configs.filter(AnyOf(F("id"), figures.ids.tolist()))
    elif within is not None:
        configs = configs.filter(AnyOf(F("id"), within))
    stored = field_arrays(configs, FIGURE_FIELDS)
    order = np.argsort(figures.ids)
    ids = figures.ids[order]
    index = np.searchsorted(ids, stored["id"])
    found = index < ids.size
    found[found] = ids[index[found]] == stored["id"][found]

    def incoming(values: np.ndarray) -> np.ndarray:
        result = np.zeros(stored["id"].size, dtype=values.dtype)
        result[found] = values[order][index[found]]
        return result

    columns = {
        "times_selected": incoming(figures.selected),
        "times_rewarded": incoming(figures.rewarded),
        "total_reward": incoming(figures.total),
        "total_reward_sq": incoming(figures.total_sq),
    }
    if replace:
        columns["times_selected"] = columns["times_selected"] + stored["selections_purged"]
    else:
        columns = {name: stored[name] + values for name, values in columns.items()}
    changed = (
        (columns["times_selected"] != stored["times_selected"])
        | (columns["times_rewarded"] != stored["times_rewarded"])
        | (np.abs(columns["total_reward"] - stored["total_reward"]) > 1e-9)
        | (np.abs(columns["total_reward_sq"] - stored["total_reward_sq"]) > 1e-9)
    )
    if not changed.any():
        return []
    learners = stored["user_id"][changed]
    _lock_learners(np.unique(learners).tolist())
    rewarded = columns["times_rewarded"][changed]
    total = columns["total_reward"][changed]
    with np.errstate(divide="ignore", invalid="ignore"):
        average = np.where(rewarded > 0, total / np.where(rewarded > 0, rewarded, 1), 0.0)
    update_columns(
        StrategyConfig,
        stored["id"][changed].tolist(),
        {
            **{name: values[changed].tolist() for name, values in columns.items()},
            "avg_reward": average.tolist(),
        },
    )
    population_invalidate()
    return learners.tolist()


def drifted_contexts() -> dict[str, PopulationModel]:
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


def drifted_contexts_refresh() -> int:
    """Rescore every config of the contexts whose population moved (drifted_contexts); call
    in a transaction that holds no config locks yet, so its single locking statement takes
    the rows in id order."""
    drifted = drifted_contexts()
    if not drifted:
        return 0
    rescored = config_confidence_refresh(users=[], contexts=sorted(drifted))
    models = {SCORED_KEY.format(context=c): m for c, m in drifted.items()}
    transaction.on_commit(lambda: cache.set_many(models, timeout=None))
    return rescored


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


def _same(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a == b) | (np.isnan(a) & np.isnan(b))


def config_effectiveness_set(*, ids: np.ndarray, composite: np.ndarray) -> int:
    """effectiveness_score of configs `ids` = their latest window's composite (DESIGN.md
    §5.2), unchanged where that is undefined (NaN). Only changed configs are written, locked
    in id order first: update_columns' UPDATE … FROM unnest locks in scan order, a decision
    switching the learner's config (config_activate) in id order."""
    stored = field_arrays(
        StrategyConfig.objects.filter(AnyOf(F("id"), ids.tolist())),
        {"id": "int8", "effectiveness_score": "float8"},
    )
    order = np.argsort(stored["id"])
    position = np.searchsorted(stored["id"][order], ids)
    present = position < stored["id"].size
    present[present] = stored["id"][order][position[present]] == ids[present]
    current = np.full(ids.size, np.nan)
    current[present] = stored["effectiveness_score"][order][position[present]]
    effectiveness = np.where(np.isfinite(composite), composite, current)
    changed = present & ~_same(effectiveness, current)
    changed_ids = ids[changed].tolist()
    if changed_ids and connection.vendor == "postgresql":
        list(
            StrategyConfig.objects.filter(AnyOf(F("id"), changed_ids))
            .order_by("id")
            .select_for_update(no_key=True)
            .values_list("id", flat=True)
        )
    update_columns(
        StrategyConfig,
        changed_ids,
        {
            "effectiveness_score": [
                None if np.isnan(v) else v for v in effectiveness[changed].tolist()
            ]
        },
    )
    return len(changed_ids)
