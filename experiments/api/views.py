from collections.abc import Callable
from typing import Any

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api.permissions import (
    IsLearnerForWrites,
    IsStaff,
    IsStaffOrReadOnly,
    caller_of,
    owner_scope,
)
from experiments import selectors
from experiments.api import serializers
from experiments.api.authentication import learner_state_read, token_reader
from experiments.api.holdouts import RolloutSerializer, ShipSerializer
from experiments.filters import (
    DecisionFilter,
    ExperimentFilter,
    StrategyConfigFilter,
    StrategyFilter,
)
from experiments.models import Context, Experiment
from experiments.services import configs, decisions, experiments, rollouts, strategies
from experiments.services.prompt_context import prompt_context_get

CONTEXTS = frozenset(Context.values)
CONFLICT = OpenApiResponse(description="The experiment's state does not allow this (409).")


@extend_schema(tags=["strategies"])
class StrategyViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """The strategy catalog: readable by everyone, changed by staff."""

    permission_classes = [IsStaffOrReadOnly]
    serializer_class = serializers.StrategySerializer
    filterset_class = StrategyFilter
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self):
        return selectors.strategy_list()

    @extend_schema(
        request=serializers.StrategyInputSerializer, responses={201: serializers.StrategySerializer}
    )
    def create(self, request: Request) -> Response:
        payload = serializers.StrategyInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        strategy = strategies.strategy_create(actor=caller_of(request), data=payload.validated_data)
        return Response(self.get_serializer(strategy).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=serializers.StrategyInputSerializer, responses=serializers.StrategySerializer
    )
    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        strategy = self.get_object()
        payload = serializers.StrategyInputSerializer(strategy, data=request.data, partial=True)
        payload.is_valid(raise_exception=True)
        strategy = strategies.strategy_update(
            actor=caller_of(request), strategy=strategy, data=payload.validated_data
        )
        return Response(self.get_serializer(strategy).data)


