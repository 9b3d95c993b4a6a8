from typing import Any

from rest_framework import serializers

from config.api.serializers import FiniteFloatField, SafeDateTimeField, StrictSerializer
from experiments.models import Context, Decision, Experiment, Strategy, StrategyConfig, Variant
from experiments.params import params_errors
from experiments.targeting import targeting_errors, targeting_summary


def _params_validation(context: str, params: Any, *, complete: bool) -> None:
    errors = params_errors(context, params, complete=complete)
    if errors:
        raise serializers.ValidationError(errors)


# --- Strategies -----------------------------------------------------------------------------


class StrategySerializer(serializers.ModelSerializer):
    class Meta:
        model = Strategy
        fields = [
            "id",
            "context",
            "key",
            "name",
            "description",
            "default_params",
            "is_baseline",
            "is_active",
            "updated_at",
        ]
        read_only_fields = fields


class StrategyInputSerializer(StrictSerializer):
    context = serializers.ChoiceField(choices=Context.choices)  # type: ignore[assignment]
    key = serializers.SlugField(max_length=40)
    name = serializers.CharField(max_length=100)
    description = serializers.CharField(required=False, allow_blank=True)
    default_params = serializers.DictField()
    is_baseline = serializers.BooleanField(required=False)
    is_active = serializers.BooleanField(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if self.instance is not None and attrs.get("context", self.instance.context) != (
            self.instance.context
        ):
            raise serializers.ValidationError(
                {"context": "A strategy's context cannot change; create a new strategy."}
            )
        baseline = attrs.get("is_baseline", getattr(self.instance, "is_baseline", False))
        active = attrs.get("is_active", getattr(self.instance, "is_active", True))
        if baseline and not active:
            raise serializers.ValidationError({"is_active": "The baseline must stay active."})
        context = attrs.get("context") or getattr(self.instance, "context", None)
        if "default_params" in attrs and context:
            errors = params_errors(context, attrs["default_params"], complete=True)
            if errors:
                raise serializers.ValidationError({"default_params": errors})
        return attrs


# --- Configs --------------------------------------------------------------------------------


class StrategyConfigSerializer(serializers.ModelSerializer):
    strategy = serializers.SerializerMethodField()

    class Meta:
        model = StrategyConfig
        fields = [
            "id",
            "context",
            "strategy",
            "params",
            "effectiveness_score",
            "confidence_score",
            "times_selected",
            "total_reward",
            "avg_reward",
            "is_active",
            "activated_at",
            "deactivated_at",
        ]
        read_only_fields = fields

    def get_strategy(self, config: StrategyConfig) -> dict[str, Any]:
        return {"id": config.strategy_id, "key": config.strategy.key, "name": config.strategy.name}


class StrategyConfigUpdateSerializer(StrictSerializer):
    params = serializers.DictField(required=False)
    is_active = serializers.BooleanField(required=False)

    def validate_params(self, value: Any) -> Any:
        config: StrategyConfig = self.context["config"]
        _params_validation(config.context, value, complete=False)
        return value


# --- Experiments ----------------------------------------------------------------------------


class VariantSerializer(serializers.ModelSerializer):
    strategy_key = serializers.CharField(source="strategy.key", read_only=True)

    class Meta:
        model = Variant
        fields = ["id", "key", "name", "strategy", "strategy_key", "params", "weight", "is_control"]
        read_only_fields = fields


class VariantInputSerializer(StrictSerializer):
    key = serializers.SlugField(max_length=50)
    name = serializers.CharField(max_length=100)
    strategy = serializers.PrimaryKeyRelatedField(queryset=Strategy.objects.all())
    params = serializers.DictField(required=False, default=dict)
    weight = FiniteFloatField(required=False, default=1.0, min_value=0.0, max_value=1_000_000.0)
    is_control = serializers.BooleanField(required=False, default=False)


class ExperimentSerializer(serializers.ModelSerializer):
    variants = VariantSerializer(many=True, read_only=True)
    winning_variant = serializers.SlugRelatedField(  # type: ignore[var-annotated]
        slug_field="key", read_only=True, allow_null=True
    )
    targeting_summary = serializers.SerializerMethodField()

    def get_targeting_summary(self, experiment: Experiment) -> str:
        """Who may enrol, in a sentence ("everyone" without rules)."""
        return targeting_summary(experiment.targeting or [])

    class Meta:
        model = Experiment
        fields = [
            "id",
            "name",
            "description",
            "experiment_type",
            "context",
            "status",
            "start_date",
            "end_date",
            "min_participants",
            "min_duration_days",
            "traffic_percent",
            "salt",
            "algorithm",
            "epsilon",
            "min_arm_share",
            "primary_metric",
            "alpha",
            "analysis",
            "sequential_tuning",
            "engine",
            "cuped",
            "prior_mean",
            "prior_sd",
            "targeting",
            "targeting_summary",
            "namespace_start",
            "namespace_end",
            "variants",
            "variant_metrics",
            "winning_variant",
            "statistical_significance",
            "srm_p_value",
            "evaluated_at",
            "completed_at",
            "shipped_at",
            "created_at",
        ]
        read_only_fields = fields


class ExperimentInputSerializer(StrictSerializer):
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True)
    experiment_type = serializers.ChoiceField(choices=Experiment.Type.choices)
    context = serializers.ChoiceField(choices=Context.choices)  # type: ignore[assignment]
    start_date = SafeDateTimeField(required=False, allow_null=True)
    end_date = SafeDateTimeField(required=False, allow_null=True)
    min_participants = serializers.IntegerField(required=False, min_value=1, max_value=10_000_000)
    min_duration_days = serializers.IntegerField(required=False, min_value=0, max_value=3650)
    traffic_percent = FiniteFloatField(required=False, min_value=0.0, max_value=100.0)
    salt = serializers.CharField(required=False, max_length=64)
    algorithm = serializers.ChoiceField(choices=Experiment.Algorithm.choices, required=False)
    epsilon = FiniteFloatField(required=False, min_value=0.0, max_value=1.0)
    min_arm_share = FiniteFloatField(required=False, min_value=0.0, max_value=0.5)
    primary_metric = serializers.ChoiceField(choices=Experiment.Metric.choices, required=False)
    alpha = FiniteFloatField(required=False, min_value=0.0001, max_value=0.5)
    analysis = serializers.ChoiceField(choices=Experiment.Analysis.choices, required=False)
    sequential_tuning = FiniteFloatField(required=False, min_value=1.0, max_value=1e9)
    engine = serializers.ChoiceField(choices=Experiment.Engine.choices, required=False)
    cuped = serializers.BooleanField(required=False)
    prior_mean = FiniteFloatField(required=False, allow_null=True, min_value=-10.0, max_value=10.0)
    prior_sd = FiniteFloatField(required=False, allow_null=True, min_value=1e-6, max_value=100.0)
    targeting = serializers.JSONField(
        required=False,
        help_text='Rules that must all hold (DESIGN.md §4.1): [{"attr", "op", "value"}], attr '
        "one of software_level, hardware_level, learning_style, preferred_language, "
        "personalization_level, profile_completed, days_since_joined or attributes.<name>; op "
        "one of eq, neq, in, nin, gte, lte, exists. Empty: everyone.",
    )
    namespace_start = FiniteFloatField(required=False, min_value=0.0, max_value=1.0)
    namespace_end = FiniteFloatField(required=False, min_value=0.0, max_value=1.0)
    variants = VariantInputSerializer(many=True, required=False)

    def validate_name(self, value: str) -> str:
        others = Experiment.objects.filter(name=value)
        if self.instance is not None:
            others = others.exclude(pk=self.instance.pk)
        if others.exists():
            raise serializers.ValidationError("An experiment with this name already exists.")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        start, end = attrs.get("start_date"), attrs.get("end_date")
        if start and end and end <= start:
            raise serializers.ValidationError({"end_date": "The end must come after the start."})
        if "targeting" in attrs:
            errors = targeting_errors(attrs["targeting"])
            if errors:
                raise serializers.ValidationError(errors)
        low = attrs.get("namespace_start", getattr(self.instance, "namespace_start", 0.0))
        high = attrs.get("namespace_end", getattr(self.instance, "namespace_end", 1.0))
        if low >= high:
            raise serializers.ValidationError(
                {"namespace_end": "The namespace range needs 0 ≤ start < end ≤ 1."}
            )
        return attrs


