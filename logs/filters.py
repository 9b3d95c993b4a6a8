import django_filters

from config.api.filters import DateTimeFilter, IdFilter
from logs.models import AuditEvent, PersonalizationLog, RequestLog, TranslationLog


class RequestLogFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=RequestLog.Status.choices)
    chapter_id = django_filters.CharFilter()
    since = DateTimeFilter(field_name="request_timestamp", lookup_expr="gte")
    until = DateTimeFilter(field_name="request_timestamp", lookup_expr="lt")
    user = IdFilter(field_name="user_id")


class PersonalizationLogFilter(RequestLogFilter):
    class Meta:
        model = PersonalizationLog
        fields = ["status", "chapter_id", "since", "until", "user"]


class TranslationLogFilter(RequestLogFilter):
    target_language = django_filters.CharFilter()

    class Meta:
        model = TranslationLog
        fields = ["status", "chapter_id", "target_language", "since", "until", "user"]


class RequestLogStatsFilter(django_filters.FilterSet):
    """Applies to both log tables before aggregation."""

    since = DateTimeFilter(field_name="request_timestamp", lookup_expr="gte")
    until = DateTimeFilter(field_name="request_timestamp", lookup_expr="lt")
    chapter_id = django_filters.CharFilter()

    class Meta:
        model = PersonalizationLog
        fields = ["since", "until", "chapter_id"]


class AuditEventFilter(django_filters.FilterSet):
    actor = IdFilter(field_name="actor_id")
    action = django_filters.MultipleChoiceFilter(choices=AuditEvent.Action.choices)
    target_type = django_filters.CharFilter()
    target_id = django_filters.CharFilter()
    since = DateTimeFilter(field_name="created_at", lookup_expr="gte")
    until = DateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = AuditEvent
        fields = ["actor", "action", "target_type", "target_id", "since", "until"]
