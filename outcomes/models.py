from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from config.db import CurrentTransactionId, TimeStampedModel
from experiments.models import Context, Decision, Experiment, Strategy, StrategyConfig, Variant
from outcomes.samples import SCORE_FIELDS as SCORE_FIELDS  # the metrics, re-exported

SCORE_VALIDATORS = [MinValueValidator(0.0), MaxValueValidator(1.0)]


def score_field() -> models.FloatField:
    return models.FloatField(null=True, blank=True, validators=SCORE_VALIDATORS)


class Outcome(TimeStampedModel):
    """What happened after a decision, reported by the client; idempotent by (user, event_id)."""

    class Type(models.TextChoices):
        MISSION_COMPLETED = "MISSION_COMPLETED", "Mission completed"
        SESSION_COMPLETED = "SESSION_COMPLETED", "Session completed"
        ASSESSMENT_COMPLETED = "ASSESSMENT_COMPLETED", "Assessment completed"
        CONTENT_ENGAGED = "CONTENT_ENGAGED", "Content engaged"

    # Foreign keys whose lookups an index in Meta already serves carry no index of their own:
    # every index is paid for on each ingested outcome.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="outcomes",
        db_index=False,  # (user, event_id) and (user, -occurred_at)
    )
    event_id = models.CharField(max_length=64)
    # Fingerprint of the reported payload: a repeated event_id must carry the same one.
    payload_hash = models.CharField(max_length=64)
    decision = models.ForeignKey(
        Decision, null=True, blank=True, on_delete=models.SET_NULL, related_name="outcomes"
    )
    context = models.CharField(max_length=12, choices=Context.choices)
    strategy = models.ForeignKey(
        Strategy, null=True, blank=True, on_delete=models.SET_NULL, related_name="outcomes"
    )
    config = models.ForeignKey(
        StrategyConfig,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="outcomes",
        db_index=False,  # out_outcome_config_idx
    )
    experiment = models.ForeignKey(
        Experiment,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="outcomes",
        db_index=False,  # (experiment, user)
    )
    variant = models.ForeignKey(
        Variant, null=True, blank=True, on_delete=models.SET_NULL, related_name="outcomes"
    )
    personalization_applied = models.BooleanField(default=False)
    strategy_variant = models.CharField(max_length=40, blank=True)
    outcome_type = models.CharField(max_length=24, choices=Type.choices)
    occurred_at = models.DateTimeField()
    retention_score = score_field()
    performance_score = score_field()
    completion_rate = score_field()
    engagement_score = score_field()
    reward = models.FloatField(validators=SCORE_VALIDATORS)
    session_duration_minutes = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(0.0)]
    )
    content_type = models.CharField(max_length=20, blank=True)
    difficulty_level = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(5)]
    )
    # The inserting transaction (PostgreSQL), for the recomputations' watermarks; an index
    # on it (migration 0004, PostgreSQL only) finds the newest rows.
    txid = models.BigIntegerField(
        null=True, blank=True, editable=False, db_default=CurrentTransactionId()
    )

    class Meta:
        ordering = ["-occurred_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "event_id"], name="outcomes_outcome_user_event_unique"
            ),
            models.CheckConstraint(
                condition=Q(reward__gte=0.0, reward__lte=1.0),
                name="outcomes_outcome_reward_range",
            ),
            models.CheckConstraint(
                condition=Q(retention_score__isnull=False)
                | Q(performance_score__isnull=False)
                | Q(completion_rate__isnull=False)
                | Q(engagement_score__isnull=False),
                name="outcomes_outcome_at_least_one_score",
            ),
        ]
        indexes = [
            models.Index(fields=["user", "-occurred_at"], name="out_outcome_user_time_idx"),
            models.Index(fields=["context", "occurred_at"], name="out_outcome_context_time_idx"),
            models.Index(fields=["config"], name="out_outcome_config_idx"),
            models.Index(fields=["experiment", "user"], name="out_outcome_experiment_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.outcome_type} {self.event_id} ({self.reward:.2f})"


class Effectiveness(TimeStampedModel):
    """One strategy's effect in one two-week window (DESIGN.md §5.2), for everyone (GLOBAL,
    the learner as the unit: each learner's mean per metric) or for one user's config (USER,
    the outcome as the unit). Recomputing a window replaces its rows."""

    class Scope(models.TextChoices):
        GLOBAL = "GLOBAL", "Everyone"
        USER = "USER", "One user"

    scope = models.CharField(max_length=6, choices=Scope.choices)
    context = models.CharField(max_length=12, choices=Context.choices)
    strategy = models.ForeignKey(Strategy, on_delete=models.CASCADE, related_name="effectiveness")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="effectiveness",
        db_index=False,  # (user, -window_start)
    )
    config = models.ForeignKey(
        StrategyConfig,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="effectiveness",
    )
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    # The units of analysis: learners in GLOBAL rows, outcomes in USER rows (DESIGN.md §5.2).
    n_personalized = models.PositiveIntegerField()
    n_baseline = models.PositiveIntegerField()
    sample_size = models.PositiveIntegerField()
    # The outcomes behind each sample, in both scopes.
    n_outcomes_personalized = models.PositiveIntegerField(default=0, db_default=0)
    n_outcomes_baseline = models.PositiveIntegerField(default=0, db_default=0)
    retention_improvement = models.FloatField(null=True, blank=True)
    performance_improvement = models.FloatField(null=True, blank=True)
    completion_rate_change = models.FloatField(null=True, blank=True)
    engagement_change = models.FloatField(null=True, blank=True)
    mean_personalized = models.FloatField(null=True, blank=True)
    mean_baseline = models.FloatField(null=True, blank=True)
    difference = models.FloatField(null=True, blank=True)
    correlation = models.FloatField(null=True, blank=True)
    p_value = models.FloatField(null=True, blank=True)
    ci_lower = models.FloatField(null=True, blank=True)
    ci_upper = models.FloatField(null=True, blank=True)
    # Welch's standard error of `difference`; the config's confidence is Φ(difference / se).
    standard_error = models.FloatField(null=True, blank=True)
    composite_score = models.FloatField(null=True, blank=True)
    is_statistically_significant = models.BooleanField(default=False)
    calculated_at = models.DateTimeField()

    class Meta:
        verbose_name_plural = "effectiveness"
        ordering = ["-window_start", "scope", "strategy"]
        constraints = [
            # DESIGN.md §3: unique (scope, strategy, user, window_start); GLOBAL rows have no
            # user, so the rule is two partial constraints (NULLs never collide).
            models.UniqueConstraint(
                fields=["scope", "strategy", "window_start"],
                condition=Q(user__isnull=True),
                name="outcomes_effectiveness_global_window_unique",
            ),
            models.UniqueConstraint(
                fields=["scope", "strategy", "user", "window_start"],
                condition=Q(user__isnull=False),
                name="outcomes_effectiveness_user_window_unique",
            ),
            models.CheckConstraint(
                condition=Q(scope="GLOBAL", user__isnull=True)
                | Q(scope="USER", user__isnull=False),
                name="outcomes_effectiveness_scope_matches_user",
            ),
        ]
        indexes = [
            models.Index(fields=["user", "-window_start"], name="out_eff_user_window_idx"),
            models.Index(fields=["context", "window_start"], name="out_eff_context_window_idx"),
        ]

    def __str__(self) -> str:
        who = "everyone" if self.user_id is None else f"user {self.user_id}"
        return f"{self.strategy_id} for {who} from {self.window_start:%Y-%m-%d}"


class Watermark(models.Model):
    """How far an incremental recomputation has read (DESIGN.md §6), one row per task: on
    PostgreSQL the snapshot its last run read under, elsewhere the highest id per table."""

    task = models.CharField(max_length=64, primary_key=True)
    state = models.JSONField()
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.task
