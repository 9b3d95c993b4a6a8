"""Outcomes grouped in SQL for the effectiveness windows (DESIGN.md §5.2): one GROUP BY at the
grain of (context, strategy, personalization applied, user, window) gives n, Σ and the centred
sum of squares (n·var_pop) per group, read back column-wise as numpy arrays."""

from dataclasses import dataclass
from typing import Any

import numpy as np
from django.db.models import Count, ExpressionWrapper, F, FloatField, QuerySet, Sum, Variance

from config.arrays import Codes, query_arrays
from experiments.models import Context
from outcomes.models import SCORE_FIELDS, Outcome
from outcomes.windows import WindowIndex, in_windows

CONTEXTS = list(Context.values)
# Grouped by the context itself (PostgreSQL knows its distinct values); its code is looked up
# on the grouped rows.
KEYS: dict[str, "str | Codes"] = {
    "k_context": Codes(CONTEXTS),
    "k_strategy": "int8",
    "k_applied": "bool",
    "k_user": "int8",
    "k_window": "int4",
}
# Per group, in this order: n, Σ and Σ(x − x̄)² of the reward, then Σ and n of each score.
MEASURES = {
    "n_reward": "int8",
    "s_reward": "float8",
    "m2_reward": "float8",
    **{
        f"{prefix}_{score}": kind
        for score in SCORE_FIELDS
        for prefix, kind in (("s", "float8"), ("n", "int8"))
    },
}


@dataclass(frozen=True)
class Groups:
    """Outcomes grouped by context code, strategy (0: none), applied, user and window; the
    measure matrix holds MEASURES column by column."""

    context: np.ndarray
    strategy: np.ndarray
    applied: np.ndarray
    user: np.ndarray
    window: np.ndarray
    measures: np.ndarray


def aggregate(
    outcomes: QuerySet[Outcome], days: int, *, by_user: bool, window: int | None = None
) -> Groups:
    """One GROUP BY over `outcomes` by context, strategy, applied, window and, `by_user`, the
    user (else user 0). With `window`, the outcomes are that window's and the GROUP BY has
    only plain columns, whose statistics let PostgreSQL plan a parallel aggregation."""
    sums: dict[str, Any] = {"n_reward": Count("reward"), "s_reward": Sum("reward")}
    # n·var_pop is the centred sum of squares, computed stably by the database
    # (Σx² − n·x̄² cancels for values far from zero).
    sums["m2_reward"] = ExpressionWrapper(
        Variance("reward", sample=False) * Count("reward"), output_field=FloatField()
    )
    for score in SCORE_FIELDS:
        sums[f"s_{score}"] = Sum(score)
        sums[f"n_{score}"] = Count(score)
    keys = {
        name: kind
        for name, kind in KEYS.items()
        if (by_user or name != "k_user") and (window is None or name != "k_window")
    }
    annotations: dict[str, Any] = {
        "k_context": F("context"),
        "k_strategy": F("strategy_id"),
        "k_applied": F("personalization_applied"),
        "k_user": F("user_id"),
        "k_window": WindowIndex("occurred_at", days=days),
    }
    if window is not None:
        outcomes = outcomes.filter(in_windows({window}, days))
    queryset = (
        outcomes.annotate(**{name: annotations[name] for name in keys})
        .values(*keys)
        .annotate(**sums)
        .order_by()
    )
    columns = query_arrays(queryset, keys | MEASURES)
    count = columns["k_strategy"].size
    return Groups(
        context=columns["k_context"],
        strategy=columns["k_strategy"],
        applied=columns["k_applied"],
        user=columns["k_user"] if by_user else np.zeros(count, dtype=np.int64),
        window=columns["k_window"] if window is None else np.full(count, window, dtype=np.int32),
        # A sum over no values is NULL in SQL and 0 here (its count says there were none).
        measures=np.nan_to_num(
            np.column_stack([columns[name].astype(float) for name in MEASURES]), nan=0.0
        )
        if count
        else np.empty((0, len(MEASURES))),
    )


def concatenate(groups: list[Groups]) -> Groups:
    return Groups(
        **{
            name: np.concatenate([getattr(g, name) for g in groups])
            for name in ("context", "strategy", "applied", "user", "window", "measures")
        }
    )
