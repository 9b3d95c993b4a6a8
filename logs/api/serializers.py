from rest_framework import serializers

from config.api.serializers import SafeDateTimeField, StrictSerializer, not_in_future
from logs.models import AuditEvent, PersonalizationLog, RequestLog, TranslationLog


class RequestLogInputSerializer(StrictSerializer):
    chapter_id = serializers.CharField(max_length=100)
    request_timestamp = SafeDateTimeField(required=False, validators=[not_in_future])
    response_time_ms = serializers.IntegerField(min_value=0, max_value=2_147_483_647)
    status = serializers.ChoiceField(choices=RequestLog.Status.choices)
    error_message = serializers.CharField(required=False, allow_blank=True, max_length=10_000)


class TranslationLogInputSerializer(RequestLogInputSerializer):
    target_language = serializers.CharField(max_length=10)


class PersonalizationLogOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = PersonalizationLog
        fields = [
            "id",
            "user",
            "chapter_id",
            "request_timestamp",
            "response_time_ms",
            "status",
            "error_message",
            "created_at",
        ]
        read_only_fields = fields


class TranslationLogOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = TranslationLog
        fields = [*PersonalizationLogOutputSerializer.Meta.fields, "target_language"]
        read_only_fields = fields


class RequestLogStatsRowSerializer(serializers.Serializer):
    chapter_id = serializers.CharField()
    count = serializers.IntegerField()
    failure_rate = serializers.FloatField()
    timeout_rate = serializers.FloatField()
    p50_response_time_ms = serializers.FloatField()
    p95_response_time_ms = serializers.FloatField()


class RequestLogStatsSerializer(serializers.Serializer):
    personalization = RequestLogStatsRowSerializer(many=True)
    translation = RequestLogStatsRowSerializer(many=True)


class AuditEventOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = ["id", "actor", "action", "target_type", "target_id", "changes", "created_at"]
        read_only_fields = fields
