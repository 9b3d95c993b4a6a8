"""Effectiveness windows (DESIGN.md §5.2): counts, sums and sums of squares per group in SQL,
the statistics of every group at once in numpy, each window's rows replaced in one
transaction."""

import datetime
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, Max, Q, Sum
from django.utils import timezone

from config.db import serialized
from experiments.models import Strategy, StrategyConfig
from outcomes import stats
from outcomes.models import SCORE_FIELDS, Effectiveness, Outcome
from outcomes.sql import WindowIndex, insert_columns, update_columns
from outcomes.windows import window_bounds

LOCK = "outcomes.compute_effectiveness_windows"
# Outcomes committed a little after a run started may carry an earlier created_at; looking
# back this far makes sure the next run sees them (recomputing is idempotent).
WATERMARK_OVERLAP = datetime.timedelta(minutes=15)
IMPROVEMENT_COLUMNS = {
    "retention_score": "retention_improvement",
    "performance_score": "performance_improvement",
    "completion_rate": "completion_rate_change",
    "engagement_score": "engagement_change",
}
# Aggregated columns per group, in this order.
MEASURES = ["reward", *SCORE_FIELDS]


def pending_windows(*, days: int) -> set[int]:
    """Windows holding outcomes stored since the last run (all windows on the first run)."""
    last = Effectiveness.objects.aggregate(last=Max("calculated_at"))["last"]
    outcomes = Outcome.objects.all()
    if last is not None:
        outcomes = outcomes.filter(created_at__gte=last - WATERMARK_OVERLAP)
    return set(
        outcomes.annotate(window=WindowIndex("occurred_at", days=days))
        .values_list("window", flat=True)
        .distinct()
        .order_by()
    )


def _in_windows(windows: Iterable[int], days: int) -> Q:
    condition = Q()
    for index in sorted(windows):
        start, end = window_bounds(index, days)
        condition |= Q(occurred_at__gte=start, occurred_at__lt=end)
    return condition


def _aggregate(outcomes: Any, keys: list[str], days: int) -> tuple[np.ndarray, np.ndarray]:
    """One GROUP BY over `keys` plus the window: per group n, Σ and Σ² of the reward and
    n and Σ of each score. Returns (key matrix, measure matrix)."""
    annotations: dict[str, Any] = {"n_reward": Count("reward")}
    for measure in MEASURES:
        annotations[f"s_{measure}"] = Sum(measure)
        if measure == "reward":
            annotations["ss_reward"] = Sum(F("reward") * F("reward"))
        else:
            annotations[f"n_{measure}"] = Count(measure)
    rows = list(
        outcomes.annotate(window=WindowIndex("occurred_at", days=days))
        .values(*keys, "window")
        .annotate(**annotations)
        .values_list(*keys, "window", *annotations)
        .order_by()
    )
    width = len(keys) + 1
    if not rows:
        return np.empty((0, width)), np.empty((0, len(annotations)))
    table = np.array(rows, dtype=object)
    key_matrix = table[:, :width]
    measures = table[:, width:].astype(float)
    return key_matrix, np.nan_to_num(measures)


@dataclass(frozen=True)
class GroupStats:
    """Per group: reward Samples and per-score means."""

    reward: stats.Samples
    score_means: dict[str, np.ndarray]


def _group_stats(measures: np.ndarray) -> GroupStats:
    # Columns as _aggregate orders them: n, Σ, Σ² of the reward, then Σ and n of each score.
    n, s_reward, ss_reward = measures[:, 0], measures[:, 1], measures[:, 2]
    score_means = {}
    column = 3
    for measure in SCORE_FIELDS:
        total, count = measures[:, column], measures[:, column + 1]
        with np.errstate(divide="ignore", invalid="ignore"):
            score_means[measure] = np.where(
                count > 0, total / np.where(count > 0, count, 1), np.nan
            )
        column += 2
    return GroupStats(stats.Samples(n=n, total=s_reward, total_sq=ss_reward), score_means)


