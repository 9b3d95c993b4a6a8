from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from config.api.permissions import IsLearnerForWrites, IsStaffOrReadOnly, caller_of, owner_scope
from config.errors import NotFoundError
from recommendations import selectors
from recommendations.api import serializers
from recommendations.filters import ContentItemFilter, LearningPathFilter, RecommendationFilter
from recommendations.services import catalog, feedback, generation, paths

CONFLICT = OpenApiResponse(description="Not allowed in the current status (409).")


@extend_schema(tags=["recommendations"])
class ContentItemViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The content catalog: readable by everyone, edited by staff."""

    permission_classes = [IsStaffOrReadOnly]
    serializer_class = serializers.ContentItemSerializer
    filterset_class = ContentItemFilter
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self):
        return selectors.content_item_list()

    @extend_schema(
        request=serializers.ContentItemInputSerializer,
        responses={201: serializers.ContentItemSerializer},
    )
    def create(self, request: Request) -> Response:
        payload = serializers.ContentItemInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        item = catalog.content_item_create(actor=caller_of(request), data=payload.validated_data)
        return Response(self.get_serializer(item).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=serializers.ContentItemInputSerializer, responses=serializers.ContentItemSerializer
    )
    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        item = self.get_object()
        payload = serializers.ContentItemInputSerializer(item, data=request.data, partial=True)
        payload.is_valid(raise_exception=True)
        item = catalog.content_item_update(
            actor=caller_of(request), item=item, data=payload.validated_data
        )
        return Response(self.get_serializer(item).data)


@extend_schema(tags=["recommendations"])
class RecommendationViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """The caller's recommendations, newest first; filters `status`, `context`. Generating
    and answering recommendations is for learners (403 `learner_required` otherwise)."""

    permission_classes = [IsAuthenticated, IsLearnerForWrites]
    serializer_class = serializers.RecommendationSerializer
    filterset_class = RecommendationFilter

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return selectors.recommendation_list().none()
        return selectors.recommendation_list(owner=owner_scope(self.request))

    @extend_schema(
        request=serializers.GenerateInputSerializer,
        responses={
            201: serializers.GenerateResultSerializer,
            409: OpenApiResponse(description="No active CONTENT strategy."),
        },
        description="Makes a CONTENT decision and stores up to `limit` (≤ 20) new PENDING "
        "recommendations ranked with its parameters, each with its reason.",
    )
    @action(detail=False, methods=["post"])
    def generate(self, request: Request) -> Response:
        payload = serializers.GenerateInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        decision, created = generation.recommendations_generate(
            user=request.user, **payload.validated_data
        )
        return Response(
            {
                "decision": {
                    "id": decision.pk,
                    "source": decision.source,
                    "strategy": created[0].strategy_variant if created else None,
                    "personalization_applied": decision.personalization_applied,
                },
                "results": self.get_serializer(created, many=True).data,
            },
            status=status.HTTP_201_CREATED,
        )

    @extend_schema(
        request=None, responses={200: serializers.RecommendationSerializer, 409: CONFLICT}
    )
    @action(detail=True, methods=["post"])
    def accept(self, request: Request, pk: str | None = None) -> Response:
        rec = feedback.recommendation_accept(recommendation=self.get_object())
        return Response(self.get_serializer(rec).data)

    @extend_schema(
        request=serializers.DeclineInputSerializer,
        responses={200: serializers.RecommendationSerializer, 409: CONFLICT},
    )
    @action(detail=True, methods=["post"])
    def decline(self, request: Request, pk: str | None = None) -> Response:
        payload = serializers.DeclineInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        rec = feedback.recommendation_decline(
            recommendation=self.get_object(), reason=payload.validated_data.get("reason", "")
        )
        return Response(self.get_serializer(rec).data)

    @extend_schema(
        request=serializers.CompleteInputSerializer,
        responses={200: serializers.RecommendationSerializer, 409: CONFLICT},
    )
    @action(detail=True, methods=["post"])
    def complete(self, request: Request, pk: str | None = None) -> Response:
        payload = serializers.CompleteInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = dict(payload.validated_data)
        rec = feedback.recommendation_complete(
            recommendation=self.get_object(),
            effectiveness=data.pop("effectiveness", None),
            feedback=data.pop("feedback", ""),
            scores=data,
        )
        return Response(self.get_serializer(rec).data)


@extend_schema(tags=["learning paths"])
class LearningPathViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Staged paths toward a goal, built from the caller's weakest skills."""

    serializer_class = serializers.LearningPathSerializer
    filterset_class = LearningPathFilter
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return selectors.learning_path_list().none()
        return selectors.learning_path_list(owner=owner_scope(self.request))

    def _respond(self, path: Any, code: int = status.HTTP_200_OK) -> Response:
        # Read after the write committed: a concurrent DELETE may have removed the path since.
        fresh = selectors.learning_path_list().filter(pk=path.pk).first()
        if fresh is None:
            raise NotFoundError("This learning path no longer exists.")
        return Response(self.get_serializer(fresh).data, status=code)

    @extend_schema(
        request=serializers.LearningPathCreateSerializer,
        responses={201: serializers.LearningPathSerializer, 409: CONFLICT},
    )
    def create(self, request: Request) -> Response:
        payload = serializers.LearningPathCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        path = paths.learning_path_create(user=request.user, **payload.validated_data)
        return self._respond(path, status.HTTP_201_CREATED)

    @extend_schema(
        request=serializers.LearningPathUpdateSerializer,
        responses={200: serializers.LearningPathSerializer, 409: CONFLICT},
    )
    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        payload = serializers.LearningPathUpdateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        path = paths.learning_path_set_status(
            path=self.get_object(), status=payload.validated_data["status"]
        )
        return self._respond(path)

    def perform_destroy(self, instance: Any) -> None:
        paths.learning_path_delete(path=instance)

    @extend_schema(request=None, responses={200: serializers.LearningPathSerializer, 409: CONFLICT})
    @action(detail=True, methods=["post"], url_path=r"items/(?P<item_id>\d+)/complete")
    def complete_item(
        self, request: Request, pk: str | None = None, item_id: str | None = None
    ) -> Response:
        path = paths.learning_path_item_complete(
            path=self.get_object(), path_item_id=int(item_id or 0)
        )
        return self._respond(path)
