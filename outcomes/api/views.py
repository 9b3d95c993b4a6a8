from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.generics import get_object_or_404
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api.permissions import IsLearnerForWrites, IsStaff, owner_scope
from config.api.schema import BATCH_LIMIT
from experiments.models import Experiment
from outcomes import offline, selectors
from outcomes.api import serializers
from outcomes.filters import EffectivenessFilter, OutcomeFilter
from outcomes.models import Outcome
from outcomes.services import evaluation, ingest, planning


@extend_schema(tags=["outcomes"])
class OutcomeViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The caller's outcomes. POST one object (201 new, 200 when the event_id was already
    stored with the same payload) or a list of up to 1,000 (201 with `created` and
    `duplicates`). A repeated event_id with a different payload is 422 and stores nothing."""

    permission_classes = [IsAuthenticated, IsLearnerForWrites]
    serializer_class = serializers.OutcomeSerializer
    filterset_class = OutcomeFilter

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return selectors.outcome_list().none()
        return selectors.outcome_list(owner=owner_scope(self.request))

    @extend_schema(
        request=serializers.OutcomeInputSerializer(many=True),
        extensions={BATCH_LIMIT: ingest.MAX_BATCH},
        responses={
            201: serializers.OutcomeBatchResultSerializer,
            200: serializers.OutcomeSerializer,
            413: OpenApiResponse(description="More than 1,000 outcomes."),
            422: OpenApiResponse(description="An event_id reused with a different payload."),
        },
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        items, many = serializers.outcome_inputs(request)
        result = ingest.outcome_record_many(user=request.user, items=items, single=not many)
        if many:
            return Response(
                {
                    "created": len(result.created),
                    "duplicates": len(result.duplicates),
                    "ids": result.outcome_ids,
                },
                status=status.HTTP_201_CREATED,
            )
        outcome = Outcome.objects.get(pk=result.outcome_ids[0])
        code = status.HTTP_201_CREATED if result.created else status.HTTP_200_OK
        return Response(self.get_serializer(outcome).data, status=code)


@extend_schema(tags=["outcomes"])
class EffectivenessViewSet(viewsets.ReadOnlyModelViewSet):
    """Effectiveness per strategy and two-week window: GLOBAL rows for everyone, USER rows
    for the caller's own configs. Filters scope, context, strategy, window, significant."""

    serializer_class = serializers.EffectivenessSerializer
    filterset_class = EffectivenessFilter

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return selectors.effectiveness_list().none()
        return selectors.effectiveness_list(owner=owner_scope(self.request))


@extend_schema(tags=["experiments"])
class ExperimentResultsView(APIView):
    """DESIGN.md §5.3, computed fresh (and cached on the experiment). Staff only."""

    permission_classes = [IsStaff]

    @extend_schema(
        responses=OpenApiResponse(
            description="Per-variant figures, comparisons "
            "with the control, sample-ratio check, winner, readiness."
        )
    )
    def get(self, request: Request, pk: int) -> Response:
        experiment = get_object_or_404(Experiment, pk=pk)
        return Response(evaluation.experiment_evaluate(experiment=experiment))


@extend_schema(tags=["experiments"])
class ExperimentPlanView(APIView):
    """DESIGN.md §5.3 planning: learners per variant for a relative MDE (fixed horizon and,
    for SEQUENTIAL, the inflation the always-valid analysis costs) and the days at the
    context's current number of deciding learners. Staff only. Inputs that cannot be planned
    (MDE or sd not above 0, no traffic, nothing to measure) are a 400 that says why."""

    permission_classes = [IsStaff]

    @extend_schema(
        request=serializers.ExperimentPlanInputSerializer,
        responses=OpenApiResponse(
            description="{context, baseline_mean, sd, measured, mde, delta, alpha, power, "
            "variants, analysis, learners_per_variant, learners_per_variant_fixed_horizon, "
            "sequential_inflation, total_learners, daily_learners, days, formula}"
        ),
    )
    def post(self, request: Request) -> Response:
        payload = serializers.ExperimentPlanInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        return Response(planning.experiment_plan(**payload.validated_data))


@extend_schema(tags=["effectiveness"])
class OfflineEvaluationView(APIView):
    """Off-policy evaluation (DESIGN.md §5.6), staff only: from the context's decision log in a
    window, joined to the outcomes, the mean reward per decision that each strategy always on
    and each level's per-learner policy would have had — IPS, self-normalised IPS and doubly
    robust, each with a 95% interval clustered by learner and the effective sample size."""

    permission_classes = [IsStaff]

    @extend_schema(
        parameters=[serializers.OfflineEvaluationQuerySerializer],
        responses=serializers.OfflineEvaluationSerializer,
    )
    def get(self, request: Request) -> Response:
        query = serializers.OfflineEvaluationQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        return Response(offline.offline_evaluation(**query.validated_data))
