"""An experiment's results as the admin page shows them (DESIGN.md §5.3, §8): the last
evaluation (cached on the experiment by the outcomes app) in tables of formatted figures and
sentences, and SVG charts in which each variant keeps its colour. Read-only; used by the
admin alone."""

import datetime
from math import sqrt
from typing import Any

from django.utils import timezone
from scipy import stats as scipy_stats

from config import admin_format as fmt
from experiments import charts
from experiments.models import BanditWeightSnapshot, Experiment, Variant
from experiments.services.experiments import readiness

# The newest reweightings on the allocation chart, oldest first (the oldest 500 would freeze
# the chart about five days into a bandit reweighted every 15 minutes).
ALLOCATION_SNAPSHOTS = 500
WINNER_CHANCE = 0.95


def variant_order(experiment: Experiment) -> list[Variant]:
    """The experiment's variants in their stable order: control first, then as declared
    (the service stores them in the order given, so by id)."""
    return list(experiment.variants.order_by("-is_control", "pk"))


def experiment_colors(experiment: Experiment) -> dict[str, str]:
    """Variant key → colour, the same on every chart of the experiment."""
    return charts.variant_colors([v.key for v in variant_order(experiment)])


def _t_interval(mean: Any, variance: Any, n: int) -> tuple[float | None, float | None]:
    if mean is None or variance is None or n < 2:
        return None, None
    half = float(scipy_stats.t.ppf(0.975, n - 1)) * sqrt(variance / n)
    return mean - half, mean + half


def _readiness_text(experiment: Experiment, now: datetime.datetime) -> tuple[bool, str]:
    if experiment.status == Experiment.Status.COMPLETED:
        return True, f"Completed on {fmt.date(experiment.completed_at)}."
    if experiment.start_date is None:
        return False, "Not started."
    ready = readiness(experiment, now=now)
    progress = readiness_words(
        ready["participants"],
        experiment.min_participants,
        ready["days_running"],
        experiment.min_duration_days,
    )
    if ready["ready"]:
        return True, f"Ready to complete: {progress}."
    return False, f"Not ready yet: {progress}."


def readiness_words(participants: int, needed: int, days: float, needed_days: float) -> str:
    """`119 participants (20 needed), running 6 weeks (2 weeks needed)`."""
    return (
        f"{fmt.count(participants)} participants ({fmt.count(needed)} needed), "
        f"running {fmt.days(days)} ({fmt.days(needed_days)} needed)"
    )


def _sample_ratio_text(experiment: Experiment, sample_ratio: dict[str, Any]) -> tuple[bool, str]:
    """(healthy, sentence)."""
    if experiment.is_bandit:
        return True, "Not checked: a bandit moves its allocation by design."
    p = sample_ratio.get("p_value")
    if p is None:
        return True, "Not checked yet: too few assignments."
    if sample_ratio.get("mismatch"):
        return False, (
            f"Mismatch: the assignment counts differ from the weights (χ² p = {fmt.p_value(p)}). "
            "Check the assignment before trusting these results."
        )
    return True, f"Assignments follow the weights (χ² p = {fmt.p_value(p)})."


def _verdict(row: dict[str, Any], alpha: float, bayesian: bool) -> str:
    if bayesian:
        chance = row.get("chance_to_win")
        if chance is None:
            return "Not measurable yet"
        if chance >= WINNER_CHANCE:
            return "Likely better than control"
        if chance <= 1 - WINNER_CHANCE:
            return "Likely worse than control"
        return "No clear difference yet"
    p = row.get("adjusted_p_value")
    if p is None:
        return "Not measurable yet"
    if p < alpha:
        return "Better than control" if (row.get("difference") or 0) > 0 else "Worse than control"
    return "No clear difference yet"


