"""`webhooks/` (DESIGN.md §7): staff manage the endpoints Attune POSTs signed events to, read
their deliveries and send a test ping. The secret is in the answer to the POST that creates
an endpoint and never again."""

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from config.api.permissions import IsStaff, caller_of
from config.api.serializers import StrictSerializer
from experiments import selectors
from experiments.models import SUBSCRIBABLE_EVENTS, WebhookDelivery, WebhookEndpoint
from experiments.services import webhooks

EVENT_CHOICES = [(event.value, event.label) for event in SUBSCRIBABLE_EVENTS]


class WebhookEndpointSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookEndpoint
        fields = ["id", "name", "url", "events", "is_active", "created_at", "updated_at"]
        read_only_fields = fields

    events = serializers.ListField(child=serializers.ChoiceField(choices=EVENT_CHOICES))


class WebhookEndpointCreatedSerializer(WebhookEndpointSerializer):
    """The answer to the POST that creates an endpoint: the only one with the secret."""

    class Meta(WebhookEndpointSerializer.Meta):
        fields = [*WebhookEndpointSerializer.Meta.fields, "secret"]
        read_only_fields = fields

    secret = serializers.CharField(
        read_only=True, help_text="Signs every delivery. Shown in this answer only: store it now."
    )


class WebhookEndpointInputSerializer(StrictSerializer):
    name = serializers.CharField(max_length=100, required=False, allow_blank=True)
    url = serializers.URLField(max_length=500)
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=EVENT_CHOICES),
        allow_empty=False,
        max_length=len(EVENT_CHOICES),
    )
    is_active = serializers.BooleanField(required=False)
    secret = serializers.CharField(
        write_only=True,
        required=False,
        min_length=webhooks.MIN_SECRET_LENGTH,
        max_length=200,
        help_text="Generated when omitted. Given in a PATCH, it replaces the stored secret.",
    )

    def validate_events(self, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise serializers.ValidationError("Each event may appear once.")
        return value


class WebhookDeliverySerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "endpoint",
            "event",
            "payload",
            "status",
            "attempts",
            "response_code",
            "next_attempt_at",
            "delivered_at",
            "last_error",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


@extend_schema(tags=["webhooks"])
class WebhookEndpointViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Webhook endpoints (staff only). Each event an endpoint subscribes to is POSTed to its
    URL, signed with its secret (`Attune-Signature`), and retried with backoff until a 2xx
    answer or the tenth attempt."""

    permission_classes = [IsStaff]
    serializer_class = WebhookEndpointSerializer
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        return selectors.webhook_endpoint_list()

    @extend_schema(
        request=WebhookEndpointInputSerializer,
        responses={201: WebhookEndpointCreatedSerializer},
        description="Create an endpoint. The answer holds the secret, once.",
    )
    def create(self, request: Request) -> Response:
        payload = WebhookEndpointInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        endpoint = webhooks.webhook_endpoint_create(
            actor=caller_of(request), data=payload.validated_data
        )
        return Response(
            WebhookEndpointCreatedSerializer(endpoint).data, status=status.HTTP_201_CREATED
        )

    @extend_schema(request=WebhookEndpointInputSerializer, responses=WebhookEndpointSerializer)
    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        endpoint = self.get_object()
        payload = WebhookEndpointInputSerializer(data=request.data, partial=True)
        payload.is_valid(raise_exception=True)
        endpoint = webhooks.webhook_endpoint_update(
            actor=caller_of(request), endpoint=endpoint, data=payload.validated_data
        )
        return Response(self.get_serializer(endpoint).data)

    @extend_schema(responses={204: None})
    def destroy(self, request: Request, pk: str | None = None) -> Response:
        webhooks.webhook_endpoint_delete(actor=caller_of(request), endpoint=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses=WebhookDeliverySerializer(many=True))
    @action(detail=True, methods=["get"])
    def deliveries(self, request: Request, pk: str | None = None) -> Response:
        """The endpoint's deliveries, newest first."""
        queryset = selectors.webhook_delivery_list(endpoint=self.get_object())
        page = self.paginate_queryset(queryset)
        data = WebhookDeliverySerializer(page, many=True).data
        return self.get_paginated_response(data)

    @extend_schema(
        request=None,
        responses={
            201: WebhookDeliverySerializer,
            404: OpenApiResponse(description="No such endpoint."),
        },
        description="POST a `ping` delivery to the endpoint now (one attempt, not retried) "
        "and answer it with its outcome: DELIVERED, or FAILED with the response code or error.",
    )
    @action(detail=True, methods=["post"])
    def test(self, request: Request, pk: str | None = None) -> Response:
        delivery = webhooks.webhook_endpoint_ping(
            actor=caller_of(request), endpoint=self.get_object()
        )
        return Response(WebhookDeliverySerializer(delivery).data, status=status.HTTP_201_CREATED)

    def get_serializer_class(self) -> Any:
        if getattr(self, "action", None) in {"deliveries", "test"}:
            return WebhookDeliverySerializer
        return super().get_serializer_class()
