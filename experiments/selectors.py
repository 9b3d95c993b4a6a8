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
