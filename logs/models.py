from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

from config.db import TimeStampedModel


class AuditEvent(TimeStampedModel):
    """Who changed what, written by `logs.services` in the same transaction as the change.
    Never edited; kept after its target is gone."""

    class Action(models.TextChoices):
        ADMIN_CREATED = "ADMIN_CREATED", "Created in the admin"
        ADMIN_CHANGED = "ADMIN_CHANGED", "Changed in the admin"
        ADMIN_DELETED = "ADMIN_DELETED", "Deleted in the admin"
        PASSWORD_CHANGED = "PASSWORD_CHANGED", "Password changed"
        PREFERENCES_UPDATED = "PREFERENCES_UPDATED", "Preferences updated"
        PREFERENCES_RESET = "PREFERENCES_RESET", "Preferences reset"
        PROFILE_UPDATED = "PROFILE_UPDATED", "Profile updated"
        USER_CREATED = "USER_CREATED", "User created"
        USER_ERASED = "USER_ERASED", "User erased"
        USER_MERGED = "USER_MERGED", "User merged"
        EXPERIMENT_CREATED = "EXPERIMENT_CREATED", "Experiment created"
        EXPERIMENT_UPDATED = "EXPERIMENT_UPDATED", "Experiment updated"
        EXPERIMENT_SCHEDULED = "EXPERIMENT_SCHEDULED", "Experiment scheduled"
        EXPERIMENT_STARTED = "EXPERIMENT_STARTED", "Experiment started"
        EXPERIMENT_COMPLETED = "EXPERIMENT_COMPLETED", "Experiment completed"
        EXPERIMENT_CANCELLED = "EXPERIMENT_CANCELLED", "Experiment cancelled"
        STRATEGY_CHANGED = "STRATEGY_CHANGED", "Strategy changed"
        CONFIG_CHANGED = "CONFIG_CHANGED", "Strategy config changed"
        CONTENT_CHANGED = "CONTENT_CHANGED", "Content item changed"
        REQUEST_LOGS_PURGED = "REQUEST_LOGS_PURGED", "Request logs purged"
        HOLDOUT_CREATED = "HOLDOUT_CREATED", "Holdout created"
        HOLDOUT_CHANGED = "HOLDOUT_CHANGED", "Holdout changed"
        EXPERIMENT_SHIPPED = "EXPERIMENT_SHIPPED", "Experiment shipped"
        ROLLOUT_DEACTIVATED = "ROLLOUT_DEACTIVATED", "Rollout deactivated"
        WEBHOOK_CHANGED = "WEBHOOK_CHANGED", "Webhook endpoint changed"
        WEBHOOK_RETRIED = "WEBHOOK_RETRIED", "Webhook delivery retried"

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="audit_events",
    )
    action = models.CharField(max_length=40, choices=Action.choices)
    target_type = models.CharField(max_length=100, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    changes = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["target_type", "target_id"], name="logs_audit_target_idx"),
            models.Index(fields=["actor", "-created_at"], name="logs_audit_actor_idx"),
            models.Index(fields=["action", "-created_at"], name="logs_audit_action_idx"),
            models.Index(fields=["-created_at"], name="logs_audit_created_idx"),
        ]

    def __str__(self) -> str:
        target = f"{self.target_type}#{self.target_id}" if self.target_type else "—"
        return f"{self.get_action_display()} {target}"


class RequestLog(TimeStampedModel):
    """One request from the client application to a personalization or translation service,
    as the client observed it (seed 003)."""

    class Status(models.TextChoices):
        SUCCESS = "SUCCESS", "Success"
        FAILURE = "FAILURE", "Failure"
        TIMEOUT = "TIMEOUT", "Timeout"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="%(class)s_entries"
    )
    chapter_id = models.CharField(max_length=100)
    request_timestamp = models.DateTimeField()
    response_time_ms = models.PositiveIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices)
    error_message = models.TextField(blank=True)

    class Meta:
        abstract = True
        ordering = ["-request_timestamp", "-id"]


class PersonalizationLog(RequestLog):
    class Meta(RequestLog.Meta):
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=RequestLog.Status.values),
                name="logs_personalizationlog_status_valid",
            ),
        ]
        indexes = [
            models.Index(fields=["user", "-request_timestamp"], name="logs_plog_user_time_idx"),
            models.Index(fields=["request_timestamp"], name="logs_plog_time_idx"),
            models.Index(fields=["chapter_id"], name="logs_plog_chapter_idx"),
        ]

    def __str__(self) -> str:
        return f"personalization {self.chapter_id} {self.status} {self.response_time_ms} ms"


class TranslationLog(RequestLog):
    target_language = models.CharField(max_length=10, help_text="BCP 47 tag, e.g. 'de' or 'pt-BR'.")

    class Meta(RequestLog.Meta):
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=RequestLog.Status.values),
                name="logs_translationlog_status_valid",
            ),
        ]
        indexes = [
            models.Index(fields=["user", "-request_timestamp"], name="logs_tlog_user_time_idx"),
            models.Index(fields=["request_timestamp"], name="logs_tlog_time_idx"),
            models.Index(fields=["chapter_id"], name="logs_tlog_chapter_idx"),
        ]

    def __str__(self) -> str:
        return (
            f"translation {self.chapter_id} → {self.target_language} {self.status} "
            f"{self.response_time_ms} ms"
        )