def _rows_for_scope(
    *,
    scope: str,
    keys: np.ndarray,
    measures: np.ndarray,
    baselines: set[int],
    has_user: bool,
    days: int,
    now: datetime.datetime,
    configs: dict[tuple[Any, int], int],
    minimum: int,
) -> dict[str, list[Any]]:
    """Effectiveness rows of one scope, column-wise, from the grouped aggregates. Key
    columns: context, strategy_id, personalization_applied, [user_id], window."""
    if keys.shape[0] == 0:
        return {}
    context, strategy, applied = keys[:, 0], keys[:, 1], keys[:, 2].astype(bool)
    user = keys[:, 3] if has_user else np.zeros(keys.shape[0], dtype=object)
    window = keys[:, -1].astype(int)
    # The baseline sample of (context, [user], window): every outcome without personalization.
    base_key = [(c, u, w) for c, u, w in zip(context, user, window, strict=True)]
    base_index: dict[tuple[Any, Any, int], int] = {}
    for row, key in enumerate(base_key):
        if not applied[row]:
            base_index.setdefault(key, len(base_index))
    base_measures = np.zeros((len(base_index), measures.shape[1]))
    rows_without = np.flatnonzero(~applied)
    np.add.at(
        base_measures, [base_index[base_key[r]] for r in rows_without], measures[rows_without]
    )
    # The personalized samples: a non-baseline strategy, personalization applied.
    personal_rows = np.array(
        [
            r
            for r in range(keys.shape[0])
            if applied[r] and strategy[r] is not None and int(strategy[r]) not in baselines
        ],
        dtype=int,
    )
    if has_user and personal_rows.size:
        personal_rows = np.array(
            [r for r in personal_rows if (int(user[r]), int(strategy[r])) in configs], dtype=int
        )
    if personal_rows.size == 0:
        return {}
    personal = _group_stats(measures[personal_rows])
    empty = np.zeros(measures.shape[1])
    matched = np.array(
        [
            base_measures[base_index[base_key[r]]] if base_key[r] in base_index else empty
            for r in personal_rows
        ]
    )
    baseline = _group_stats(matched)
    welch = stats.welch_many(personal.reward, baseline.reward)
    correlation = stats.point_biserial_many(personal.reward, baseline.reward)
    improvements = {
        measure: stats.improvement_many(
            personal.score_means[measure], baseline.score_means[measure]
        )
        for measure in SCORE_FIELDS
    }
    composite = stats.composite_many(improvements, settings.OUTCOME_REWARD_WEIGHTS)
    n_p, n_b = personal.reward.n, baseline.reward.n
    significant = (correlation["p_value"] < 0.05) & (n_p >= minimum) & (n_b >= minimum)

    def nullable(array: np.ndarray) -> list[float | None]:
        return [float(v) if np.isfinite(v) else None for v in array]

    windows = window[personal_rows]
    bounds = {int(w): window_bounds(int(w), days) for w in set(windows.tolist())}
    strategies = [int(strategy[r]) for r in personal_rows]
    users = [int(user[r]) for r in personal_rows] if has_user else [None] * len(personal_rows)
    count = len(personal_rows)
    return {
        "scope": [scope] * count,
        "context": [str(context[r]) for r in personal_rows],
        "strategy": strategies,
        "user": users,
        "config": (
            [configs[(u, s)] for u, s in zip(users, strategies, strict=True)]
            if has_user
            else [None] * count
        ),
        "window_start": [bounds[int(w)][0] for w in windows],
        "window_end": [bounds[int(w)][1] for w in windows],
        "n_personalized": n_p.astype(int).tolist(),
        "n_baseline": n_b.astype(int).tolist(),
        "sample_size": (n_p + n_b).astype(int).tolist(),
        "mean_personalized": nullable(personal.reward.mean),
        "mean_baseline": nullable(baseline.reward.mean),
        "difference": nullable(welch["difference"]),
        "standard_error": nullable(welch["standard_error"]),
        "ci_lower": nullable(welch["ci_lower"]),
        "ci_upper": nullable(welch["ci_upper"]),
        "correlation": nullable(correlation["r"]),
        "p_value": nullable(correlation["p_value"]),
        "composite_score": nullable(composite),
        "is_statistically_significant": [bool(v) for v in significant],
        **{
            column: nullable(improvements[measure])
            for measure, column in IMPROVEMENT_COLUMNS.items()
        },
        "calculated_at": [now] * count,
        "created_at": [now] * count,
        "updated_at": [now] * count,
    }


