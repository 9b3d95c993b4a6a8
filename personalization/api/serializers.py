import re
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from config.api.serializers import (
    FiniteFloatField,
    SafeDateTimeField,
    StrictSerializer,
    not_in_future,
)
from personalization.models import (
    Interaction,
    Preferences,
    SkillAssessment,
    User,
    attributes_error,
    hardware_background_error,
    software_background_error,
)

BCP47 = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")


def short_strings(*, max_length: int, max_items: int, **kwargs: Any) -> serializers.ListField:
    return serializers.ListField(
        child=serializers.CharField(max_length=max_length), max_length=max_items, **kwargs
    )


# --- Profile ------------------------------------------------------------------------------


def _checked_attributes(value: Any) -> Any:
    message = attributes_error(value)
    if message:
        raise serializers.ValidationError(message)
    return value or {}


class ProfileUpdateSerializer(StrictSerializer):
    display_name = serializers.CharField(
        max_length=100,
        allow_blank=True,
        error_messages={"max_length": "Display name must be 100 characters or less"},
    )
    software_background = serializers.JSONField(allow_null=True)
    hardware_background = serializers.JSONField(allow_null=True)
    behavioral_analysis_enabled = serializers.BooleanField()
    learning_style_profiling_enabled = serializers.BooleanField()
    share_anonymized_patterns = serializers.BooleanField()
    attributes = serializers.JSONField(
        allow_null=True,
        help_text="The client's own targeting attributes: {name: text|number|bool}, at most 50 "
        "keys named [a-z][a-z0-9_]{0,39}, at most 4 KB. Replaces the stored set.",
    )

    def validate_attributes(self, value: Any) -> Any:
        return _checked_attributes(value)

    def validate_software_background(self, value: Any) -> Any:
        message = software_background_error(value)
        if message:
            raise serializers.ValidationError(message)
        return value or {}

    def validate_hardware_background(self, value: Any) -> Any:
        message = hardware_background_error(value)
        if message:
            raise serializers.ValidationError(message)
        return value or {}


class NotificationSettingsSerializer(StrictSerializer):
    """Either switch may be left out: PATCH keeps the stored value, PUT the default."""

    daily = serializers.BooleanField(required=False)
    weekly = serializers.BooleanField(required=False)


class PreferencesSerializer(StrictSerializer):
    """Input and output of `me/preferences/`."""

    personalization_level = serializers.ChoiceField(choices=Preferences.Level.choices)
    auto_adapt_enabled = serializers.BooleanField()
    mission_personalization_enabled = serializers.BooleanField()
    content_personalization_enabled = serializers.BooleanField()
    assessment_personalization_enabled = serializers.BooleanField()
    session_personalization_enabled = serializers.BooleanField()
    disabled_features = short_strings(max_length=50, max_items=50)
    learning_style = serializers.ChoiceField(choices=Preferences.LearningStyle.choices)
    goals = short_strings(max_length=200, max_items=20)
    daily_minutes = serializers.IntegerField(
        min_value=Preferences.MIN_DAILY_MINUTES, max_value=Preferences.MAX_DAILY_MINUTES
    )
    preferred_language = serializers.CharField(max_length=35)
    preferred_themes = short_strings(max_length=100, max_items=50)
    preferred_services = short_strings(max_length=100, max_items=50)
    notification_settings = NotificationSettingsSerializer()
    reading_length = serializers.ChoiceField(choices=Preferences.ReadingLength.choices)
    tone_preference = serializers.ChoiceField(choices=Preferences.Tone.choices)
    last_reset_at = serializers.DateTimeField(read_only=True, allow_null=True)
    is_default = serializers.SerializerMethodField()

    def validate_preferred_language(self, value: str) -> str:
        if not BCP47.match(value):
            raise serializers.ValidationError(
                "Use a BCP 47 language tag such as 'en', 'de' or 'pt-BR'."
            )
        return value

    def get_is_default(self, preferences: Preferences) -> bool:
        """True while nothing is stored for the user."""
        return preferences.pk is None


class ProfileSerializer(serializers.ModelSerializer):
    summary = serializers.SerializerMethodField()

    class Meta:
        model = User
        fields = [
            "id",
            "username",
            "email",
            "external_id",
            "display_name",
            "software_background",
            "hardware_background",
            "profile_completed",
            "behavioral_analysis_enabled",
            "learning_style_profiling_enabled",
            "share_anonymized_patterns",
            "attributes",
            "date_joined",
            "summary",
        ]
        read_only_fields = fields

    def get_summary(self, user: User) -> dict[str, Any]:
        """Preferences, skills, and the sections other apps contribute."""
        return {
            "preferences": PreferencesSerializer(self.context["preferences"]).data,
            **self.context["summary"],
        }


