from typing import Any

from rest_framework import serializers

from config.api.serializers import (
    FiniteFloatField,
    SafeDateTimeField,
    StrictSerializer,
    not_in_future,
)
from experiments.models import Context, Experiment
from experiments.params import CONTENT_TYPES
from outcomes.models import SCORE_FIELDS, Effectiveness, Outcome


def score() -> FiniteFloatField:
    return FiniteFloatField(min_value=0.0, max_value=1.0, required=False, allow_null=True, places=9)


class OutcomeInputSerializer(StrictSerializer):
    event_id = serializers.CharField(max_length=64)
    decision = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=2**63 - 1
    )
    context = serializers.ChoiceField(choices=Context.choices, required=False)  # type: ignore[assignment]
    strategy = serializers.SlugField(max_length=40, required=False)
    personalization_applied = serializers.BooleanField(
        required=False, allow_null=True, default=None
    )
    outcome_type = serializers.ChoiceField(choices=Outcome.Type.choices)
    occurred_at = SafeDateTimeField(required=False, validators=[not_in_future])
    retention_score = score()
    performance_score = score()
    completion_rate = score()
    engagement_score = score()
    session_duration_minutes = FiniteFloatField(
        required=False, allow_null=True, min_value=0.0, max_value=24 * 60
    )
    content_type = serializers.ChoiceField(choices=CONTENT_TYPES, required=False, allow_blank=True)
    difficulty_level = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=5
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if all(attrs.get(name) is None for name in SCORE_FIELDS):
            raise serializers.ValidationError(
                "Give at least one score: " + ", ".join(SCORE_FIELDS) + ".", code="no_score"
            )
        if attrs.get("decision") is None and not attrs.get("context"):
            raise serializers.ValidationError(
                {"context": "Give the decision, or at least the context."}
            )
        # occurred_at stays absent when not given: a retry must hash to the same payload.
        return attrs


class OutcomeSerializer(serializers.ModelSerializer):
    class Meta:
        model = Outcome
        fields = [
            "id",
            "event_id",
            "decision",
            "context",
            "strategy_variant",
            "experiment",
            "variant",
            "personalization_applied",
            "outcome_type",
            "occurred_at",
            *SCORE_FIELDS,
            "reward",
            "session_duration_minutes",
            "content_type",
            "difficulty_level",
            "created_at",
        ]
        read_only_fields = fields


class OutcomeBatchResultSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    ids = serializers.ListField(child=serializers.IntegerField())


class EffectivenessSerializer(serializers.ModelSerializer):
    strategy = serializers.CharField(source="strategy.key")

    class Meta:
        model = Effectiveness
        fields = [
            "id",
            "scope",
            "context",
            "strategy",
            "user",
            "config",
            "window_start",
            "window_end",
            "n_personalized",
            "n_baseline",
            "sample_size",
            "n_outcomes_personalized",
            "n_outcomes_baseline",
            "retention_improvement",
            "performance_improvement",
            "completion_rate_change",
            "engagement_change",
            "mean_personalized",
            "mean_baseline",
            "difference",
            "standard_error",
            "correlation",
            "p_value",
            "ci_lower",
            "ci_upper",
            "composite_score",
            "is_statistically_significant",
            "calculated_at",
        ]
        read_only_fields = fields


class ExperimentPlanInputSerializer(StrictSerializer):
    """DESIGN.md §5.3 planning. baseline_mean and sd are measured from the context's last 28
    days of per-learner rewards when omitted."""

    context = serializers.ChoiceField(choices=Context.choices)  # type: ignore[assignment]
    mde = FiniteFloatField(help_text="The minimum detectable effect, relative (0.05 = 5 %).")
    baseline_mean = FiniteFloatField(required=False, allow_null=True)
    sd = FiniteFloatField(required=False, allow_null=True)
    alpha = FiniteFloatField(required=False, default=0.05, min_value=0.0001, max_value=0.5)
    power = FiniteFloatField(required=False, default=0.8, min_value=0.5, max_value=0.9999)
    variants = serializers.IntegerField(required=False, default=2, min_value=2, max_value=20)
    analysis = serializers.ChoiceField(
        choices=Experiment.Analysis.choices, required=False, default=Experiment.Analysis.SEQUENTIAL
    )
    sequential_tuning = FiniteFloatField(
        required=False, default=5000.0, min_value=1.0, max_value=1e9
    )