def _why(results: dict[str, Any], names: dict[str, str], alpha: float, bayesian: bool) -> str:
    """The winner, or why there is none, in words and formatted figures."""
    comparisons = results.get("comparisons") or []
    if not comparisons:
        return "There is no treatment to compare with the control."
    winner = results.get("winner")
    if bayesian:
        defined = [c for c in comparisons if c.get("chance_to_win") is not None]
        if not defined:
            return "No treatment has outcomes from two or more learners beside the control yet."
        best = next((c for c in defined if c["variant"] == winner), None) or max(
            defined, key=lambda c: c["chance_to_win"]
        )
        chance, risk = fmt.probability(best["chance_to_win"]), fmt.percent(best.get("risk"))
        name = names.get(best["variant"], best["variant"])
        if winner:
            return (
                f"{name} wins: a {chance} chance to beat the control, with an expected loss "
                f"of {risk} of the control mean."
            )
        return (
            f"No treatment has both a {fmt.probability(WINNER_CHANCE)} chance to win and a "
            f"small enough risk yet: the best is {name}, {chance}, risk {risk}."
        )
    defined = [c for c in comparisons if c.get("adjusted_p_value") is not None]
    if not defined:
        return (
            "No treatment can be tested yet: each side needs outcomes from two or more "
            "learners with some spread."
        )
    best = next((c for c in defined if c["variant"] == winner), None) or min(
        defined, key=lambda c: c["adjusted_p_value"]
    )
    name = names.get(best["variant"], best["variant"])
    lift = fmt.percent(best.get("relative_lift"), sign=True)
    interval = fmt.percent_interval(best.get("lift_ci_lower"), best.get("lift_ci_upper"))
    p = fmt.p_value(best["adjusted_p_value"])
    if winner:
        return f"{name} beats the control: lift {lift} {interval}, p {_p_phrase(p)}."
    return (
        f"No treatment beats the control at α = {fmt.number(alpha)} yet: the closest is "
        f"{name}, lift {lift} {interval}, p {_p_phrase(p)}."
    )


def _p_phrase(formatted: str) -> str:
    return formatted if formatted.startswith(("<", ">")) else f"= {formatted}"


def _method_text(results: dict[str, Any]) -> dict[str, str]:
    method = results.get("method") or {}
    cuped = results.get("cuped") or {}
    if cuped.get("applied"):
        cuped_text = f"variance reduced by {fmt.percent(cuped.get('variance_reduction'))}"
    elif cuped.get("enabled"):
        cuped_text = f"not applied ({cuped.get('reason') or 'no pre-period data'})"
    else:
        cuped_text = "off"
    return {
        "description": str(method.get("description", "")),
        "engine": str(method.get("engine", "")).lower(),
        "analysis": str(method.get("analysis", "")).lower(),
        "estimator": str(method.get("estimator", "")),
        "multiple_comparisons": str(method.get("multiple_comparisons", "")),
        "cuped": cuped_text,
    }


def _allocation_chart(experiment: Experiment, order: list[Variant]) -> str:
    snapshots = list(
        BanditWeightSnapshot.objects.filter(experiment=experiment).order_by("-computed_at")[
            :ALLOCATION_SNAPSHOTS
        ]
    )[::-1]
    if not snapshots:
        return ""
    known = [v.key for v in order]
    # Keys of variants that no longer exist go last, in the order they first appear.
    extra = list(dict.fromkeys(k for s in snapshots for k in s.weights if k not in known))
    keys = [k for k in known if any(k in s.weights for s in snapshots)] + extra
    return charts.allocation_chart(
        [fmt.moment(s.computed_at) for s in snapshots],
        {key: [float(s.weights.get(key, 0.0)) for s in snapshots] for key in keys},
        colors=charts.variant_colors(known + extra),
        labels={v.key: v.name or v.key for v in order},
    )


def namespace_chart(experiment: Experiment) -> str:
    """The experiment's context's namespace: the ACTIVE experiments' ranges, and this one's
    (highlighted) whatever its status."""
    others = Experiment.objects.filter(
        context=experiment.context, status=Experiment.Status.ACTIVE
    ).exclude(pk=experiment.pk)
    spans = [
        charts.Span(e.name, e.namespace_start, e.namespace_end)
        for e in others.order_by("namespace_start")
    ]
    spans.append(
        charts.Span(
            f"{experiment.name} ({experiment.get_status_display().lower()})",
            experiment.namespace_start,
            experiment.namespace_end,
            highlight=True,
        )
    )
    return charts.namespace_chart(sorted(spans, key=lambda s: (s.start, s.highlight)))