@extend_schema(tags=["configs"])
class StrategyConfigViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """The caller's strategy configs (created on the first decision in a context). PATCH
    `params` (overrides, checked against the context's parameters) and `is_active`."""

    serializer_class = serializers.StrategyConfigSerializer
    filterset_class = StrategyConfigFilter
    http_method_names = ["get", "patch", "head", "options"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return selectors.config_list().none()
        return selectors.config_list(owner=owner_scope(self.request))

    @extend_schema(
        request=serializers.StrategyConfigUpdateSerializer,
        responses=serializers.StrategyConfigSerializer,
    )
    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        config = self.get_object()
        payload = serializers.StrategyConfigUpdateSerializer(
            data=request.data, context={"config": config}
        )
        payload.is_valid(raise_exception=True)
        config = configs.config_update(
            actor=caller_of(request), config=config, data=payload.validated_data
        )
        return Response(self.get_serializer(config).data)


@extend_schema(tags=["experiments"])
class ExperimentViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Experiments with their variants nested. Staff only. Editable in DRAFT; started,
    completed and cancelled through their actions (an illegal transition is 409)."""

    permission_classes = [IsStaff]
    serializer_class = serializers.ExperimentSerializer
    filterset_class = ExperimentFilter
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self):
        return selectors.experiment_list()

    def _respond(self, experiment: Experiment, code: int = status.HTTP_200_OK) -> Response:
        fresh = selectors.experiment_list().get(pk=experiment.pk)
        return Response(self.get_serializer(fresh).data, status=code)

    @extend_schema(
        request=serializers.ExperimentInputSerializer,
        responses={201: serializers.ExperimentSerializer},
    )
    def create(self, request: Request) -> Response:
        payload = serializers.ExperimentInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = dict(payload.validated_data)
        variants = data.pop("variants", [])
        experiment = experiments.experiment_create(
            actor=caller_of(request), data=data, variants=variants
        )
        return self._respond(experiment, status.HTTP_201_CREATED)

    @extend_schema(
        request=serializers.ExperimentInputSerializer,
        responses={200: serializers.ExperimentSerializer, 409: CONFLICT},
    )
    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        experiment = self.get_object()
        body = dict(request.data) if isinstance(request.data, dict) else request.data
        raw_variants = body.pop("variants", None) if isinstance(body, dict) else None
        payload = serializers.ExperimentInputSerializer(experiment, data=body, partial=True)
        payload.is_valid(raise_exception=True)
        data = dict(payload.validated_data)
        variants = None
        if raw_variants is not None:
            # Variants are replaced whole: each needs all its fields, even in a PATCH.
            nested = serializers.VariantInputSerializer(data=raw_variants, many=True)
            if not nested.is_valid():
                raise ValidationError({"variants": nested.errors})
            variants = nested.validated_data
        experiment = experiments.experiment_update(
            actor=caller_of(request), experiment=experiment, data=data, variants=variants
        )
        return self._respond(experiment)

    @extend_schema(
        request=serializers.ExperimentStartSerializer,
        responses={200: serializers.ExperimentSerializer, 409: CONFLICT},
        description="Start now, or schedule with a future `start_date`.",
    )
    @action(detail=True, methods=["post"])
    def start(self, request: Request, pk: str | None = None) -> Response:
        payload = serializers.ExperimentStartSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        experiment = experiments.experiment_start(
            actor=caller_of(request),
            experiment=self.get_object(),
            start_date=payload.validated_data.get("start_date"),
        )
        return self._respond(experiment)

    @extend_schema(
        request=serializers.ExperimentCompleteSerializer,
        responses={200: serializers.ExperimentSerializer, 409: CONFLICT},
        description="409 before min_participants and min_duration_days unless `force` is true "
        "(recorded in the audit trail).",
    )
    @action(detail=True, methods=["post"])
    def complete(self, request: Request, pk: str | None = None) -> Response:
        payload = serializers.ExperimentCompleteSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        experiment = experiments.experiment_complete(
            actor=caller_of(request),
            experiment=self.get_object(),
            force=payload.validated_data["force"],
        )
        return self._respond(experiment)

    @extend_schema(request=None, responses={200: serializers.ExperimentSerializer, 409: CONFLICT})
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        experiment = experiments.experiment_cancel(
            actor=caller_of(request), experiment=self.get_object()
        )
        return self._respond(experiment)

    @extend_schema(
        request=ShipSerializer,
        responses={
            201: RolloutSerializer,
            404: OpenApiResponse(description="No such variant."),
            409: CONFLICT,
        },
        description="Make the winner of a COMPLETED experiment (or the named variant of an "
        "ACTIVE or COMPLETED one) the context's rollout, replacing the previous one.",
    )
    @action(detail=True, methods=["post"])
    def ship(self, request: Request, pk: str | None = None) -> Response:
        payload = ShipSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        rollout = rollouts.experiment_ship(
            actor=caller_of(request),
            experiment=self.get_object(),
            variant=payload.validated_data.get("variant"),
        )
        return Response(RolloutSerializer(rollout).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["decisions"])
class DecisionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """POST {context}: which strategy to use now (DESIGN.md §4). GET: the caller's decisions.
    Only learners are decided for: staff and service accounts acting for themselves get 403
    `learner_required`."""

    permission_classes = [IsAuthenticated, IsLearnerForWrites]
    serializer_class = serializers.DecisionListSerializer
    filterset_class = DecisionFilter

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return selectors.decision_list().none()
        return selectors.decision_list(owner=owner_scope(self.request))

    def token_user_reader(self, request: Request) -> Callable[[str], Any] | None:
        """The token's user and the learner read in one statement (TokenAuthentication)."""
        return token_reader(request)

    @extend_schema(
        request=serializers.DecisionInputSerializer,
        responses={
            201: serializers.DecisionSerializer,
            409: OpenApiResponse(description="No active strategy in the context."),
        },
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        # The hot path: a body of exactly {"context": <known context>} needs no serializer.
        # Anything else is validated by DecisionInputSerializer, which names the field.
        data = request.data
        context = data.get("context") if isinstance(data, dict) and len(data) == 1 else None
        if not (isinstance(context, str) and context in CONTEXTS):
            payload = serializers.DecisionInputSerializer(data=data)
            payload.is_valid(raise_exception=True)
            context = payload.validated_data["context"]
        state, started = learner_state_read(request, context)
        result = decisions.decision_make(
            user=request.user, context=context, state=state, started=started
        )
        decision = result.decision
        # DecisionSerializer's shape (the schema), built directly.
        answer = {
            "id": decision.pk,
            "context": decision.context,
            "strategy": {"key": result.strategy.key, "name": result.strategy.name},
            "params": decision.params,
            "source": decision.source,
            "experiment": decision.experiment_id,
            "variant": result.variant.key if result.variant else None,
            "propensity": float(decision.propensity),
            "personalization_applied": bool(decision.personalization_applied),
        }
        return Response(answer, status=status.HTTP_201_CREATED)


@extend_schema(tags=["me"])
class MePromptContextView(APIView):
    """What a content generator (an LLM prompt, a translation step) needs to adapt a text to
    the learner (DESIGN.md §7.1): preferences and profile, a fresh decision in the context and
    a plain-language instruction. The call is a decision and is stored as one, so only
    learners may make it; consent withheld for the context gives the language and the
    baseline only."""

    permission_classes = [IsAuthenticated]

    @extend_schema(
        parameters=[
            OpenApiParameter("context", enum=sorted(CONTEXTS), default="CONTENT", required=False)
        ],
        responses={
            200: serializers.PromptContextSerializer,
            403: OpenApiResponse(description="Not a learner (`learner_required`)."),
        },
    )
    def get(self, request: Request) -> Response:
        query = serializers.PromptContextQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        answer = prompt_context_get(user=request.user, context=query.validated_data["context"])
        return Response(answer)
