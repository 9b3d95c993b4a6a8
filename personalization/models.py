import json
import math
import re
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from config.db import TimeStampedModel


class SoftwareLevel(models.TextChoices):
    BEGINNER = "BEGINNER", "Beginner"
    INTERMEDIATE = "INTERMEDIATE", "Intermediate"
    ADVANCED = "ADVANCED", "Advanced"


class HardwareLevel(models.TextChoices):
    NONE = "NONE", "None"
    BASIC = "BASIC", "Basic"
    INTERMEDIATE = "INTERMEDIATE", "Intermediate"
    ADVANCED = "ADVANCED", "Advanced"


class HardwareDomain(models.TextChoices):
    BASIC_ELECTRONICS = "basic_electronics", "Basic electronics"
    ROBOTICS_KITS = "robotics_kits", "Robotics kits"
    GPUS_ACCELERATORS = "gpus_accelerators", "GPUs and accelerators"
    JETSON_EDGE = "jetson_edge", "Jetson and edge devices"
    EMBEDDED_SYSTEMS = "embedded_systems", "Embedded systems"
    SENSORS_ACTUATORS = "sensors_actuators", "Sensors and actuators"
    PRINTING_3D = "3d_printing", "3D printing"
    PCB_DESIGN = "pcb_design", "PCB design"


MAX_BACKGROUND_ITEMS = 50
MAX_BACKGROUND_ITEM_LENGTH = 50


def _short_strings(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) <= MAX_BACKGROUND_ITEMS
        and all(isinstance(v, str) and 0 < len(v) <= MAX_BACKGROUND_ITEM_LENGTH for v in value)
    )


def software_background_error(value: Any) -> str | None:
    """{level: BEGINNER|INTERMEDIATE|ADVANCED, languages: [str], frameworks: [str]}; an empty
    value means "not given"."""
    if value in (None, {}):
        return None
    if not isinstance(value, dict):
        return "Software background must be an object"
    unknown = set(value) - {"level", "languages", "frameworks"}
    if unknown:
        return f"Unknown software background keys: {', '.join(sorted(unknown))}"
    if not value.get("level"):
        return "Software level is required"
    if value["level"] not in SoftwareLevel.values:
        return "Invalid software level"
    for key in ("languages", "frameworks"):
        if key in value and not _short_strings(value[key]):
            return f"Software {key} must be a list of at most 50 strings of 1 to 50 characters"
    return None


ATTRIBUTE_KEY = re.compile(r"[a-z][a-z0-9_]{0,39}")
MAX_ATTRIBUTES = 50
MAX_ATTRIBUTES_BYTES = 4096


def attributes_error(value: Any) -> str | None:
    """The client's own targeting attributes (DESIGN.md §3): {name: text|number|bool}, at most
    50 keys named `[a-z][a-z0-9_]{0,39}`, at most 4 KB as JSON."""
    if value in (None, {}):
        return None
    if not isinstance(value, dict):
        return "Attributes must be an object of name: value."
    if len(value) > MAX_ATTRIBUTES:
        return f"At most {MAX_ATTRIBUTES} attributes ({len(value)} given)."
    for key, item in value.items():
        if not isinstance(key, str) or not ATTRIBUTE_KEY.fullmatch(key):
            return (
                f"Attribute name {key!r}: lower-case letters, digits and _, starting with a "
                "letter, at most 40 characters."
            )
        number = isinstance(item, int | float) and not isinstance(item, bool)
        if number and not math.isfinite(float(item)):
            return f"Attribute {key!r} must be a finite number."
        if not (number or isinstance(item, str | bool)):
            return f"Attribute {key!r} must be text, a number or true/false."
    size = len(json.dumps(value, separators=(",", ":")).encode())
    if size > MAX_ATTRIBUTES_BYTES:
        return f"Attributes take at most 4 KB as JSON ({size:,} bytes given)."
    return None


