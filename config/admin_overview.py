"""The admin index's overview panel (DESIGN.md §8): decisions and outcomes per day, the
active experiments with their readiness and warnings, what the holdouts measure
personalization to be worth, and each strategy's effectiveness over the windows.

Six queries whatever the amount of data: counts are grouped by day in SQL, experiments
carry their participant counts as an annotation, and the figures of the last evaluations are
read from the rows that cache them."""

import datetime
from collections import defaultdict
from typing import Any

from django.db.models import Count, QuerySet
from django.db.models.functions import TruncDate
from django.urls import reverse
from django.utils import timezone

from config import admin_format as fmt
from experiments import charts
from experiments.admin import holdout_worth
from experiments.admin_results import readiness_words
from experiments.models import Context, Decision, Experiment, Holdout
from outcomes.models import Effectiveness, Outcome

DAYS = 30
TREND_WINDOWS = 8
DAILY_COLORS = {"Decisions": charts.PALETTE[0], "Outcomes": charts.PALETTE[1]}


def _per_day(queryset: QuerySet[Any], field: str, since: datetime.datetime) -> dict[Any, int]:
    rows = (
        queryset.filter(**{f"{field}__gte": since})
        .annotate(day=TruncDate(field))
        .values("day")
        .annotate(n=Count("pk"))
        .order_by()
    )
    return {row["day"]: row["n"] for row in rows}


def daily_activity(*, now: datetime.datetime) -> dict[str, Any]:
    """Decisions and outcomes on each of the last DAYS days (today included)."""
    today = now.date()
    days = [today - datetime.timedelta(days=offset) for offset in range(DAYS - 1, -1, -1)]
    since = datetime.datetime.combine(days[0], datetime.time.min, tzinfo=datetime.UTC)
    decisions = _per_day(Decision.objects.all(), "created_at", since)
    outcomes = _per_day(Outcome.objects.all(), "occurred_at", since)
    series = {
        "Decisions": [float(decisions.get(day, 0)) for day in days],
        "Outcomes": [float(outcomes.get(day, 0)) for day in days],
    }
    return {
        "decisions": fmt.count(sum(decisions.values())),
        "outcomes": fmt.count(sum(outcomes.values())),
        "chart": charts.line_chart(
            [fmt.date(day).rsplit(" ", 1)[0] for day in days],
            series,
            colors=DAILY_COLORS,
            y_min=0.0,
            y_format=fmt.count,
            label="Decisions and outcomes per day",
        )
        if any(any(points) for points in series.values())
        else "",
    }


def _experiment_row(experiment: Experiment, *, now: datetime.datetime) -> dict[str, Any]:
    results = experiment.variant_metrics or {}
    names = {v["key"]: v.get("name") or v["key"] for v in results.get("variants", [])}
    participants = getattr(experiment, "participant_count", 0)
    days = (now - experiment.start_date).total_seconds() / 86400 if experiment.start_date else 0.0
    ready = participants >= experiment.min_participants and days >= experiment.min_duration_days
    readiness = readiness_words(
        participants, experiment.min_participants, days, experiment.min_duration_days
    )
    warnings = [fmt.p_values_in_text(str(w)) for w in results.get("warnings", [])]
    comparisons = [c for c in results.get("comparisons", []) if c.get("relative_lift") is not None]
    leader = ""
    if comparisons:
        best = max(comparisons, key=lambda c: c["relative_lift"])
        leader = (
            f"{names.get(best['variant'], best['variant'])} "
            f"{fmt.percent(best['relative_lift'], sign=True)} against control, "
            f"p {fmt.p_value(best.get('adjusted_p_value'))}"
        )
    winner = results.get("winner")
    return {
        "name": experiment.name,
        "url": reverse("admin:experiments_experiment_change", args=[experiment.pk]),
        "kind": f"{experiment.get_experiment_type_display()} · {experiment.get_context_display()}",
        "ready": ready,
        "readiness": readiness,
        "warnings": warnings,
        "leader": leader,
        "winner": names.get(winner, winner) if winner else "",
        "evaluated": fmt.moment(experiment.evaluated_at) if experiment.evaluated_at else "",
    }


def active_experiments(*, now: datetime.datetime) -> list[dict[str, Any]]:
    experiments = (
        Experiment.objects.filter(status=Experiment.Status.ACTIVE)
        .annotate(participant_count=Count("assignments"))
        .order_by("context", "name")
    )
    return [_experiment_row(experiment, now=now) for experiment in experiments]


def holdouts() -> list[dict[str, Any]]:
    return [
        {
            "name": holdout.name,
            "url": reverse("admin:experiments_holdout_change", args=[holdout.pk]),
            "covers": ", ".join(Context(c).label for c in holdout.contexts)
            if holdout.contexts
            else "every context",
            "percent": fmt.percent(holdout.percent, of_hundred=True),
            "worth": holdout_worth(holdout),
            "significant": bool((holdout.results or {}).get("significant")),
            "evaluated": fmt.moment(holdout.evaluated_at) if holdout.evaluated_at else "",
        }
        for holdout in Holdout.objects.filter(is_active=True).order_by("name")
    ]


def effectiveness_trend() -> list[dict[str, Any]]:
    """Per context, each strategy's composite score (50 = the baseline's level) over the
    last TREND_WINDOWS windows, everyone's rows (GLOBAL scope)."""
    starts = list(
        Effectiveness.objects.filter(scope=Effectiveness.Scope.GLOBAL)
        .order_by("-window_start")
        .values_list("window_start", flat=True)
        .distinct()[:TREND_WINDOWS]
    )[::-1]
    if not starts:
        return []
    rows = (
        Effectiveness.objects.filter(scope=Effectiveness.Scope.GLOBAL, window_start__in=starts)
        .order_by("context", "strategy_id", "window_start")
        .values("context", "strategy_id", "strategy__name", "window_start", "composite_score")
    )
    by_context: dict[str, dict[str, dict[datetime.datetime, float | None]]] = defaultdict(
        lambda: defaultdict(dict)
    )
    for row in rows:
        by_context[row["context"]][row["strategy__name"]][row["window_start"]] = row[
            "composite_score"
        ]
    labels = [fmt.date(start) for start in starts]
    panels = []
    for context in Context.values:
        strategies = by_context.get(context)
        if not strategies:
            continue
        series = {
            name: [points.get(start) for start in starts] for name, points in strategies.items()
        }
        latest = {
            name: next((v for v in reversed(values) if v is not None), None)
            for name, values in series.items()
        }
        panels.append(
            {
                "context": Context(context).label,
                "latest": [
                    {"strategy": name, "score": fmt.score(score)} for name, score in latest.items()
                ],
                "chart": charts.line_chart(
                    labels,
                    series,
                    colors=charts.variant_colors(list(series)),
                    y_min=0.0,
                    y_max=100.0,
                    reference=50.0,
                    y_format=fmt.score,
                    label=f"Effectiveness of the {Context(context).label} strategies",
                    height=200,
                ),
            }
        )
    return panels


def admin_overview(*, now: datetime.datetime | None = None) -> dict[str, Any]:
    now = now or timezone.now()
    return {
        "days": DAYS,
        "activity": daily_activity(now=now),
        "experiments": active_experiments(now=now),
        "holdouts": holdouts(),
        "effectiveness": effectiveness_trend(),
        "generated_at": fmt.moment(now),
    }