def experiment_results_view(
    experiment: Experiment, *, now: datetime.datetime | None = None
) -> dict[str, Any]:
    """Everything the results panel shows, formatted: a handful of queries whatever the
    number of learners."""
    now = now or timezone.now()
    results = experiment.variant_metrics or {}
    order = variant_order(experiment)
    colors = charts.variant_colors([v.key for v in order])
    position = {v.key: i for i, v in enumerate(order)}
    names = {v.key: v.name or v.key for v in order}
    alpha = float((results.get("method") or {}).get("alpha", experiment.alpha))
    bayesian = (results.get("method") or {}).get("engine") == Experiment.Engine.BAYESIAN
    stored = sorted(
        results.get("variants", []), key=lambda v: position.get(v["key"], len(position))
    )
    total_weight = sum(float(v.get("weight") or 0) for v in stored) or None

    variants: list[dict[str, Any]] = []
    intervals: list[charts.Interval] = []
    for row in stored:
        key = row["key"]
        color = colors.get(key, charts.PALETTE[len(variants) % len(charts.PALETTE)])
        n = int(row.get("with_outcomes") or 0)
        low, high = _t_interval(row.get("mean"), row.get("variance"), n)
        name = names.get(key, row.get("name") or key)
        variants.append(
            {
                "key": key,
                "name": name,
                "color": color,
                "is_control": bool(row.get("is_control")),
                "assigned": fmt.count(row.get("assigned")),
                "with_outcomes": fmt.count(n),
                "mean": fmt.plus_minus(row.get("mean"), low, high),
                "interval": fmt.interval(low, high),
                "share": fmt.percent(float(row.get("weight") or 0) / total_weight)
                if total_weight
                else fmt.UNDEFINED,
            }
        )
        if low is not None and high is not None:
            intervals.append(
                charts.Interval(
                    label=f"{name} (n = {fmt.count(n)})",
                    mean=row["mean"],
                    low=low,
                    high=high,
                    highlight=bool(row.get("is_control")),
                    color=color,
                )
            )

    comparisons: list[dict[str, Any]] = []
    lifts: list[charts.Interval] = []
    for row in sorted(
        results.get("comparisons", []),
        key=lambda c: position.get(c["variant"], len(position)),
    ):
        key = row["variant"]
        color = colors.get(key, charts.PALETTE[0])
        comparisons.append(
            {
                "name": names.get(key, key),
                "color": color,
                "difference": fmt.number(row.get("difference"), sign=True),
                "difference_interval": fmt.interval(
                    row.get("ci_lower"), row.get("ci_upper"), sign=True
                ),
                "lift": fmt.percent(row.get("relative_lift"), sign=True),
                "lift_interval": fmt.percent_interval(
                    row.get("lift_ci_lower"), row.get("lift_ci_upper")
                ),
                "p_value": fmt.p_value(row.get("p_value")),
                "adjusted_p_value": fmt.p_value(row.get("adjusted_p_value")),
                "chance_to_beat_control": fmt.probability(row.get("chance_to_beat_control")),
                "chance_to_win": fmt.probability(row.get("chance_to_win")),
                "risk": fmt.percent(row.get("risk")),
                "credible_interval": fmt.percent_interval(
                    row.get("credible_lower"), row.get("credible_upper")
                ),
                "verdict": _verdict(row, alpha, bayesian),
            }
        )
        lift, lift_low, lift_high = (
            row.get("relative_lift"),
            row.get("lift_ci_lower"),
            row.get("lift_ci_upper"),
        )
        if lift is not None and lift_low is not None and lift_high is not None:
            lifts.append(
                charts.Interval(
                    label=names.get(key, key), mean=lift, low=lift_low, high=lift_high, color=color
                )
            )

    ready, readiness_text = _readiness_text(experiment, now)
    srm_ok, srm_text = _sample_ratio_text(experiment, results.get("sample_ratio") or {})
    winner = results.get("winner")
    evaluated_at = experiment.evaluated_at
    metric = results.get("primary_metric", experiment.primary_metric)
    return {
        "evaluated": bool(stored),
        "evaluated_at": fmt.moment(evaluated_at) if evaluated_at else "",
        "evaluated_ago": fmt.duration(now - evaluated_at) if evaluated_at else "",
        "primary_metric": Experiment.Metric(metric).label
        if metric in Experiment.Metric.values
        else str(metric),
        "ready": ready,
        "readiness": readiness_text,
        "sample_ratio_ok": srm_ok,
        "sample_ratio": srm_text,
        "winner": names.get(winner, winner) if winner else "",
        "why": _why(results, names, alpha, bayesian) if stored else "",
        "method": _method_text(results),
        "warnings": [fmt.p_values_in_text(str(w)) for w in results.get("warnings", [])],
        "bayesian": bayesian,
        "adjusted": (results.get("method") or {}).get("multiple_comparisons") == "Holm",
        "variants": variants,
        "comparisons": comparisons,
        "colors": colors,
        "means_chart": charts.interval_chart(intervals),
        "lift_chart": charts.interval_chart(
            lifts, as_percent=True, reference=0.0, label="Lift against control, 95% intervals"
        ),
        "allocation_chart": _allocation_chart(experiment, order) if experiment.is_bandit else "",
        "namespace_chart": namespace_chart(experiment),
    }
