from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from config.db import TimeStampedModel
from experiments.models import Context, Decision


class ContentItem(TimeStampedModel):
    """One piece of learning content the client application can show."""

    class Type(models.TextChoices):
        VIDEO = "VIDEO", "Video"
        ARTICLE = "ARTICLE", "Article"
        EXERCISE = "EXERCISE", "Exercise"
        QUIZ = "QUIZ", "Quiz"
        SCENARIO = "SCENARIO", "Scenario"

    key = models.SlugField(max_length=80, unique=True)
    title = models.CharField(max_length=200)
    skill = models.CharField(max_length=100)
    content_type = models.CharField(max_length=10, choices=Type.choices)
    difficulty = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(5)]
    )
    duration_minutes = models.PositiveIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(600)]
    )
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["skill", "difficulty", "key"]
        constraints = [
            models.CheckConstraint(
                condition=Q(difficulty__gte=1, difficulty__lte=5),
                name="recommendations_contentitem_difficulty_range",
            ),
        ]
        indexes = [
            models.Index(fields=["is_active", "skill"], name="rec_item_active_skill_idx"),
        ]

    def __str__(self) -> str:
        return self.title


class Recommendation(TimeStampedModel):
    """A content item recommended to a user, and what became of it."""

    class Status(models.TextChoices):
        PENDING = "PENDING", "Pending"
        ACCEPTED = "ACCEPTED", "Accepted"
        DECLINED = "DECLINED", "Declined"
        COMPLETED = "COMPLETED", "Completed"
        EXPIRED = "EXPIRED", "Expired"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="recommendations"
    )
    item = models.ForeignKey(ContentItem, on_delete=models.CASCADE, related_name="recommendations")
    context = models.CharField(max_length=12, choices=Context.choices, default=Context.CONTENT)
    decision = models.ForeignKey(
        Decision, null=True, blank=True, on_delete=models.SET_NULL, related_name="recommendations"
    )
    strategy_variant = models.CharField(max_length=40, blank=True)
    priority_score = models.FloatField()
    reason = models.TextField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    responded_at = models.DateTimeField(null=True, blank=True)
    applied_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    effectiveness = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)]
    )
    feedback = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "item"],
                condition=Q(status="PENDING"),
                name="recommendations_recommendation_one_pending_per_item",
            ),
        ]
        indexes = [
            models.Index(fields=["user", "status"], name="rec_rec_user_status_idx"),
            models.Index(fields=["status", "created_at"], name="rec_rec_status_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.item_id} for {self.user_id} ({self.status})"


class LearningPath(TimeStampedModel):
    """A staged route through content toward a goal."""

    class Status(models.TextChoices):
        ACTIVE = "ACTIVE", "Active"
        PAUSED = "PAUSED", "Paused"
        COMPLETED = "COMPLETED", "Completed"
        ABANDONED = "ABANDONED", "Abandoned"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="learning_paths"
    )
    title = models.CharField(max_length=200)
    goal = models.CharField(max_length=200)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    # Derived by the service from the items' done flags.
    progress = models.FloatField(default=0.0)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "goal"],
                condition=Q(status="ACTIVE"),
                name="recommendations_learningpath_one_active_per_goal",
                violation_error_message="There is already an active path for this goal.",
            ),
            models.CheckConstraint(
                condition=Q(progress__gte=0.0, progress__lte=1.0),
                name="recommendations_learningpath_progress_range",
            ),
        ]
        indexes = [
            models.Index(fields=["user", "status"], name="rec_path_user_status_idx"),
        ]

    def __str__(self) -> str:
        return self.title


class LearningPathStage(TimeStampedModel):
    class Status(models.TextChoices):
        PENDING = "PENDING", "Not started"
        IN_PROGRESS = "IN_PROGRESS", "In progress"
        COMPLETED = "COMPLETED", "Completed"

    path = models.ForeignKey(LearningPath, on_delete=models.CASCADE, related_name="stages")
    title = models.CharField(max_length=100)
    order = models.PositiveSmallIntegerField()
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)

    class Meta:
        ordering = ["path", "order"]
        constraints = [
            models.UniqueConstraint(
                fields=["path", "order"], name="recommendations_learningpathstage_order_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.order}. {self.title}"


class LearningPathItem(TimeStampedModel):
    stage = models.ForeignKey(LearningPathStage, on_delete=models.CASCADE, related_name="items")
    item = models.ForeignKey(ContentItem, on_delete=models.PROTECT, related_name="path_items")
    order = models.PositiveSmallIntegerField()
    done = models.BooleanField(default=False)
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["stage", "order"]
        constraints = [
            models.UniqueConstraint(
                fields=["stage", "order"], name="recommendations_learningpathitem_order_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.order}. {self.item_id}{' ✓' if self.done else ''}"
