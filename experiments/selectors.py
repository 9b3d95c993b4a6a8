from typing import Any

from django.db.models import QuerySet

from config.db import apply_filters
from experiments.filters import (
    DecisionFilter,
    ExperimentFilter,
    StrategyConfigFilter,
    StrategyFilter,
)
from experiments.models import Decision, Experiment, Strategy, StrategyConfig


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
    queryset = Experiment.objects.prefetch_related("variants__strategy").order_by(
        "-created_at", "-id"
    )
    return apply_filters(ExperimentFilter, filters, queryset)


def decision_list(
    *, owner: Any = None, filters: dict[str, Any] | None = None
) -> QuerySet[Decision]:
    queryset = Decision.objects.select_related("strategy", "variant").order_by("-created_at", "-id")
    if owner is not None:
        queryset = queryset.filter(user=owner)
    return apply_filters(DecisionFilter, filters, queryset)