class ExperimentStartSerializer(StrictSerializer):
    start_date = SafeDateTimeField(required=False, allow_null=True)


class ExperimentCompleteSerializer(StrictSerializer):
    force = serializers.BooleanField(required=False, default=False)


# --- Decisions ------------------------------------------------------------------------------


class DecisionInputSerializer(StrictSerializer):
    context = serializers.ChoiceField(choices=Context.choices)  # type: ignore[assignment]


class NamedStrategySerializer(serializers.Serializer):
    key = serializers.CharField()
    name = serializers.CharField()


class DecisionSerializer(serializers.Serializer):
    """The answer of §4: {id, context, strategy {key, name}, params, source, experiment,
    variant, propensity, personalization_applied}; `experiment` is the experiment's id and
    `variant` the variant's key (both null outside an experiment)."""

    id = serializers.IntegerField()
    context = serializers.CharField()  # type: ignore[assignment]
    strategy = NamedStrategySerializer()
    params = serializers.DictField()
    source = serializers.ChoiceField(choices=Decision.Source.choices)  # type: ignore[assignment]
    experiment = serializers.IntegerField(allow_null=True)
    variant = serializers.CharField(allow_null=True)
    propensity = serializers.FloatField()
    personalization_applied = serializers.BooleanField()


class DecisionListSerializer(serializers.ModelSerializer):
    strategy = NamedStrategySerializer(read_only=True)
    variant = serializers.SlugRelatedField(  # type: ignore[var-annotated]
        slug_field="key", read_only=True, allow_null=True
    )

    class Meta:
        model = Decision
        fields = [
            "id",
            "user",
            "context",
            "strategy",
            "params",
            "source",
            "experiment",
            "variant",
            "propensity",
            "personalization_applied",
            "latency_ms",
            "created_at",
        ]
        read_only_fields = fields


class PromptContextQuerySerializer(serializers.Serializer):
    context = serializers.ChoiceField(choices=Context.choices, default=Context.CONTENT)  # type: ignore[assignment]


class PromptContextSerializer(serializers.Serializer):
    """DESIGN.md §7.1. With consent withheld for the context, only `language`, the baseline
    strategy and the decision; the other fields are null or empty."""

    language = serializers.CharField(help_text="BCP 47 tag, from the preferences")
    tone = serializers.CharField(allow_null=True)
    reading_length = serializers.CharField(allow_null=True)
    learning_style = serializers.CharField(
        allow_null=True, help_text="null without learning-style profiling"
    )
    software_level = serializers.CharField(allow_null=True)
    hardware_level = serializers.CharField(allow_null=True)
    weaknesses = serializers.ListField(child=serializers.CharField(), help_text="weakest first")
    goals = serializers.ListField(child=serializers.CharField())
    strategy = NamedStrategySerializer()
    params = serializers.DictField()
    decision = serializers.IntegerField(help_text="id of the decision this call stored")
    text = serializers.CharField(help_text="a plain-language instruction for a generator")
