"""Effectiveness windows (DESIGN.md §5.2).

One GROUP BY in SQL at the grain of (context, strategy, personalization applied, user,
window) gives n, Σ and the centred sum of squares (n·var_pop) per group. USER rows test those
outcomes directly (the outcome is the unit); GLOBAL rows take each learner's mean per metric
as one value (the learner is the unit: one learner's outcomes are not independent), all in
numpy for every group at once; rows go back by binary COPY.

The hourly run recomputes the GLOBAL rows of the windows holding outcomes committed since the
last run (a watermark that cannot skip a late commit, outcomes/watermarks.py), and the USER
rows only of the users with such outcomes (a user's USER rows depend on that user's outcomes
alone). Explicit windows are recomputed whole and leave the watermark alone."""

import datetime
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import (
    Count,
    ExpressionWrapper,
    F,
    FloatField,
    Q,
    QuerySet,
    Sum,
    Variance,
)
from django.utils import timezone

from config.db import serialized
from experiments.models import Context, Strategy, StrategyConfig
from outcomes.grouping import combine, joint_codes, take
from outcomes.models import SCORE_FIELDS, Effectiveness, Outcome
from outcomes.samples import learner_samples, outcome_samples, window_statistics
from outcomes.sql import (
    AnyOf,
    Codes,
    Labels,
    WindowIndex,
    field_arrays,
    insert_arrays,
    query_arrays,
    update_columns,
    work_mem,
)
from outcomes.watermarks import Span, span_begin, span_commit
from outcomes.windows import WINDOW_ORIGIN, window_bounds

