import datetime
from typing import Any

from django.db.models import Prefetch, QuerySet

from config.db import apply_filters
from experiments.filters import (
    DecisionFilter,
    ExperimentFilter,
    StrategyConfigFilter,
    StrategyFilter,
)
from experiments.models import (
    Decision,
    Experiment,
    Strategy,
    StrategyConfig,
    Variant,
    WebhookDelivery,
    WebhookEndpoint,
)


def strategy_list(*, filters: dict[str, Any] | None = None) -> QuerySet[Strategy]:
    return apply_filters(StrategyFilter, filters, Strategy.objects.order_by("context", "key"))


def config_list(
    *, owner: Any = None, filters: dict[str, Any] | None = None
) -> QuerySet[StrategyConfig]:
    queryset = StrategyConfig.objects.select_related("strategy").order_by(
        "context", "strategy__key"
    )
    if owner is not None:
        queryset = queryset.filter(user=owner)
    return apply_filters(StrategyConfigFilter, filters, queryset)


def experiment_list(*, filters: dict[str, Any] | None = None) -> QuerySet[Experiment]:
    """Newest first, with what the serializer names: the winner (joined) and the variants
    with their strategies (one prefetch), so a page costs the same queries at any length."""
    queryset = (
        Experiment.objects.select_related("winning_variant")
        .prefetch_related(Prefetch("variants", queryset=Variant.objects.select_related("strategy")))
        .order_by("-created_at", "-id")
    )
    return apply_filters(ExperimentFilter, filters, queryset)


def decision_list(
    *, owner: Any = None, filters: dict[str, Any] | None = None
) -> QuerySet[Decision]:
    queryset = Decision.objects.select_related("strategy", "variant").order_by("-created_at", "-id")
    if owner is not None:
        queryset = queryset.filter(user=owner)
    return apply_filters(DecisionFilter, filters, queryset)


def experiment_results_display(experiment: Experiment) -> dict[str, Any]:
    """What the admin shows of the last evaluation (cached on the experiment by the
    outcomes app): tables, an interval chart of the variant means and, for bandits, the
    allocation over time."""
    from math import sqrt

    from scipy import stats as scipy_stats

    from experiments import charts
    from experiments.models import BanditWeightSnapshot

    results = experiment.variant_metrics or {}
    intervals = []
    variants = []
    for variant in results.get("variants", []):
        n, mean, variance = (
            variant.get("with_outcomes", 0),
            variant.get("mean"),
            variant.get("variance"),
        )
        low = high = None
        if mean is not None and variance is not None and n >= 2:
            half = float(scipy_stats.t.ppf(0.975, n - 1)) * sqrt(variance / n)
            low, high = mean - half, mean + half
            intervals.append(
                charts.Interval(
                    label=f"{variant['key']} (n={n})",
                    mean=mean,
                    low=low,
                    high=high,
                    highlight=variant.get("is_control", False),
                )
            )
        variants.append({**variant, "ci_low": low, "ci_high": high})
    # The newest 500 reweightings, oldest first on the chart (the oldest 500 would freeze
    # the chart about five days into a bandit reweighted every 15 minutes).
    snapshots = list(
        BanditWeightSnapshot.objects.filter(experiment=experiment).order_by("-computed_at")[:500]
    )[::-1]
    allocation = ""
    if snapshots:
        keys = sorted({key for s in snapshots for key in s.weights})
        allocation = charts.allocation_chart(
            [f"{s.computed_at:%Y-%m-%d %H:%M}" for s in snapshots],
            {key: [float(s.weights.get(key, 0.0)) for s in snapshots] for key in keys},
        )
    return {
        "evaluated_at": results.get("evaluated_at"),
        "primary_metric": results.get("primary_metric", experiment.primary_metric),
        "variants": variants,
        "comparisons": results.get("comparisons", []),
        "sample_ratio": results.get("sample_ratio", {}),
        "readiness": results.get("readiness", {}),
        "winner": results.get("winner"),
        "winner_reason": results.get("winner_reason", ""),
        "method": results.get("method", {}),
        "cuped": results.get("cuped", {}),
        "warnings": results.get("warnings", []),
        "means_chart": charts.interval_chart(intervals),
        "allocation_chart": allocation,
        "namespace_chart": namespace_chart(experiment),
    }


def namespace_chart(experiment: Experiment) -> str:
    """The experiment's context's namespace: the ACTIVE experiments' ranges, and this one's
    (highlighted) whatever its status."""
    from experiments import charts

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


def webhook_endpoint_list() -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.order_by("-created_at", "-id")


def webhook_delivery_list(*, endpoint: WebhookEndpoint | None = None) -> QuerySet[WebhookDelivery]:
    """Newest first."""
    queryset = WebhookDelivery.objects.select_related("endpoint").order_by("-created_at", "-id")
    if endpoint is not None:
        queryset = queryset.filter(endpoint=endpoint)
    return queryset


def webhook_delivery_due_ids(*, now: datetime.datetime, limit: int) -> list[int]:
    """PENDING deliveries whose next attempt has come, longest-due first (the partial index
    exp_webhook_due_idx); deliveries of deactivated endpoints wait until it is active again."""
    return list(
        WebhookDelivery.objects.filter(
            status=WebhookDelivery.Status.PENDING,
            next_attempt_at__lte=now,
            endpoint__is_active=True,
        )
        .order_by("next_attempt_at", "id")
        .values_list("id", flat=True)[:limit]
    )
