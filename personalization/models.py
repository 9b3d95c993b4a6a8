from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models.functions import Lower

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
