from collections.abc import Iterable
from typing import Any

from django.db.models import Avg, Case, Count, FloatField, QuerySet, Value, When
from django_filters import FilterSet

from config.db import apply_filters
from logs.aggregates import PercentileCont
from logs.filters import (
    AuditEventFilter,
    PersonalizationLogFilter,
    RequestLogStatsFilter,
    TranslationLogFilter,
)
from logs.models import AuditEvent, PersonalizationLog, RequestLog, TranslationLog

REQUEST_LOG_KINDS: dict[str, tuple[type[RequestLog], type[FilterSet]]] = {
    "personalization": (PersonalizationLog, PersonalizationLogFilter),
    "translation": (TranslationLog, TranslationLogFilter),
}


def request_log_list(
    *, kind: str, owner: Any = None, filters: dict[str, Any] | None = None
) -> QuerySet[RequestLog]:
    """Request logs of one kind, newest first; only `owner`'s when one is given."""
    model, filterset_class = REQUEST_LOG_KINDS[kind]
    queryset = model._default_manager.order_by("-request_timestamp", "-id")
    if owner is not None:
        queryset = queryset.filter(user=owner)
    return apply_filters(filterset_class, filters, queryset)


def _share_with_status(status: str) -> Avg:
    return Avg(
        Case(When(status=status, then=Value(1.0)), default=Value(0.0), output_field=FloatField())
    )


def request_log_stats(*, kind: str, filters: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Per chapter: count, failure and timeout rates, p50 and p95 response time in ms.
    One GROUP BY query; the percentiles are computed by the database (PERCENTILE_CONT)."""
    model, _ = REQUEST_LOG_KINDS[kind]
    queryset = apply_filters(RequestLogStatsFilter, filters, model._default_manager.all())
    rows = (
        queryset.order_by()
        .values("chapter_id")
        .annotate(
            count=Count("id"),
            failure_rate=_share_with_status(RequestLog.Status.FAILURE),
            timeout_rate=_share_with_status(RequestLog.Status.TIMEOUT),
            p50_response_time_ms=PercentileCont("response_time_ms", 0.5),
            p95_response_time_ms=PercentileCont("response_time_ms", 0.95),
        )
        .order_by("chapter_id")
    )
    return list(rows)


def audit_event_list(*, filters: dict[str, Any] | None = None) -> QuerySet[AuditEvent]:
    queryset = AuditEvent.objects.select_related("actor").order_by("-created_at", "-id")
    return apply_filters(AuditEventFilter, filters, queryset)


def audit_system_target_ids(
    *, action: str, target_type: str, target_ids: Iterable[int | str]
) -> set[str]:
    """Which of `target_ids` have an event of `action` recorded without an actor, i.e. by
    Attune itself rather than by a person (e.g. what `manage.py seed` created)."""
    return set(
        AuditEvent.objects.filter(
            action=action,
            actor__isnull=True,
            target_type=target_type,
            target_id__in=[str(target_id) for target_id in target_ids],
        ).values_list("target_id", flat=True)
    )