def effectiveness_windows_compute(
    *, windows: set[int] | None = None, now: datetime.datetime | None = None
) -> dict[str, int]:
    """Recompute the given windows (default: those with outcomes stored since the last run)
    for GLOBAL and USER scope, replace their rows, then refresh the configs' scores."""
    days = settings.EFFECTIVENESS_WINDOW_DAYS
    minimum = settings.MIN_SAMPLE_SIZE
    now = now or timezone.now()
    with transaction.atomic():
        serialized(LOCK)
        windows = pending_windows(days=days) if windows is None else set(windows)
        if not windows:
            return {"windows": 0, "global": 0, "user": 0, "configs": 0}
        in_windows = Outcome.objects.filter(_in_windows(windows, days))
        baselines = set(Strategy.objects.filter(is_baseline=True).values_list("id", flat=True))

        global_keys, global_measures = _aggregate(
            in_windows, ["context", "strategy_id", "personalization_applied"], days
        )
        global_rows = _rows_for_scope(
            scope=Effectiveness.Scope.GLOBAL,
            keys=global_keys,
            measures=global_measures,
            baselines=baselines,
            has_user=False,
            days=days,
            now=now,
            configs={},
            minimum=minimum,
        )
        # USER scope only for users who allow behavioural analysis (DESIGN.md §3).
        consenting = in_windows.filter(user__behavioral_analysis_enabled=True)
        user_keys, user_measures = _aggregate(
            consenting, ["context", "strategy_id", "personalization_applied", "user_id"], days
        )
        user_ids = {int(u) for u in user_keys[:, 3]} if user_keys.shape[0] else set()
        configs = {
            (user_id, strategy_id): config_id
            for user_id, strategy_id, config_id in StrategyConfig.objects.filter(
                user_id__in=user_ids
            ).values_list("user_id", "strategy_id", "id")
        }
        user_rows = _rows_for_scope(
            scope=Effectiveness.Scope.USER,
            keys=user_keys,
            measures=user_measures,
            baselines=baselines,
            has_user=True,
            days=days,
            now=now,
            configs=configs,
            minimum=minimum,
        )
        starts = [window_bounds(index, days)[0] for index in windows]
        Effectiveness.objects.filter(window_start__in=starts).delete()
        written_global = insert_columns(Effectiveness, global_rows) if global_rows else 0
        written_user = insert_columns(Effectiveness, user_rows) if user_rows else 0
        updated = config_scores_refresh(config_ids=set(user_rows.get("config", [])))
    return {
        "windows": len(windows),
        "global": written_global,
        "user": written_user,
        "configs": updated,
    }


def config_scores_refresh(*, config_ids: set[Any]) -> int:
    """Each config's effectiveness_score = its latest window's composite; confidence_score =
    Φ(difference / se) from that USER row when both samples reach MIN_SAMPLE_SIZE, else from
    the GLOBAL row of the strategy and window, else unchanged (DESIGN.md §5.2)."""
    minimum = settings.MIN_SAMPLE_SIZE
    rows = (
        Effectiveness.objects.filter(scope=Effectiveness.Scope.USER, config_id__in=config_ids)
        .order_by("config_id", "-window_start")
        .values_list(
            "config_id",
            "strategy_id",
            "window_start",
            "composite_score",
            "difference",
            "standard_error",
            "n_personalized",
            "n_baseline",
        )
    )
    latest: dict[int, tuple[Any, ...]] = {}
    for row in rows:
        latest.setdefault(row[0], row)
    if not latest:
        return 0
    global_rows = {
        (strategy_id, start): (difference, se, n_p, n_b)
        for strategy_id, start, difference, se, n_p, n_b in Effectiveness.objects.filter(
            scope=Effectiveness.Scope.GLOBAL,
            window_start__in={row[2] for row in latest.values()},
        ).values_list(
            "strategy_id",
            "window_start",
            "difference",
            "standard_error",
            "n_personalized",
            "n_baseline",
        )
    }
    configs = {
        pk: (effectiveness, confidence)
        for pk, effectiveness, confidence in StrategyConfig.objects.filter(
            pk__in=list(latest)
        ).values_list("id", "effectiveness_score", "confidence_score")
    }
    changed: dict[int, tuple[float | None, float]] = {}
    for config_id, (_, strategy_id, start, composite, difference, se, n_p, n_b) in latest.items():
        stored_effectiveness, stored_confidence = configs[config_id]
        source = None
        if n_p >= minimum and n_b >= minimum and difference is not None and se is not None:
            source = (difference, se)
        else:
            fallback = global_rows.get((strategy_id, start))
            if (
                fallback
                and fallback[2] >= minimum
                and fallback[3] >= minimum
                and fallback[1] is not None
            ):
                source = (fallback[0], fallback[1])
        confidence = (
            float(stats.confidence_many(np.array([source[0]]), np.array([source[1]]))[0])
            if source
            else stored_confidence
        )
        effectiveness = composite if composite is not None else stored_effectiveness
        if (stored_effectiveness, stored_confidence) != (effectiveness, confidence):
            changed[config_id] = (effectiveness, confidence)
    ids = list(changed)
    update_columns(
        StrategyConfig,
        ids,
        {
            "effectiveness_score": [changed[i][0] for i in ids],
            "confidence_score": [changed[i][1] for i in ids],
        },
    )
    return len(changed)