def hardware_background_error(value: Any) -> str | None:
    """{level: NONE|BASIC|INTERMEDIATE|ADVANCED, domains: [HardwareDomain]}; an empty value
    means "not given"."""
    if value in (None, {}):
        return None
    if not isinstance(value, dict):
        return "Hardware background must be an object"
    unknown = set(value) - {"level", "domains"}
    if unknown:
        return f"Unknown hardware background keys: {', '.join(sorted(unknown))}"
    if not value.get("level"):
        return "Hardware level is required"
    if value["level"] not in HardwareLevel.values:
        return "Invalid hardware level"
    domains = value.get("domains", [])
    if not isinstance(domains, list) or any(d not in HardwareDomain.values for d in domains):
        return "Invalid hardware domain"
    return None


def default_notification_settings() -> dict[str, bool]:
    return {"daily": True, "weekly": True}


class User(TimeStampedModel, AbstractUser):
    """A learner of the client application, a staff member, or a service account.

    `software_background` is {level, languages, frameworks}; `hardware_background` is
    {level, domains}. `profile_completed` is derived by the profile service.
    """

    email = models.EmailField("email address", blank=True)
    external_id = models.CharField(
        max_length=255,
        unique=True,
        null=True,
        blank=True,
        help_text="The client application's own id for this user.",
    )
    display_name = models.CharField(max_length=100, blank=True)
    software_background = models.JSONField(default=dict, blank=True)
    hardware_background = models.JSONField(default=dict, blank=True)
    profile_completed = models.BooleanField(default=False)
    behavioral_analysis_enabled = models.BooleanField(default=True)
    learning_style_profiling_enabled = models.BooleanField(default=True)
    share_anonymized_patterns = models.BooleanField(default=False)
    # The client application's own attributes of the learner, for experiment targeting.
    attributes = models.JSONField(default=dict, blank=True)
    # Set when this learner was merged into another (users/{id}/merge/): the row is a
    # tombstone without personal data, and its old reference finds the survivor (the
    # survivor's id; not a foreign key, so a tombstone is never data about the survivor).
    merged_into = models.BigIntegerField(null=True, blank=True, editable=False)

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"
        permissions = [("act_for_users", "Can act on behalf of other users (service accounts)")]
        constraints = [
            models.UniqueConstraint(
                Lower("email"),
                condition=~models.Q(email=""),
                name="personalization_user_email_unique",
                violation_error_message="A user with this email address already exists.",
            ),
        ]

    def __str__(self) -> str:
        return self.display_name or self.username

    def clean(self) -> None:
        super().clean()
        errors = {
            "software_background": software_background_error(self.software_background),
            "hardware_background": hardware_background_error(self.hardware_background),
            "attributes": attributes_error(self.attributes),
        }
        if any(errors.values()):
            raise ValidationError({field: msg for field, msg in errors.items() if msg})


