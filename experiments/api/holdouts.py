"""Holdouts, rollouts and shipping a winner (DESIGN.md §3, §7): staff only."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from config.api.permissions import IsStaff, caller_of
from config.api.serializers import FiniteFloatField, StrictSerializer
from experiments.models import Context, Holdout, Rollout
from experiments.services import holdouts, rollouts

CONFLICT = OpenApiResponse(description="The holdout's or rollout's state does not allow this.")


class HoldoutSerializer(serializers.ModelSerializer):
    class Meta:
        model = Holdout
        fields = [
            "id",
            "name",
            "contexts",
            "percent",
            "salt",
            "is_active",
            "started_at",
            "results",
            "evaluated_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class HoldoutInputSerializer(StrictSerializer):
    name = serializers.CharField(max_length=200)
    contexts = serializers.ListField(
        child=serializers.ChoiceField(choices=Context.choices),
        max_length=len(Context.values),
        required=False,
        help_text="Contexts it covers; empty or absent: every context.",
    )
    percent = FiniteFloatField(
        min_value=0.0, max_value=20.0, required=False, help_text="Share of learners held out."
    )
    salt = serializers.CharField(max_length=64, required=False)
    is_active = serializers.BooleanField(required=False)

    def validate_name(self, value: str) -> str:
        others = Holdout.objects.filter(name=value)
        if self.instance is not None:
            others = others.exclude(pk=self.instance.pk)
        if others.exists():
            raise serializers.ValidationError("A holdout with this name already exists.")
        return value


@extend_schema(tags=["holdouts"])
class HoldoutViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Randomised control groups that get the baseline wherever they apply (§4 step 1b).
    An active holdout's percent and salt cannot change (409)."""

    permission_classes = [IsStaff]
    serializer_class = HoldoutSerializer
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self):
        return Holdout.objects.order_by("-created_at", "-id")

    @extend_schema(request=HoldoutInputSerializer, responses={201: HoldoutSerializer})
    def create(self, request: Request) -> Response:
        payload = HoldoutInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        holdout = holdouts.holdout_create(actor=caller_of(request), data=payload.validated_data)
        return Response(self.get_serializer(holdout).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=HoldoutInputSerializer, responses={200: HoldoutSerializer, 409: CONFLICT}
    )
    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        holdout = self.get_object()
        payload = HoldoutInputSerializer(holdout, data=request.data, partial=True)
        payload.is_valid(raise_exception=True)
        holdout = holdouts.holdout_update(
            actor=caller_of(request), holdout=holdout, data=payload.validated_data
        )
        return Response(self.get_serializer(holdout).data)


class RolloutSerializer(serializers.ModelSerializer):
    strategy = serializers.SlugRelatedField(slug_field="key", read_only=True)  # type: ignore[var-annotated]
    variant = serializers.SlugRelatedField(slug_field="key", read_only=True, allow_null=True)  # type: ignore[var-annotated]

    class Meta:
        model = Rollout
        fields = [
            "id",
            "context",
            "strategy",
            "params",
            "experiment",
            "variant",
            "is_active",
            "created_by",
            "created_at",
            "deactivated_at",
        ]
        read_only_fields = fields


class ShipSerializer(StrictSerializer):
    variant = serializers.SlugField(
        max_length=50,
        required=False,
        help_text="The variant to ship; absent: the winner of a COMPLETED experiment.",
    )


@extend_schema(tags=["rollouts"])
class RolloutViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Each context's default strategy for learners nobody else decides for (§4 step 4),
    created by shipping an experiment (`experiments/{id}/ship/`)."""

    permission_classes = [IsStaff]
    serializer_class = RolloutSerializer
    http_method_names = ["get", "post", "head", "options"]

    def get_queryset(self):
        return Rollout.objects.select_related("strategy", "variant").order_by("-created_at", "-id")

    @extend_schema(request=None, responses={200: RolloutSerializer})
    @action(detail=True, methods=["post"])
    def deactivate(self, request: Request, pk: str | None = None) -> Response:
        rollout = rollouts.rollout_deactivate(actor=caller_of(request), rollout=self.get_object())
        return Response(self.get_serializer(rollout).data)
