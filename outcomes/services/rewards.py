"""Per-config bandit statistics from the raw rows, incrementally (DESIGN.md §6): the decisions
and outcomes committed since the last run (the watermark of outcomes/watermarks.py) are
grouped by config and added to the stored figures, so a run costs what arrived, not the
history; a rebuild (`--all`, and the first run) groups every row the run's snapshot sees and
adds back each config's purged decisions. The experiments app writes the figures and then the
§5.5 confidence of every learner whose figures changed."""

from typing import Any

import numpy as np
from django.db import transaction
from django.db.models import Count, F, QuerySet, Sum

from config.arrays import Codes, query_arrays
from config.db import serialized
from experiments.models import Decision
from experiments.services.statistics import (
    RewardFigures,
    config_confidence_refresh,
    config_rewards_apply,
    drifted_contexts_refresh,
)
from outcomes.models import Outcome
from outcomes.watermarks import Span, span_begin, span_commit

LOCK = "outcomes.recompute_bandit_rewards"
TABLES = ("experiments_decision", "outcomes_outcome")


def bandit_rewards_recompute(*, rebuild: bool = False) -> dict[str, int]:
    """times_selected = decisions that chose the config (with those purged since);
    times_rewarded, total_reward, total_reward_sq and avg_reward = count, sums and mean of the
    rewards of outcomes attributed to it. By default from the rows committed since the last
    run, added to the stored figures; `rebuild` (and the first run) from every row. Grouped
    by the database, serialised by an advisory lock, written by the experiments app. Then the
    §5.5 confidence of those learners, and (in a transaction of its own) of every learner of
    a context whose population model moved."""
    with transaction.atomic():
        serialized(LOCK)
        span = span_begin(LOCK, TABLES)
        whole = rebuild or span.first
        figures = _reward_figures(span, whole=whole)
        rewritten = config_rewards_apply(figures=figures, replace=whole)
        span_commit(span)
        rescored = config_confidence_refresh(users=sorted(set(rewritten))) if rewritten else 0
    if rewritten:
        with transaction.atomic():
            serialized(LOCK)
            rescored += drifted_contexts_refresh()
    return {"configs": int(figures.ids.size), "updated": len(rewritten), "rescored": rescored}


def _grouped(queryset: QuerySet[Any], sums: dict[str, Any]) -> dict[str, np.ndarray]:
    kinds: dict[str, str | Codes] = {"k_config": "int8"}
    kinds.update({name: "float8" if name.startswith("s_") else "int8" for name in sums})
    return query_arrays(
        queryset.filter(config_id__isnull=False)
        .annotate(k_config=F("config_id"))
        .values("k_config")
        .annotate(**sums)
        .order_by(),
        kinds,
    )


def _reward_figures(span: Span, *, whole: bool) -> RewardFigures:
    """Two GROUP BYs by config, of the decisions and of the outcomes the span names (new
    since the last run, or every row seen), merged by config id."""
    pick = span.seen_rows if whole else span.new_rows
    chosen = _grouped(pick(Decision.objects.all()), {"n_selected": Count("id")})
    rewarded = _grouped(
        pick(Outcome.objects.all()),
        {
            "n_rewarded": Count("id"),
            "s_total": Sum("reward"),
            "s_total_sq": Sum(F("reward") * F("reward")),
        },
    )
    ids = np.union1d(chosen["k_config"], rewarded["k_config"])

    def spread(columns: dict[str, np.ndarray], name: str, kind: type) -> np.ndarray:
        result: np.ndarray = np.zeros(ids.size, dtype=kind)
        result[np.searchsorted(ids, columns["k_config"])] = columns[name]
        return result

    return RewardFigures(
        ids=ids,
        selected=spread(chosen, "n_selected", np.int64),
        rewarded=spread(rewarded, "n_rewarded", np.int64),
        total=np.nan_to_num(spread(rewarded, "s_total", np.float64)),
        total_sq=np.nan_to_num(spread(rewarded, "s_total_sq", np.float64)),
    )