class Preferences(TimeStampedModel):
    """A user's personalization preferences. Absent means the defaults; the selectors answer
    an unsaved instance with the field defaults then."""

    class Level(models.TextChoices):
        NONE = "NONE", "None"
        LOW = "LOW", "Low"
        MEDIUM = "MEDIUM", "Medium"
        HIGH = "HIGH", "High"

    class LearningStyle(models.TextChoices):
        VISUAL = "VISUAL", "Visual"
        AUDITORY = "AUDITORY", "Auditory"
        READING = "READING", "Reading"
        KINESTHETIC = "KINESTHETIC", "Kinesthetic"
        MIXED = "MIXED", "Mixed"

    class ReadingLength(models.TextChoices):
        SHORT = "SHORT", "Short"
        MEDIUM = "MEDIUM", "Medium"
        LONG = "LONG", "Long"

    class Tone(models.TextChoices):
        CASUAL = "CASUAL", "Casual"
        FORMAL = "FORMAL", "Formal"
        MYSTICAL = "MYSTICAL", "Mystical"

    MIN_DAILY_MINUTES = 5
    MAX_DAILY_MINUTES = 600

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="preferences"
    )
    personalization_level = models.CharField(
        max_length=10, choices=Level.choices, default=Level.MEDIUM
    )
    auto_adapt_enabled = models.BooleanField(default=True)
    mission_personalization_enabled = models.BooleanField(default=True)
    content_personalization_enabled = models.BooleanField(default=True)
    assessment_personalization_enabled = models.BooleanField(default=True)
    session_personalization_enabled = models.BooleanField(default=True)
    disabled_features = models.JSONField(default=list, blank=True)
    learning_style = models.CharField(
        max_length=12, choices=LearningStyle.choices, default=LearningStyle.MIXED
    )
    goals = models.JSONField(default=list, blank=True)
    daily_minutes = models.PositiveSmallIntegerField(
        default=30,
        validators=[MinValueValidator(MIN_DAILY_MINUTES), MaxValueValidator(MAX_DAILY_MINUTES)],
    )
    preferred_language = models.CharField(max_length=35, default="en")
    preferred_themes = models.JSONField(default=list, blank=True)
    preferred_services = models.JSONField(default=list, blank=True)
    notification_settings = models.JSONField(default=default_notification_settings, blank=True)
    reading_length = models.CharField(
        max_length=6, choices=ReadingLength.choices, default=ReadingLength.MEDIUM
    )
    tone_preference = models.CharField(max_length=8, choices=Tone.choices, default=Tone.CASUAL)
    last_reset_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "preferences"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(daily_minutes__gte=5, daily_minutes__lte=600),
                name="personalization_preferences_daily_minutes_range",
            ),
            models.CheckConstraint(
                condition=models.Q(personalization_level__in=["NONE", "LOW", "MEDIUM", "HIGH"]),
                name="personalization_preferences_level_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"Preferences of {self.user_id}"


class SkillAssessment(TimeStampedModel):
    """One measurement of a skill, in [0, 1]. The history the SkillProfile is derived from."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="skill_assessments"
    )
    skill = models.CharField(max_length=100)
    score = models.FloatField(validators=[MinValueValidator(0.0), MaxValueValidator(1.0)])
    assessed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-assessed_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(score__gte=0.0, score__lte=1.0),
                name="personalization_skillassessment_score_range",
            ),
        ]
        indexes = [
            models.Index(fields=["user", "assessed_at"], name="pers_skill_user_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.skill} = {self.score:.2f}"


class SkillProfile(TimeStampedModel):
    """Derived from the user's SkillAssessments by the skills service; never edited by hand."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="skill_profile"
    )
    skill_ratings = models.JSONField(default=dict, blank=True)
    weaknesses = models.JSONField(default=list, blank=True)
    learning_velocity = models.FloatField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Skill profile of {self.user_id}"


class Interaction(TimeStampedModel):
    """Something the user did in the client application (a reading, a chat, a rating…)."""

    class Type(models.TextChoices):
        READING = "READING", "Reading"
        CHAT = "CHAT", "Chat"
        FEEDBACK = "FEEDBACK", "Feedback"
        SHARE = "SHARE", "Share"
        VIEW = "VIEW", "View"
        PRACTICE = "PRACTICE", "Practice"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="interactions"
    )
    type = models.CharField(max_length=10, choices=Type.choices)
    service = models.CharField(max_length=100)
    # Nullable by contract (DESIGN.md §3): "no theme" differs from an empty one.
    theme = models.CharField(max_length=100, null=True, blank=True)  # noqa: DJ001
    rating = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(5)]
    )
    metadata = models.JSONField(default=dict, blank=True)
    occurred_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(rating__isnull=True) | models.Q(rating__gte=1, rating__lte=5),
                name="personalization_interaction_rating_range",
            ),
        ]
        indexes = [
            models.Index(fields=["user", "-occurred_at"], name="pers_inter_user_time_idx"),
            models.Index(fields=["user", "service"], name="pers_inter_user_service_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.service} ({self.occurred_at:%Y-%m-%d})"
