"""`POST /api/v1/experiments/{id}/simulate/`: a DRAFT experiment's design simulated before
launch, beside its alternative (experiments/services/design_simulation.py)."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.generics import get_object_or_404
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api.permissions import IsStaff
from config.api.serializers import FiniteFloatField, StrictSerializer
from experiments import selectors
from experiments.services import design_simulation


class SimulateInputSerializer(StrictSerializer):
    """What the simulation assumes; everything left out is measured or planned."""

    effects = serializers.DictField(
        child=FiniteFloatField(min_value=-1.0, max_value=100.0),
        required=False,
        help_text="Relative lift of each treatment over the control, e.g. "
        '{"treatment": 0.05}. Missing treatments get `mde`, or the planner\'s MDE for '
        "this horizon and traffic.",
    )
    mde = FiniteFloatField(
        required=False,
        min_value=0.0,
        max_value=100.0,
        help_text="The lift of every treatment not in `effects` (relative, 0.05 = 5 %).",
    )
    baseline_mean = FiniteFloatField(
        required=False,
        min_value=0.0,
        max_value=1.0,
        help_text="The control's mean primary metric; default: measured from the context's "
        "last 28 days, as the planner does.",
    )
    sd = FiniteFloatField(
        required=False,
        min_value=0.0,
        max_value=1.0,
        help_text="The sd of learners' mean primary metric; default: measured.",
    )
    runs = serializers.IntegerField(
        required=False,
        default=design_simulation.DEFAULT_RUNS,
        min_value=2,
        max_value=design_simulation.MAX_RUNS,
    )
    seed = serializers.IntegerField(required=False, default=0, min_value=0, max_value=2**63 - 1)
    days = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=365,
        help_text="The horizon; default: the experiment's planned duration, else 28.",
    )


class FigureSerializer(serializers.Serializer):
    value = serializers.FloatField(allow_null=True)
    standard_error = serializers.FloatField(allow_null=True)


class ReadinessDaysSerializer(serializers.Serializer):
    median = serializers.FloatField(allow_null=True)
    p90 = serializers.FloatField(allow_null=True)


class WinnerDaysSerializer(serializers.Serializer):
    median = serializers.FloatField(allow_null=True)


class MeasuredSerializer(serializers.Serializer):
    baseline_mean = serializers.BooleanField()
    sd = serializers.BooleanField()


class AssumptionsSerializer(serializers.Serializer):
    baseline_mean = serializers.FloatField()
    sd = serializers.FloatField()
    measured = MeasuredSerializer()
    primary_metric = serializers.CharField()
    effects = serializers.DictField(child=serializers.FloatField())
    mde = serializers.FloatField(
        allow_null=True, help_text="The lift given to treatments not in `effects`."
    )
    learners_per_day = serializers.FloatField(help_text="Deciding learners a day in the context.")
    enrolment_share = serializers.FloatField(
        help_text="traffic_percent/100 × the namespace range's width."
    )
    enrolled_per_day = serializers.FloatField()
    days = serializers.IntegerField()
    runs = serializers.IntegerField()
    seed = serializers.IntegerField()


class DesignSerializer(serializers.Serializer):
    design = serializers.CharField(help_text='"as configured", "fixed split" or "THOMPSON"')
    experiment_type = serializers.CharField()
    algorithm = serializers.CharField(allow_null=True, help_text="null for a fixed split")
    analysis = serializers.CharField()
    engine = serializers.CharField()
    weights = serializers.ListField(
        child=serializers.FloatField(), allow_null=True, help_text="null for bandits"
    )
    power = FigureSerializer(
        help_text="Share of runs whose first winner is a truly best variant (with no effect: "
        "the false-winner rate); null when the control alone is best."
    )
    false_winner_rate = FigureSerializer(help_text="Share of runs whose first winner is not best.")
    expected_regret = FigureSerializer(
        help_text="Σ over learners of (best mean − their variant's mean), mean over runs."
    )
    days_to_readiness = ReadinessDaysSerializer()
    days_to_winner = WinnerDaysSerializer(
        help_text="null when fewer than half the runs find a winner."
    )
    learners = serializers.FloatField(help_text="Learners enrolled per run, on average.")
    allocation = serializers.DictField(child=serializers.FloatField())


class SimulationSerializer(serializers.Serializer):
    experiment = serializers.IntegerField()
    assumptions = AssumptionsSerializer()
    designs = DesignSerializer(many=True)


@extend_schema(tags=["experiments"])
class ExperimentSimulateView(APIView):
    """A DRAFT experiment's design simulated before launch: power, false-winner rate,
    expected regret and days to readiness and to a winner, beside the alternative (a
    bandit's fixed equal split, a fixed split's THOMPSON bandit). Staff only."""

    permission_classes = [IsStaff]

    @extend_schema(
        request=SimulateInputSerializer,
        responses={
            200: SimulationSerializer,
            400: OpenApiResponse(
                description="Bad input, unknown variant in effects, or no traffic to simulate."
            ),
            409: OpenApiResponse(description="The experiment is not a DRAFT."),
        },
    )
    def post(self, request: Request, pk: int) -> Response:
        experiment = get_object_or_404(selectors.experiment_list(), pk=pk)
        payload = SimulateInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        result = design_simulation.experiment_simulate(
            experiment=experiment, **payload.validated_data
        )
        return Response(SimulationSerializer(result).data)
