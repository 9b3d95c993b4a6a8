"""Effectiveness windows (DESIGN.md §5.2): which windows and users to recompute, the run, and
the stored rows. The GROUP BY is outcomes.aggregation's, the rows' statistics
outcomes.effectiveness_rows'; rows go back by binary COPY.

The hourly run recomputes the GLOBAL rows of the windows holding outcomes committed since the
last run (a watermark that cannot skip a late commit, outcomes/watermarks.py), and the USER
rows only of the users with such outcomes (a user's USER rows depend on that user's outcomes
alone). Explicit windows are recomputed whole and leave the watermark alone.

Two changes leave no new row for the watermark to find: a merge moves a learner's outcomes to
another learner (an UPDATE) and an erasure deletes them (DESIGN.md §10). They mark their
windows stale (effectiveness_windows_mark_stale), and the next hourly run recomputes those
windows' GLOBAL rows and the survivor's USER rows in them as it does for new outcomes."""

import datetime
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import (
    F,
    QuerySet,
)
from django.utils import timezone

from config.arrays import (
    AnyOf,
    field_arrays,
    insert_arrays,
    query_arrays,
    work_mem,
)
from config.db import serialized
from experiments.models import Context, Strategy, StrategyConfig
from experiments.services.statistics import config_effectiveness_set
from outcomes.aggregation import Groups, aggregate, concatenate
from outcomes.effectiveness_rows import finite, global_rows, user_rows
from outcomes.grouping import joint_codes
from outcomes.models import Effectiveness, Outcome, Watermark
from outcomes.watermarks import Span, span_begin, span_commit
from outcomes.windows import WindowIndex, in_windows, window_bounds

LOCK = "outcomes.compute_effectiveness_windows"
# PostgreSQL memory for the GROUP BY (about 75 MB per million outcomes hashes in memory).
AGGREGATE_WORK_MEM_MB = 256
CONTEXTS = list(Context.values)
# Watermark rows of changes the watermark cannot see, one per change: `<STALE><key>`.
STALE = "outcomes.effectiveness.stale:"
# --- What to recompute --------------------------------------------------------------------


@dataclass(frozen=True)
class Work:
    """The windows to recompute; USER rows of every user in them, or (`everyone` False) only
    of the (user, window) pairs with new outcomes."""

    windows: set[int]
    everyone: bool = True
    pair_users: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    pair_windows: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))

    @property
    def users(self) -> list[int]:
        """The users with new outcomes (incremental runs)."""
        return np.unique(self.pair_users).tolist()


def pending_work(span: Span, *, days: int) -> Work:
    """Windows holding outcomes committed since the last run (the watermark of
    outcomes/watermarks.py) or marked stale since, with the users whose USER rows they
    change; every window and user on the first run. The stale marks are taken (deleted in
    the run's transaction, so a run that fails leaves them to the next)."""
    window = WindowIndex("occurred_at", days=days)
    stale_windows, stale_users, stale_pair_windows = _stale_marks_take()
    if span.first:
        windows = Outcome.objects.annotate(k_window=window).values_list("k_window", flat=True)
        return Work(windows=set(windows.distinct().order_by()))
    pairs = query_arrays(
        span.new_rows(Outcome.objects.all())
        .annotate(k_user=F("user_id"), k_window=window)
        .values("k_user", "k_window")
        .distinct()
        .order_by(),
        {"k_user": "int8", "k_window": "int4"},
    )
    return Work(
        windows=set(pairs["k_window"].tolist()) | stale_windows,
        everyone=False,
        pair_users=np.concatenate([pairs["k_user"], stale_users]),
        pair_windows=np.concatenate([pairs["k_window"], stale_pair_windows]),
    )


def effectiveness_windows_mark_stale(
    *, key: str, outcomes: QuerySet[Outcome], user_id: int | None = None
) -> int:
    """Have the next hourly run recompute the windows of `outcomes`: their GLOBAL rows, and
    `user_id`'s USER rows in them. Call in the transaction that moves `outcomes` to
    `user_id` (a merge) or deletes them (an erasure, `user_id` None), before the change.
    One Watermark row per change (`key`, e.g. "merged-<id>"), so a writer waits for no run
    and no other writer; returns the number of windows marked."""
    days = settings.EFFECTIVENESS_WINDOW_DAYS
    windows = sorted(
        outcomes.annotate(k_window=WindowIndex("occurred_at", days=days))
        .values_list("k_window", flat=True)
        .distinct()
        .order_by()
    )
    if not windows:
        return 0
    Watermark.objects.update_or_create(
        task=f"{STALE}{key}", defaults={"state": {"windows": windows, "user": user_id}}
    )
    return len(windows)


