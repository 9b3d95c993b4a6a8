from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api.permissions import IsStaff, owner_scope
from logs import selectors, services
from logs.api import serializers
from logs.filters import AuditEventFilter, PersonalizationLogFilter, TranslationLogFilter


class _RequestLogViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The caller's own request logs, newest first (staff see everyone's). POST records one."""

    kind: str
    input_serializer_class: type[serializers.RequestLogInputSerializer]
    create_service: Any

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return selectors.request_log_list(kind=self.kind).none()
        return selectors.request_log_list(kind=self.kind, owner=owner_scope(self.request))

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        payload = self.input_serializer_class(data=request.data)
        payload.is_valid(raise_exception=True)
        entry = self.create_service(user=request.user, **payload.validated_data)
        return Response(self.get_serializer(entry).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["logs"])
class PersonalizationLogViewSet(_RequestLogViewSet):
    kind = "personalization"
    serializer_class = serializers.PersonalizationLogOutputSerializer
    input_serializer_class = serializers.RequestLogInputSerializer
    create_service = staticmethod(services.personalization_log_create)
    filterset_class = PersonalizationLogFilter

    @extend_schema(request=serializers.RequestLogInputSerializer)
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().create(request, *args, **kwargs)


@extend_schema(tags=["logs"])
class TranslationLogViewSet(_RequestLogViewSet):
    kind = "translation"
    serializer_class = serializers.TranslationLogOutputSerializer
    input_serializer_class = serializers.TranslationLogInputSerializer
    create_service = staticmethod(services.translation_log_create)
    filterset_class = TranslationLogFilter

    @extend_schema(request=serializers.TranslationLogInputSerializer)
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().create(request, *args, **kwargs)


@extend_schema(tags=["logs"])
class RequestLogStatsView(APIView):
    """Per chapter, for each kind of request log: count, failure and timeout rates, and the
    p50 and p95 response time. Filters `since`, `until` (ISO 8601) and `chapter_id`."""

    permission_classes = [IsStaff]

    @extend_schema(responses=serializers.RequestLogStatsSerializer)
    def get(self, request: Request) -> Response:
        filters = request.query_params
        data = {
            kind: selectors.request_log_stats(kind=kind, filters=filters)
            for kind in selectors.REQUEST_LOG_KINDS
        }
        return Response(serializers.RequestLogStatsSerializer(data).data)


@extend_schema(tags=["audit"])
class AuditEventViewSet(viewsets.ReadOnlyModelViewSet):
    """The audit trail, newest first. Staff only."""

    permission_classes = [IsStaff]
    serializer_class = serializers.AuditEventOutputSerializer
    filterset_class = AuditEventFilter

    def get_queryset(self):
        return selectors.audit_event_list()
