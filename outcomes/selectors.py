from typing import Any

from django.db.models import Q, QuerySet

from config.db import apply_filters
from outcomes.filters import EffectivenessFilter, OutcomeFilter
from outcomes.models import Effectiveness, Outcome


def outcome_list(*, owner: Any = None, filters: dict[str, Any] | None = None) -> QuerySet[Outcome]:
    queryset = Outcome.objects.order_by("-occurred_at", "-id")
    if owner is not None:
        queryset = queryset.filter(user=owner)
    return apply_filters(OutcomeFilter, filters, queryset)


def effectiveness_list(
    *, owner: Any = None, filters: dict[str, Any] | None = None
) -> QuerySet[Effectiveness]:
    """GLOBAL rows are for everyone; USER rows only for their user (all for staff)."""
    queryset = Effectiveness.objects.select_related("strategy").order_by(
        "-window_start", "scope", "strategy_id", "user_id"
    )
    if owner is not None:
        queryset = queryset.filter(Q(scope=Effectiveness.Scope.GLOBAL) | Q(user=owner))
    return apply_filters(EffectivenessFilter, filters, queryset)