def effectiveness_erasure_mark(user: Any) -> int:
    """Before `user`'s outcomes are erased: the GLOBAL rows of their windows stop counting
    them at the next hourly run (registered as an erasure preparer)."""
    return effectiveness_windows_mark_stale(
        key=f"erased-{user.pk}", outcomes=Outcome.objects.filter(user=user.pk)
    )


def _stale_marks_take() -> tuple[set[int], np.ndarray, np.ndarray]:
    """The stale windows, and the (user, window) pairs whose USER rows they change, of the
    marks committed so far; the marks are deleted (a mark committed later stays)."""
    marks = list(Watermark.objects.filter(task__startswith=STALE).values_list("task", "state"))
    if not marks:
        return set(), np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int32)
    Watermark.objects.filter(task__in=[task for task, _ in marks]).delete()
    windows: set[int] = set()
    pairs: set[tuple[int, int]] = set()
    for _, state in marks:
        windows.update(state["windows"])
        if state.get("user") is not None:
            pairs.update((state["user"], window) for window in state["windows"])
    ordered = sorted(pairs)
    return (
        windows,
        np.array([user for user, _ in ordered], dtype=np.int64),
        np.array([window for _, window in ordered], dtype=np.int32),
    )


# --- The run ---------------------------------------------------------------------------------


def _user_selection(groups: Groups, work: Work) -> np.ndarray:
    """Group rows whose USER rows are recomputed: users who allow behavioural analysis
    (DESIGN.md §3), and in an incremental run only the (user, window) pairs with new
    outcomes."""
    withheld = field_arrays(
        get_user_model().objects.filter(behavioral_analysis_enabled=False), {"id": "int8"}
    )["id"]
    selected = ~np.isin(groups.user, withheld)
    if not work.everyone:
        group_codes, pair_codes = joint_codes(
            [groups.user, groups.window], [work.pair_users, work.pair_windows]
        )
        selected &= np.isin(group_codes, pair_codes)
    return selected


def _configs(work: Work) -> dict[str, np.ndarray]:
    """(id, user, strategy) of the configs whose USER rows may be recomputed."""
    configs = StrategyConfig.objects.filter(strategy__is_baseline=False)
    if not work.everyone:
        configs = configs.filter(AnyOf(F("user_id"), work.users))
    columns = field_arrays(configs, {"id": "int8", "user_id": "int8", "strategy_id": "int8"})
    return {"id": columns["id"], "user": columns["user_id"], "strategy": columns["strategy_id"]}


def _write(
    work: Work, days: int, stamps: dict[str, Any], rows: dict[str, dict[str, Any]]
) -> list[int]:
    """Store the rows of each scope. A whole recomputation replaces its windows' rows; an
    incremental one upserts (a user's samples only grow, so no USER row of theirs vanishes,
    and rows of other users stay as they are)."""
    if work.everyone:
        starts = [window_bounds(index, days)[0] for index in work.windows]
        Effectiveness.objects.filter(window_start__in=starts).delete()
    constraints: dict[str, str] = {
        Effectiveness.Scope.GLOBAL: "outcomes_effectiveness_global_window_unique",
        Effectiveness.Scope.USER: "outcomes_effectiveness_user_window_unique",
    }
    written = [
        insert_arrays(
            Effectiveness,
            columns | {"scope": scope} | stamps,
            replace=None if work.everyone else constraints[scope],
        )
        for scope, columns in rows.items()
    ]
    if not work.everyone:
        _vanished_global_rows_delete(work, days, rows[Effectiveness.Scope.GLOBAL])
    return written


def _vanished_global_rows_delete(work: Work, days: int, fresh: dict[str, Any]) -> int:
    """GLOBAL rows of the recomputed windows that the recomputation no longer yields: the
    last learner of their strategy in the window was erased (otherwise a window's samples
    only grow, and the upsert replaces every row)."""
    kept = set(zip(fresh["strategy"].tolist(), fresh["window_start"].tolist(), strict=True))
    stored = Effectiveness.objects.filter(
        scope=Effectiveness.Scope.GLOBAL,
        window_start__in=[window_bounds(index, days)[0] for index in work.windows],
    ).values_list("id", "strategy_id", "window_start")
    vanished = [
        pk
        for pk, strategy_id, start in stored
        if (strategy_id, start.astimezone(datetime.UTC).replace(tzinfo=None)) not in kept
    ]
    if not vanished:
        return 0
    deleted, _ = Effectiveness.objects.filter(pk__in=vanished).delete()
    return deleted