# --- Skills -------------------------------------------------------------------------------


class SkillAssessmentInputSerializer(StrictSerializer):
    skill = serializers.CharField(max_length=100)
    score = FiniteFloatField(min_value=0.0, max_value=1.0, places=9)
    assessed_at = SafeDateTimeField(required=False, validators=[not_in_future])


class SkillAssessmentSerializer(serializers.ModelSerializer):
    class Meta:
        model = SkillAssessment
        fields = ["id", "skill", "score", "assessed_at"]
        read_only_fields = fields


class SkillProfileSerializer(serializers.Serializer):
    skill_ratings = serializers.DictField(child=serializers.FloatField())
    weaknesses = serializers.ListField(child=serializers.CharField())
    learning_velocity = serializers.FloatField(allow_null=True)
    recent_assessments = SkillAssessmentSerializer(many=True)


# --- Interactions -------------------------------------------------------------------------


class InteractionInputSerializer(StrictSerializer):
    type = serializers.ChoiceField(choices=Interaction.Type.choices)
    service = serializers.CharField(max_length=100)
    theme = serializers.CharField(max_length=100, allow_null=True, required=False)
    rating = serializers.IntegerField(min_value=1, max_value=5, allow_null=True, required=False)
    metadata = serializers.DictField(required=False)
    occurred_at = SafeDateTimeField(required=False, validators=[not_in_future])


class InteractionSerializer(serializers.ModelSerializer):
    class Meta:
        model = Interaction
        fields = ["id", "user", "type", "service", "theme", "rating", "metadata", "occurred_at"]
        read_only_fields = fields


class InteractionBatchResultSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    results = InteractionSerializer(many=True)


class InteractionSummarySerializer(serializers.Serializer):
    popular_services = serializers.ListField(child=serializers.DictField())
    average_rating_by_service = serializers.ListField(child=serializers.DictField())
    engagement_per_day = serializers.ListField(child=serializers.DictField())
    favorite_themes = serializers.ListField(child=serializers.DictField())


# --- Users --------------------------------------------------------------------------------


@extend_schema_field(
    {"type": "string", "anyOf": [{"format": "email"}, {"maxLength": 0}], "maxLength": 254}
)
class OptionalEmailField(serializers.CharField):
    """An email address, or "" for none. Checked in to_internal_value rather than by a field
    validator, which the schema would document as `format: email` alone, refusing ""."""

    default_error_messages = {"invalid": "Enter a valid email address."}

    def __init__(self, **kwargs: Any):
        super().__init__(required=False, allow_blank=True, max_length=254, **kwargs)

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        if value:
            try:
                validate_email(value)
            except DjangoValidationError:
                self.fail("invalid")
        return value


class UserCreateSerializer(StrictSerializer):
    # It travels in the X-On-Behalf-Of header: printable ASCII, no surrounding space, and not
    # `id:…`, which names an Attune id there (DESIGN.md §7).
    external_id = serializers.RegexField(
        r"^(?!id:)[!-~](?:[ -~]*[!-~])?\Z",
        max_length=255,
        trim_whitespace=False,
        error_messages={
            "invalid": "An external id is printable ASCII without leading or trailing spaces, "
            "and does not start with 'id:' (that names an Attune id in X-On-Behalf-Of)."
        },
    )
    username = serializers.RegexField(r"^[\w.@+-]+\Z", max_length=150, required=False)
    email = OptionalEmailField()
    display_name = serializers.CharField(
        max_length=100,
        required=False,
        allow_blank=True,
        error_messages={"max_length": "Display name must be 100 characters or less"},
    )
    attributes = serializers.JSONField(
        required=False,
        help_text="The client's own targeting attributes: {name: text|number|bool}, at most 50 "
        "keys named [a-z][a-z0-9_]{0,39}, at most 4 KB.",
    )

    def validate_attributes(self, value: Any) -> Any:
        return _checked_attributes(value)


class UserSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = [
            "id",
            "username",
            "external_id",
            "email",
            "display_name",
            "profile_completed",
            "attributes",
            "is_active",
            "date_joined",
        ]
        read_only_fields = fields


class UserMergeSerializer(StrictSerializer):
    """{"from": <reference>}: the learner merged into this one, named as X-On-Behalf-Of
    names learners (an external id, or `id:<attune id>`)."""

    def get_fields(self) -> dict[str, serializers.Field]:
        return {
            "from": serializers.CharField(
                max_length=300,
                help_text="The learner to merge into this one: their external id, or "
                "id:<attune id>.",
            )
        }