LOCK = "outcomes.compute_effectiveness_windows"
# PostgreSQL memory for the GROUP BY (about 75 MB per million outcomes hashes in memory).
AGGREGATE_WORK_MEM_MB = 256
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
    outcomes/watermarks.py), with the users who sent them; every window and user on the
    first run."""
    window = WindowIndex("occurred_at", days=days)
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
        windows=set(pairs["k_window"].tolist()),
        everyone=False,
        pair_users=pairs["k_user"],
        pair_windows=pairs["k_window"],
    )


# --- Aggregation -----------------------------------------------------------------------------


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


def _in_windows(windows: set[int], days: int) -> Q:
    """occurred_at in any of the windows, adjacent windows merged into one range."""
    condition = Q()
    indexes = sorted(windows)
    while indexes:
        first = last = indexes.pop(0)
        while indexes and indexes[0] == last + 1:
            last = indexes.pop(0)
        start, end = window_bounds(first, days)[0], window_bounds(last, days)[1]
        condition |= Q(occurred_at__gte=start, occurred_at__lt=end)
    return condition


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
        outcomes = outcomes.filter(_in_windows({window}, days))
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


def _finite(columns: dict[str, Any]) -> dict[str, Any]:
    """±inf (a degenerate division) is stored as NULL, like NaN."""
    return {
        name: np.where(np.isfinite(v), v, np.nan)
        if isinstance(v, np.ndarray) and v.dtype.kind == "f"
        else v
        for name, v in columns.items()
    }


def _window_bounds(window: np.ndarray, days: int) -> tuple[np.ndarray, np.ndarray]:
    origin = np.datetime64(WINDOW_ORIGIN.replace(tzinfo=None), "us")
    length = np.timedelta64(days * 86400, "s").astype("timedelta64[us]")
    start = origin + window.astype(np.int64) * length
    return start, start + length


def global_rows(groups: Groups, baselines: np.ndarray, days: int, minimum: int) -> dict[str, Any]:
    """GLOBAL rows: per (context, strategy, window), the learners with personalized outcomes
    of the strategy against the learners with outcomes without personalization in the context
    and window, each learner one value (their mean). `groups` are at the user grain."""
    weights = settings.OUTCOME_REWARD_WEIGHTS
    g = groups
    personal = np.flatnonzero(g.applied & (g.strategy > 0) & ~np.isin(g.strategy, baselines))
    base = np.flatnonzero(~g.applied)
    # A learner's baseline outcomes may come from several strategies: one row per learner.
    (learner_codes,) = joint_codes([g.context[base], g.window[base], g.user[base]])
    _, learner_first, learner_measures = combine(learner_codes, g.measures[base])
    learners = base[learner_first]
    # Each personalized group row is one learner in one (context, strategy, window) sample.
    (p_codes,) = joint_codes([g.context[personal], g.window[personal], g.strategy[personal]])
    _, p_first, p_set = learner_samples(p_codes, g.measures[personal])
    rows = personal[p_first]  # one group row standing for each (context, strategy, window)
    b_codes, match = joint_codes(
        [g.context[learners], g.window[learners]], [g.context[rows], g.window[rows]]
    )
    b_keys, _, b_set = learner_samples(b_codes, learner_measures)
    start, end = _window_bounds(g.window[rows], days)
    return {
        "context": Labels(g.context[rows], CONTEXTS),
        "strategy": g.strategy[rows],
        "window_start": start,
        "window_end": end,
        **window_statistics(p_set, b_set.take(b_keys, match), minimum=minimum, weights=weights),
    }


def user_rows(
    groups: Groups,
    baselines: np.ndarray,
    selected: np.ndarray,
    configs: dict[str, np.ndarray],
    days: int,
    minimum: int,
) -> dict[str, Any]:
    """USER rows of the selected group rows: per user's config and window, the user's
    personalized outcomes of the strategy against the user's outcomes without
    personalization in the context and window (the outcome is the unit)."""
    weights = settings.OUTCOME_REWARD_WEIGHTS
    g = groups
    personal = selected & g.applied & (g.strategy > 0) & ~np.isin(g.strategy, baselines)
    base = np.flatnonzero(selected & ~g.applied)
    # Each personalized group row is one (context, strategy, user, window) already.
    personal = np.flatnonzero(personal)
    config_codes, personal_codes = joint_codes(
        [configs["user"], configs["strategy"]], [g.user[personal], g.strategy[personal]]
    )
    config = take(config_codes, configs["id"], personal_codes)
    rows = personal[config > 0]  # the user's strategy without a config has no USER row
    config = config[config > 0]
    b_codes, match = joint_codes(
        [g.context[base], g.user[base], g.window[base]],
        [g.context[rows], g.user[rows], g.window[rows]],
    )
    b_keys, _, b_measures = combine(b_codes, g.measures[base])
    start, end = _window_bounds(g.window[rows], days)
    return {
        "context": Labels(g.context[rows], CONTEXTS),
        "strategy": g.strategy[rows],
        "user": g.user[rows],
        "config": config,
        "window_start": start,
        "window_end": end,
        **window_statistics(
            outcome_samples(g.measures[rows]),
            outcome_samples(take(b_keys, b_measures, match)),
            minimum=minimum,
            weights=weights,
        ),
    }


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
    return [
        insert_arrays(
            Effectiveness,
            columns | {"scope": scope} | stamps,
            replace=None if work.everyone else constraints[scope],
        )
        for scope, columns in rows.items()
    ]


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
        in_windows = Outcome.objects.filter(_in_windows(work.windows, days))
        if work.everyone:
            # Everyone's groups serve both scopes: GLOBAL takes each learner's mean.
            by_user = aggregate(in_windows, days, by_user=True)
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
                in_windows.filter(AnyOf(F("user_id"), work.users)), days, by_user=True
            )
        baselines = np.array(
            list(Strategy.objects.filter(is_baseline=True).values_list("id", flat=True)),
            dtype=np.int64,
        )
        everyone = _finite(global_rows(by_strategy, baselines, days, minimum))
        mine = _finite(
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


def _same(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a == b) | (np.isnan(a) & np.isnan(b))


def config_scores_refresh(*, written: dict[str, Any], windows: set[int]) -> int:
    """For each config with USER rows `written` (the recomputed `windows`):
    effectiveness_score = its latest window's composite, unchanged where that is undefined
    (DESIGN.md §5.2). confidence_score is the §5.5 posterior, which the reward recompute
    keeps (outcomes.services.rewards). Only changed configs are written, locked in id order
    first."""
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
    stored = field_arrays(
        StrategyConfig.objects.filter(AnyOf(F("id"), touched)),
        {"id": "int8", "effectiveness_score": "float8"},
    )
    stored_effectiveness = take(stored["id"], stored["effectiveness_score"], latest["config_id"])
    composite = latest["composite_score"]
    effectiveness = np.where(np.isfinite(composite), composite, stored_effectiveness)
    changed = ~_same(effectiveness, stored_effectiveness)
    ids = latest["config_id"][changed].tolist()
    if ids and transaction.get_connection().vendor == "postgresql":
        # update_columns' UPDATE … FROM unnest locks rows in scan order; a decision switching
        # the learner's config (config_activate) locks them in id order. Taking the locks in
        # id order first, as every writer of configs does, rules out the deadlock.
        list(
            StrategyConfig.objects.filter(AnyOf(F("id"), ids))
            .order_by("id")
            .select_for_update(no_key=True)
            .values_list("id", flat=True)
        )
    update_columns(
        StrategyConfig,
        ids,
        {
            "effectiveness_score": [
                None if np.isnan(v) else v for v in effectiveness[changed].tolist()
            ]
        },
    )
    return len(ids)
