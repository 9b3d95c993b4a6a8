from typing import Any, cast

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api.permissions import CanActForUsers, caller_of, owner_scope
from config.api.schema import BATCH_LIMIT
from config.errors import NotFoundError, PayloadTooLargeError
from personalization import selectors
from personalization.api import serializers
from personalization.filters import InteractionFilter, UserFilter
from personalization.models import User
from personalization.services import interactions, merge, preferences, skills, users

RECENT_ASSESSMENTS = 50


def me(request: Request) -> User:
    """The effective user: the caller, or the user a service account acts for."""
    return cast(User, request.user)


def _profile_response(request: Request) -> Response:
    user = me(request)
    context = {
        "preferences": selectors.preferences_get(user=user),
        "summary": selectors.profile_summary(user=user),
    }
    return Response(serializers.ProfileSerializer(user, context=context).data)


@extend_schema(tags=["me"])
class MeView(APIView):
    """The caller's profile with a summary of preferences, skills and what other parts of
    Attune hold. PATCH changes the profile; DELETE erases the user and everything about them."""

    @extend_schema(responses=serializers.ProfileSerializer)
    def get(self, request: Request) -> Response:
        return _profile_response(request)

    @extend_schema(
        request=serializers.ProfileUpdateSerializer, responses=serializers.ProfileSerializer
    )
    def patch(self, request: Request) -> Response:
        payload = serializers.ProfileUpdateSerializer(data=request.data, partial=True)
        payload.is_valid(raise_exception=True)
        users.user_profile_update(
            actor=caller_of(request), user=me(request), data=payload.validated_data
        )
        return _profile_response(request)

    @extend_schema(responses={204: OpenApiResponse(description="Erased.")})
    def delete(self, request: Request) -> Response:
        users.user_erase(actor=caller_of(request), user=me(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(tags=["me"])
class MeExportView(APIView):
    """Every row Attune holds about the caller, by model, as JSON."""

    @extend_schema(
        responses=OpenApiResponse(description="{exported_at, user_id, data: {model: [rows]}}")
    )
    def get(self, request: Request) -> Response:
        return Response(selectors.user_data_export(user=me(request)))


@extend_schema(tags=["me"])
class MePreferencesView(APIView):
    """GET answers the defaults while none are stored. PUT replaces (fields left out return
    to their defaults), PATCH changes part, DELETE resets to the defaults."""

    def _respond(self, prefs: Any) -> Response:
        return Response(serializers.PreferencesSerializer(prefs).data)

    @extend_schema(responses=serializers.PreferencesSerializer)
    def get(self, request: Request) -> Response:
        return self._respond(selectors.preferences_get(user=me(request)))

    @extend_schema(
        request=serializers.PreferencesSerializer, responses=serializers.PreferencesSerializer
    )
    def put(self, request: Request) -> Response:
        return self._update(request, replace=True)

    @extend_schema(
        request=serializers.PreferencesSerializer, responses=serializers.PreferencesSerializer
    )
    def patch(self, request: Request) -> Response:
        return self._update(request, replace=False)

    @extend_schema(responses={200: serializers.PreferencesSerializer})
    def delete(self, request: Request) -> Response:
        return self._respond(
            preferences.preferences_reset(actor=caller_of(request), user=me(request))
        )

    def _update(self, request: Request, *, replace: bool) -> Response:
        payload = serializers.PreferencesSerializer(data=request.data, partial=True)
        payload.is_valid(raise_exception=True)
        return self._respond(
            preferences.preferences_update(
                actor=caller_of(request),
                user=me(request),
                data=payload.validated_data,
                replace=replace,
            )
        )


@extend_schema(tags=["me"])
class MeSkillsView(APIView):
    """The caller's skill profile. POST one assessment {skill, score}: the ratings (newest
    weight 0.5), weaknesses and learning velocity are recomputed from the history."""

    def _respond(self, request: Request, code: int = status.HTTP_200_OK) -> Response:
        profile = selectors.skill_profile_get(user=me(request))
        data = {
            "skill_ratings": profile.skill_ratings,
            "weaknesses": profile.weaknesses,
            "learning_velocity": profile.learning_velocity,
            "recent_assessments": selectors.skill_assessment_list(user=me(request))[
                :RECENT_ASSESSMENTS
            ],
        }
        return Response(serializers.SkillProfileSerializer(data).data, status=code)

    @extend_schema(responses=serializers.SkillProfileSerializer)
    def get(self, request: Request) -> Response:
        return self._respond(request)

    @extend_schema(
        request=serializers.SkillAssessmentInputSerializer,
        responses={201: serializers.SkillProfileSerializer},
    )
    def post(self, request: Request) -> Response:
        payload = serializers.SkillAssessmentInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        skills.skill_assessment_record(user=me(request), **payload.validated_data)
        return self._respond(request, status.HTTP_201_CREATED)


@extend_schema(tags=["interactions"])
class InteractionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The caller's interactions, newest first. POST one object or a list of up to 500."""

    serializer_class = serializers.InteractionSerializer
    filterset_class = InteractionFilter

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return selectors.interaction_list().none()
        return selectors.interaction_list(owner=owner_scope(self.request))

    @extend_schema(
        request=serializers.InteractionInputSerializer(many=True),
        extensions={BATCH_LIMIT: interactions.MAX_BATCH},
        responses={
            201: serializers.InteractionBatchResultSerializer,
        },
        description="One object answers the stored interaction; a list answers "
        "`{created, results}`. More than 500 items is 413.",
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        many = isinstance(request.data, list)
        if many and len(request.data) > interactions.MAX_BATCH:
            raise PayloadTooLargeError(
                f"{len(request.data)} interactions in one request; "
                f"send at most {interactions.MAX_BATCH} per request."
            )
        payload = serializers.InteractionInputSerializer(data=request.data, many=many)
        payload.is_valid(raise_exception=True)
        items = payload.validated_data if many else [payload.validated_data]
        created = interactions.interaction_record_many(user=me(request), items=items)
        if not many:
            return Response(self.get_serializer(created[0]).data, status=status.HTTP_201_CREATED)
        return Response(
            {"created": len(created), "results": self.get_serializer(created, many=True).data},
            status=status.HTTP_201_CREATED,
        )


@extend_schema(tags=["interactions"])
class InteractionSummaryView(APIView):
    """Popular services, average rating by service, engagement per day over 30 days, and
    favorite themes among the last 20 interactions rated 4 or more."""

    @extend_schema(responses=serializers.InteractionSummarySerializer)
    def get(self, request: Request) -> Response:
        return Response(selectors.interaction_summary(user=me(request)))


@extend_schema(tags=["users"])
class UserViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """For staff and service accounts: find users by `external_id`, create them. Service
    accounts see learners only (DESIGN.md §7); staff see everyone."""

    permission_classes = [CanActForUsers]
    serializer_class = serializers.UserSerializer
    filterset_class = UserFilter

    def get_queryset(self):
        caller = caller_of(self.request)
        return selectors.user_list(learners_only=not getattr(caller, "is_staff", False))

    @extend_schema(
        request=serializers.UserCreateSerializer, responses={201: serializers.UserSerializer}
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        payload = serializers.UserCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        user = users.user_create(actor=caller_of(request), **payload.validated_data)
        return Response(self.get_serializer(user).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=serializers.UserMergeSerializer,
        responses={
            200: serializers.UserSerializer,
            404: OpenApiResponse(description="No such learner (this one, or `from`)."),
            409: OpenApiResponse(description="The same learner, or not a learner."),
        },
        description="Merge the learner named by `from` (e.g. the anonymous identity a learner "
        "used before signing in) into this one (DESIGN.md §10): their decisions, outcomes, "
        "interactions, recommendations, paths and logs move here; where both have a row of "
        "one key this learner's wins; the other identity is erased, and its reference finds "
        "this learner from now on.",
    )
    @action(detail=True, methods=["post"])
    def merge(self, request: Request, pk: str | None = None) -> Response:
        target = self.get_object()
        payload = serializers.UserMergeSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        reference = payload.validated_data["from"]
        named = selectors.user_get_by_reference(reference=reference, follow_merges=False)
        if named is not None and named.merged_into == target.pk:
            return Response(self.get_serializer(target).data)  # merged already: the same answer
        source = selectors.user_get_by_reference(reference=reference)
        if source is None or not self.get_queryset().filter(pk=source.pk).exists():
            raise NotFoundError(f"No learner {reference!r} to merge.", attr="from")
        merge.user_merge(actor=caller_of(request), target=target, source=source)
        target.refresh_from_db()
        return Response(self.get_serializer(target).data)