def effectiveness_windows_compute(
    *, windows: set[int] | None = None, now: datetime.datetime | None = None
) -> dict[str, int]:
    """Recompute the given windows whole, or by default what outcomes stored since the last run
    changed; replace those rows, then refresh the scores of the configs whose rows were
    written. USER rows of users who withdrew consent to behavioural analysis are deleted."""
    days = settings.EFFECTIVENESS_WINDOW_DAYS
    minimum = settings.MIN_SAMPLE_SIZE
    now = now or timezone.now()
    with transaction.atomic():
        serialized(LOCK)
        withdrawn, _ = Effectiveness.objects.filter(
            scope=Effectiveness.Scope.USER, user__behavioral_analysis_enabled=False
        ).delete()
        span = span_begin(LOCK, (Outcome._meta.db_table,)) if windows is None else None
        work = pending_work(span, days=days) if span else Work(windows=set(windows or ()))
        if span:
            span_commit(span)  # explicit windows leave the watermark where it is
        if not work.windows:
            return {"windows": 0, "global": 0, "user": 0, "configs": 0, "withdrawn": withdrawn}
        work_mem(AGGREGATE_WORK_MEM_MB)
        windowed = Outcome.objects.filter(in_windows(work.windows, days))
        if work.everyone:
            # Everyone's groups serve both scopes: GLOBAL takes each learner's mean.
            by_user = aggregate(windowed, days, by_user=True)
            by_strategy = by_user
        else:
            # GLOBAL needs every learner of the windows, USER only the users with new
            # outcomes: two GROUP BYs, the large one a window at a time.
            by_strategy = concatenate(
                [
                    aggregate(Outcome.objects.all(), days, by_user=True, window=window)
                    for window in sorted(work.windows)
                ]
            )
            by_user = aggregate(
                windowed.filter(AnyOf(F("user_id"), work.users)), days, by_user=True
            )
        baselines = np.array(
            list(Strategy.objects.filter(is_baseline=True).values_list("id", flat=True)),
            dtype=np.int64,
        )
        everyone = finite(global_rows(by_strategy, baselines, days, minimum))
        mine = finite(
            user_rows(
                by_user, baselines, _user_selection(by_user, work), _configs(work), days, minimum
            )
        )
        stamps = {"calculated_at": now, "created_at": now, "updated_at": now}
        written_global, written_user = _write(
            work,
            days,
            stamps,
            {Effectiveness.Scope.GLOBAL: everyone, Effectiveness.Scope.USER: mine},
        )
        updated = config_scores_refresh(written=mine, windows=work.windows)
    return {
        "windows": len(work.windows),
        "global": written_global,
        "user": written_user,
        "configs": updated,
        "withdrawn": withdrawn,
    }


LATEST_FIELDS = {
    "config_id": "int8",
    "strategy_id": "int8",
    "window_start": "timestamptz",
    "composite_score": "float8",
    "difference": "float8",
    "standard_error": "float8",
    "n_personalized": "int8",
    "n_baseline": "int8",
}


def _latest_per_config(rows: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    order = np.lexsort((rows["window_start"], rows["config_id"]))
    config = rows["config_id"][order]
    last = order[np.r_[config[1:] != config[:-1], True]] if config.size else order
    return {name: values[last] for name, values in rows.items()}


def config_scores_refresh(*, written: dict[str, Any], windows: set[int]) -> int:
    """For each config with USER rows `written` (the recomputed `windows`):
    effectiveness_score = its latest window's composite, unchanged where that is undefined
    (DESIGN.md §5.2), written by the experiments app. confidence_score is the §5.5
    posterior, which the reward recompute keeps (outcomes.services.rewards)."""
    days = settings.EFFECTIVENESS_WINDOW_DAYS
    if not written["config"].size:
        return 0
    latest = _latest_per_config(
        {
            "config_id": written["config"],
            "strategy_id": written["strategy"],
            **{name: np.asarray(written[name]) for name in list(LATEST_FIELDS)[2:]},
        }
    )
    touched = latest["config_id"].tolist()
    contexts = sorted({CONTEXTS[code] for code in np.unique(written["context"].codes).tolist()})
    # A later window of a config may be stored without being recomputed now (the (context,
    # window_start) index finds the rows after the earliest latest window).
    later = field_arrays(
        Effectiveness.objects.filter(
            scope=Effectiveness.Scope.USER,
            context__in=contexts,
            window_start__gt=latest["window_start"].min().item().replace(tzinfo=datetime.UTC),
        )
        .filter(AnyOf(F("config_id"), touched))
        .exclude(window_start__in=[window_bounds(i, days)[0] for i in windows]),
        LATEST_FIELDS,
    )
    if later["config_id"].size:
        latest = _latest_per_config(
            {name: np.concatenate([latest[name], later[name]]) for name in LATEST_FIELDS}
        )
    return config_effectiveness_set(ids=latest["config_id"], composite=latest["composite_score"])
