from rest_framework import serializers

from config.api.serializers import FiniteFloatField, StrictSerializer
from experiments.models import Context
from recommendations.models import (
    ContentItem,
    LearningPath,
    LearningPathItem,
    LearningPathStage,
    Recommendation,
)
from recommendations.services.generation import MAX_LIMIT


class ContentItemSerializer(serializers.ModelSerializer):
    class Meta:
        model = ContentItem
        fields = [
            "id",
            "key",
            "title",
            "skill",
            "content_type",
            "difficulty",
            "duration_minutes",
            "is_active",
        ]
        read_only_fields = fields


class ContentItemInputSerializer(StrictSerializer):
    key = serializers.SlugField(max_length=80)
    title = serializers.CharField(max_length=200)
    skill = serializers.CharField(max_length=100)
    content_type = serializers.ChoiceField(choices=ContentItem.Type.choices)
    difficulty = serializers.IntegerField(min_value=1, max_value=5)
    duration_minutes = serializers.IntegerField(min_value=1, max_value=600)
    is_active = serializers.BooleanField(required=False)

    def validate_key(self, value: str) -> str:
        others = ContentItem.objects.filter(key=value)
        if self.instance is not None:
            others = others.exclude(pk=self.instance.pk)
        if others.exists():
            raise serializers.ValidationError("A content item with this key already exists.")
        return value


class RecommendationSerializer(serializers.ModelSerializer):
    item = ContentItemSerializer(read_only=True)

    class Meta:
        model = Recommendation
        fields = [
            "id",
            "item",
            "context",
            "decision",
            "strategy_variant",
            "priority_score",
            "reason",
            "status",
            "responded_at",
            "applied_at",
            "completed_at",
            "effectiveness",
            "feedback",
            "created_at",
        ]
        read_only_fields = fields


class GenerateInputSerializer(StrictSerializer):
    context = serializers.ChoiceField(choices=Context.choices, default=Context.CONTENT)  # type: ignore[assignment]
    limit = serializers.IntegerField(min_value=1, max_value=MAX_LIMIT, default=5)


class GenerateResultSerializer(serializers.Serializer):
    decision = serializers.DictField()
    results = RecommendationSerializer(many=True)


class DeclineInputSerializer(StrictSerializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class CompleteInputSerializer(StrictSerializer):
    effectiveness = FiniteFloatField(
        min_value=0.0, max_value=1.0, required=False, allow_null=True, places=9
    )
    retention_score = FiniteFloatField(min_value=0.0, max_value=1.0, required=False, places=9)
    performance_score = FiniteFloatField(min_value=0.0, max_value=1.0, required=False, places=9)
    completion_rate = FiniteFloatField(min_value=0.0, max_value=1.0, required=False, places=9)
    engagement_score = FiniteFloatField(min_value=0.0, max_value=1.0, required=False, places=9)
    feedback = serializers.CharField(required=False, allow_blank=True, max_length=2000)

    def validate(self, attrs: dict) -> dict:
        scores = {"retention_score", "performance_score", "completion_rate", "engagement_score"}
        if attrs.get("effectiveness") is None and not scores & set(attrs):
            raise serializers.ValidationError(
                {"effectiveness": "Give the effectiveness (0–1) or at least one score."}
            )
        return attrs


class LearningPathItemSerializer(serializers.ModelSerializer):
    item = ContentItemSerializer(read_only=True)

    class Meta:
        model = LearningPathItem
        fields = ["id", "order", "item", "done", "done_at"]
        read_only_fields = fields


class LearningPathStageSerializer(serializers.ModelSerializer):
    items = LearningPathItemSerializer(many=True, read_only=True)

    class Meta:
        model = LearningPathStage
        fields = ["id", "order", "title", "status", "items"]
        read_only_fields = fields


class LearningPathSerializer(serializers.ModelSerializer):
    stages = LearningPathStageSerializer(many=True, read_only=True)

    class Meta:
        model = LearningPath
        fields = [
            "id",
            "title",
            "goal",
            "status",
            "progress",
            "completed_at",
            "created_at",
            "stages",
        ]
        read_only_fields = fields


class LearningPathCreateSerializer(StrictSerializer):
    goal = serializers.CharField(max_length=200)
    skills = serializers.ListField(
        child=serializers.CharField(max_length=100),
        required=False,
        max_length=10,
        allow_empty=False,
    )


class LearningPathUpdateSerializer(StrictSerializer):
    status = serializers.ChoiceField(
        choices=[
            (s, s)
            for s in (
                LearningPath.Status.ACTIVE,
                LearningPath.Status.PAUSED,
                LearningPath.Status.ABANDONED,
            )
        ]
    )
