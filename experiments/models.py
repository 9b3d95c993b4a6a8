import secrets
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.core.validators import MaxValueValidator, MinValueValidator, URLValidator
from django.db import models
from django.db.models import F, Q

from config.db import CurrentTransactionId, TimeStampedModel
from experiments.targeting import targeting_errors


class Context(models.TextChoices):
    MISSION = "MISSION", "Mission"
    CONTENT = "CONTENT", "Content"
    ASSESSMENT = "ASSESSMENT", "Assessment"
    SESSION = "SESSION", "Session"


def new_salt() -> str:
    return secrets.token_hex(8)


class Strategy(TimeStampedModel):
    """One way of personalizing a context. The catalog comes from fixtures; exactly one
    strategy per context is the baseline (conservative)."""

    class Key(models.TextChoices):
        PATTERN_HEAVY = "pattern_heavy", "Pattern-heavy"
        PREDICTION_HEAVY = "prediction_heavy", "Prediction-heavy"
        BALANCED = "balanced", "Balanced"
        CONSERVATIVE = "conservative", "Conservative"

    context = models.CharField(max_length=12, choices=Context.choices)
    key = models.CharField(max_length=40)
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    default_params = models.JSONField(default=dict)
    is_baseline = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)

    class Meta:
        verbose_name_plural = "strategies"
        ordering = ["context", "key"]
        constraints = [
            models.UniqueConstraint(
                fields=["context", "key"], name="experiments_strategy_context_key_unique"
            ),
            models.UniqueConstraint(
                fields=["context"],
                condition=Q(is_baseline=True),
                name="experiments_strategy_one_baseline_per_context",
                violation_error_message="This context already has a baseline strategy.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_context_display()}: {self.name}"


class StrategyConfig(TimeStampedModel):
    """A user's own copy of a strategy in a context: parameter overrides and the per-user
    bandit statistics. At most one is active per user and context."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="strategy_configs"
    )
    context = models.CharField(max_length=12, choices=Context.choices)
    strategy = models.ForeignKey(Strategy, on_delete=models.CASCADE, related_name="configs")
    params = models.JSONField(default=dict, blank=True)
    effectiveness_score = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(0.0), MaxValueValidator(100.0)]
    )
    # DESIGN.md §5.5: the posterior probability that this strategy beats the baseline for the
    # learner, as of the last reward recompute that touched the learner (the decide call
    # computes it afresh from the same statistics).
    confidence_score = models.FloatField(
        default=0.7, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)]
    )
    # Rebuilt from the raw rows by outcomes.recompute_bandit_rewards: decisions that chose this
    # config, outcomes attributed to it, the sum, sum of squares and mean of their rewards.
    times_selected = models.PositiveIntegerField(default=0)
    # Decisions of this config deleted by the retention purge (DECISION_RETENTION_DAYS): a
    # rebuild counts them with the live ones, so times_selected survives the purge.
    selections_purged = models.PositiveIntegerField(default=0, db_default=0)
    times_rewarded = models.PositiveIntegerField(default=0)
    total_reward = models.FloatField(default=0.0)
    # Σ reward²: with the count and the sum, the within-learner variance of §5.5.
    total_reward_sq = models.FloatField(default=0.0, db_default=0.0)
    avg_reward = models.FloatField(default=0.0)
    is_active = models.BooleanField(default=False)
    activated_at = models.DateTimeField(null=True, blank=True)
    deactivated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["user", "context", "strategy__key"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "strategy"], name="experiments_strategyconfig_user_strategy_unique"
            ),
            models.UniqueConstraint(
                fields=["user", "context"],
                condition=Q(is_active=True),
                name="experiments_strategyconfig_one_active_per_context",
            ),
            models.CheckConstraint(
                condition=Q(confidence_score__gte=0.0, confidence_score__lte=1.0),
                name="experiments_strategyconfig_confidence_range",
            ),
        ]
        indexes = [
            models.Index(fields=["user", "context"], name="exp_config_user_context_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} · {self.context} · {self.strategy_id}"


class Experiment(TimeStampedModel):
    class Type(models.TextChoices):
        AB_TEST = "AB_TEST", "A/B test"
        MULTIVARIATE = "MULTIVARIATE", "Multivariate"
        MULTI_ARMED_BANDIT = "MULTI_ARMED_BANDIT", "Multi-armed bandit"

    class Status(models.TextChoices):
        DRAFT = "DRAFT", "Draft"
        SCHEDULED = "SCHEDULED", "Scheduled"
        ACTIVE = "ACTIVE", "Active"
        COMPLETED = "COMPLETED", "Completed"
        CANCELLED = "CANCELLED", "Cancelled"

    class Algorithm(models.TextChoices):
        EPSILON_GREEDY = "EPSILON_GREEDY", "Epsilon-greedy"
        THOMPSON = "THOMPSON", "Thompson sampling"
        UCB1 = "UCB1", "UCB1"

    class Analysis(models.TextChoices):
        SEQUENTIAL = "SEQUENTIAL", "Sequential (always valid)"
        FIXED = "FIXED", "Fixed horizon"

    class Engine(models.TextChoices):
        FREQUENTIST = "FREQUENTIST", "Frequentist"
        BAYESIAN = "BAYESIAN", "Bayesian"

    class Metric(models.TextChoices):
        REWARD = "REWARD", "Reward"
        RETENTION = "RETENTION", "Retention"
        PERFORMANCE = "PERFORMANCE", "Performance"
        COMPLETION = "COMPLETION", "Completion"
        ENGAGEMENT = "ENGAGEMENT", "Engagement"

    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    experiment_type = models.CharField(max_length=20, choices=Type.choices)
    context = models.CharField(max_length=12, choices=Context.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    start_date = models.DateTimeField(null=True, blank=True)
    end_date = models.DateTimeField(null=True, blank=True)
    min_participants = models.PositiveIntegerField(default=20)
    min_duration_days = models.PositiveIntegerField(default=14)
    traffic_percent = models.FloatField(
        default=100.0, validators=[MinValueValidator(0.0), MaxValueValidator(100.0)]
    )
    salt = models.CharField(max_length=64, default=new_salt)
    algorithm = models.CharField(
        max_length=20, choices=Algorithm.choices, default=Algorithm.THOMPSON
    )
    epsilon = models.FloatField(
        default=0.1, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)]
    )
    min_arm_share = models.FloatField(
        default=0.01, validators=[MinValueValidator(0.0), MaxValueValidator(0.5)]
    )
    primary_metric = models.CharField(max_length=12, choices=Metric.choices, default=Metric.REWARD)
    alpha = models.FloatField(
        default=0.05, validators=[MinValueValidator(0.0001), MaxValueValidator(0.5)]
    )
    # How results are computed (DESIGN.md §5.3).
    analysis = models.CharField(
        max_length=10,
        choices=Analysis.choices,
        default=Analysis.SEQUENTIAL,
        help_text="Sequential results stay valid however often they are looked at; fixed "
        "horizon only at the planned end.",
    )
    sequential_tuning = models.FloatField(
        default=5000.0,
        validators=[MinValueValidator(1.0), MaxValueValidator(1e9)],
        help_text="N*: the number of learners at which the sequential interval is tightest.",
    )
    engine = models.CharField(max_length=11, choices=Engine.choices, default=Engine.FREQUENTIST)
    cuped = models.BooleanField(
        default=True,
        help_text="Adjust for each learner's primary metric over the 14 days before "
        "assignment (CUPED), which narrows intervals without biasing them.",
    )
    prior_mean = models.FloatField(
        null=True, blank=True, help_text="Bayesian engine: prior mean of the relative lift."
    )
    prior_sd = models.FloatField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1e-6)],
        help_text="Bayesian engine: prior sd of the relative lift (empty: a flat prior).",
    )
    # Who may enrol (DESIGN.md §4.1; empty: everyone) and where in the context's namespace
    # the experiment lives: ACTIVE experiments of a context hold disjoint ranges, so a
    # learner is in at most one of them.
    targeting = models.JSONField(
        default=list,
        blank=True,
        help_text='Rules that must all hold, e.g. [{"attr": "software_level", "op": "eq", '
        '"value": "BEGINNER"}]. Empty: everyone. Evaluated once, at assignment.',
    )
    namespace_start = models.FloatField(
        default=0.0, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)]
    )
    namespace_end = models.FloatField(
        default=1.0, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)]
    )
    shipped_at = models.DateTimeField(null=True, blank=True)
    # Cached results of the last evaluation (DESIGN.md §5.3).
    variant_metrics = models.JSONField(default=dict, blank=True)
    winning_variant = models.ForeignKey(
        "Variant", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    statistical_significance = models.BooleanField(null=True, blank=True)
    srm_p_value = models.FloatField(null=True, blank=True)
    evaluated_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(namespace_start__gte=0.0)
                & Q(namespace_end__lte=1.0)
                & Q(namespace_start__lt=F("namespace_end")),
                name="experiments_experiment_namespace_range",
                violation_error_message="The namespace range needs 0 ≤ start < end ≤ 1.",
            ),
            models.CheckConstraint(
                condition=Q(traffic_percent__gte=0.0, traffic_percent__lte=100.0),
                name="experiments_experiment_traffic_percent_range",
            ),
            models.CheckConstraint(
                condition=Q(epsilon__gte=0.0, epsilon__lte=1.0),
                name="experiments_experiment_epsilon_range",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "context"], name="exp_experiment_status_idx"),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        super().clean()
        if self.start_date and self.end_date and self.end_date <= self.start_date:
            raise ValidationError({"end_date": "The end must come after the start."})
        if self.namespace_start >= self.namespace_end:
            raise ValidationError(
                {"namespace_end": "The namespace range needs 0 ≤ start < end ≤ 1."}
            )
        errors = targeting_errors(self.targeting)
        if errors:
            raise ValidationError(errors)

    @property
    def is_bandit(self) -> bool:
        return self.experiment_type == self.Type.MULTI_ARMED_BANDIT


class Variant(TimeStampedModel):
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="variants")
    key = models.SlugField(max_length=50)
    name = models.CharField(max_length=100)
    strategy = models.ForeignKey(Strategy, on_delete=models.PROTECT, related_name="variants")
    params = models.JSONField(default=dict, blank=True)
    weight = models.FloatField(default=1.0, validators=[MinValueValidator(0.0)])
    is_control = models.BooleanField(default=False)

    class Meta:
        ordering = ["experiment", "-is_control", "key"]
        constraints = [
            models.UniqueConstraint(
                fields=["experiment", "key"], name="experiments_variant_experiment_key_unique"
            ),
            models.UniqueConstraint(
                fields=["experiment"],
                condition=Q(is_control=True),
                name="experiments_variant_one_control",
                violation_error_message="An experiment has exactly one control variant.",
            ),
            models.CheckConstraint(
                condition=Q(weight__gte=0.0), name="experiments_variant_weight_non_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.experiment_id}:{self.key}"


class BanditWeightSnapshot(TimeStampedModel):
    """Every reweighting of a bandit experiment, so staff can see allocation over time."""

    experiment = models.ForeignKey(
        Experiment, on_delete=models.CASCADE, related_name="weight_snapshots"
    )
    weights = models.JSONField(default=dict)
    seed = models.BigIntegerField(null=True, blank=True)
    computed_at = models.DateTimeField()

    class Meta:
        ordering = ["experiment", "computed_at"]
        indexes = [
            models.Index(fields=["experiment", "computed_at"], name="exp_snapshot_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.experiment_id} @ {self.computed_at:%Y-%m-%d %H:%M}"


class Assignment(TimeStampedModel):
    """A user's sticky place in an experiment."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="assignments")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assignments"
    )
    variant = models.ForeignKey(Variant, on_delete=models.CASCADE, related_name="assignments")
    propensity = models.FloatField()
    assigned_at = models.DateTimeField()
    metrics = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-assigned_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["experiment", "user"], name="experiments_assignment_experiment_user_unique"
            ),
        ]
        indexes = [
            models.Index(fields=["user", "experiment"], name="exp_assignment_user_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} → {self.variant_id}"


class Decision(models.Model):
    """The exposure log: what the decide call answered (DESIGN.md §4)."""

    class Source(models.TextChoices):
        DISABLED = "DISABLED", "Disabled by consent"
        HOLDOUT = "HOLDOUT", "Holdout"
        EXPERIMENT = "EXPERIMENT", "Experiment"
        BANDIT = "BANDIT", "Adaptive bandit"
        ROLLOUT = "ROLLOUT", "Rollout"
        BASELINE = "BASELINE", "Fixed"

    # user, strategy and experiment lead composite indexes (Meta.indexes), which serve their
    # foreign keys too: no index of their own on the largest table.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="decisions",
        db_index=False,
    )
    context = models.CharField(max_length=12, choices=Context.choices)
    strategy = models.ForeignKey(
        Strategy, on_delete=models.PROTECT, related_name="decisions", db_index=False
    )
    config = models.ForeignKey(
        StrategyConfig, null=True, blank=True, on_delete=models.SET_NULL, related_name="decisions"
    )
    experiment = models.ForeignKey(
        Experiment,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="decisions",
        db_index=False,
    )
    variant = models.ForeignKey(
        Variant, null=True, blank=True, on_delete=models.SET_NULL, related_name="decisions"
    )
    source = models.CharField(max_length=10, choices=Source.choices)
    params = models.JSONField(default=dict, blank=True)
    propensity = models.FloatField()
    personalization_applied = models.BooleanField()
    latency_ms = models.FloatField()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # The inserting transaction (PostgreSQL), for the reward run's watermark; an index on it
    # and a BRIN index on created_at (migration 0004, PostgreSQL only) find the newest rows
    # and the expired ones.
    txid = models.BigIntegerField(
        null=True, blank=True, editable=False, db_default=CurrentTransactionId()
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(propensity__gt=0.0, propensity__lte=1.0),
                name="experiments_decision_propensity_range",
            ),
        ]
        indexes = [
            models.Index(fields=["user", "-created_at"], name="exp_decision_user_time_idx"),
            models.Index(fields=["strategy", "created_at"], name="exp_decision_strategy_idx"),
            models.Index(fields=["experiment", "created_at"], name="exp_decision_experiment_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.context} → {self.strategy_id} ({self.source})"


class CacheVersion(models.Model):
    """The version of a cached read model (experiments/catalog.py: the strategy catalog, the
    population model), replaced after every change is committed. The decide call reads it in
    the same statement as the learner, so validating its in-process copy costs no round trip
    and follows the database exactly."""

    name = models.CharField(max_length=40, primary_key=True)
    version = models.BigIntegerField()

    def __str__(self) -> str:
        return f"{self.name} {self.version}"


class Holdout(TimeStampedModel):
    """A randomised control group (DESIGN.md §3): learners whose bucket falls below `percent`
    get the baseline in every context it covers (empty `contexts`: all), which measures what
    personalization as a whole is worth."""

    name = models.CharField(max_length=200, unique=True)
    contexts = models.JSONField(
        default=list, blank=True, help_text="Contexts it covers; empty: every context."
    )
    percent = models.FloatField(
        default=5.0,
        validators=[MinValueValidator(0.0), MaxValueValidator(20.0)],
        help_text="Share of learners held out, 0–20 %.",
    )
    salt = models.CharField(max_length=64, default=new_salt)
    is_active = models.BooleanField(default=True)
    started_at = models.DateTimeField(null=True, blank=True)
    # What personalization as a whole is worth, as of the last hourly evaluation.
    results = models.JSONField(default=dict, blank=True)
    evaluated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(percent__gte=0.0, percent__lte=20.0),
                name="experiments_holdout_percent_range",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def covers(self, context: str) -> bool:
        return not self.contexts or context in self.contexts


class Rollout(TimeStampedModel):
    """The default strategy of a context for learners whom no experiment, holdout or bandit
    decides for (§4 step 4), usually shipped from an experiment's winner."""

    context = models.CharField(max_length=12, choices=Context.choices)
    strategy = models.ForeignKey(Strategy, on_delete=models.PROTECT, related_name="rollouts")
    experiment = models.ForeignKey(
        Experiment, null=True, blank=True, on_delete=models.SET_NULL, related_name="rollouts"
    )
    variant = models.ForeignKey(
        "Variant", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    params = models.JSONField(default=dict, blank=True)
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    deactivated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["context"],
                condition=Q(is_active=True),
                name="experiments_rollout_one_active_per_context",
                violation_error_message="A context has at most one active rollout.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_context_display()}: {self.strategy.name}"


class WebhookEvent(models.TextChoices):
    """What a webhook endpoint can subscribe to (DESIGN.md §3). `ping` is sent only by
    `webhooks/{id}/test/`."""

    EXPERIMENT_STARTED = "experiment.started", "Experiment started"
    EXPERIMENT_COMPLETED = "experiment.completed", "Experiment completed"
    EXPERIMENT_CANCELLED = "experiment.cancelled", "Experiment cancelled"
    EXPERIMENT_SHIPPED = "experiment.shipped", "Experiment shipped"
    EXPERIMENT_SRM_DETECTED = "experiment.srm_detected", "Sample-ratio mismatch detected"
    EXPERIMENT_WINNER_FOUND = "experiment.winner_found", "Experiment winner found"
    HOLDOUT_CHANGED = "holdout.changed", "Holdout changed"
    USER_ERASED = "user.erased", "User erased"
    PING = "ping", "Ping (test deliveries)"


SUBSCRIBABLE_EVENTS = [event for event in WebhookEvent if event != WebhookEvent.PING]


def validate_webhook_events(value: object) -> None:
    if not isinstance(value, list) or not value:
        raise ValidationError("Subscribe to at least one event, as a list.")
    known = {str(event) for event in SUBSCRIBABLE_EVENTS}
    unknown = [event for event in value if not isinstance(event, str) or event not in known]
    if unknown:
        raise ValidationError(
            f"Unknown events {unknown!r}; choose from {', '.join(sorted(known))}."
        )
    if len(set(value)) != len(value):
        raise ValidationError("Each event may appear once.")


class WebhookEndpoint(TimeStampedModel):
    """Where Attune POSTs signed events. The secret signs every delivery; the API shows it
    once, when the endpoint is created."""

    name = models.CharField(max_length=100, blank=True)
    url = models.URLField(max_length=500, validators=[URLValidator(schemes=["http", "https"])])
    secret = models.CharField(max_length=200)
    events = models.JSONField(default=list, validators=[validate_webhook_events])
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name or urlsplit(self.url).hostname or self.url


class WebhookDelivery(TimeStampedModel):
    """One event for one endpoint, and how its delivery went (DESIGN.md §3, §6)."""

    class Status(models.TextChoices):
        PENDING = "PENDING", "Pending"
        DELIVERED = "DELIVERED", "Delivered"
        FAILED = "FAILED", "Failed"

    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    event = models.CharField(max_length=40, choices=WebhookEvent.choices)
    payload = models.JSONField(default=dict, encoder=DjangoJSONEncoder)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    response_code = models.PositiveSmallIntegerField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        verbose_name_plural = "webhook deliveries"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(status="DELIVERED") | Q(delivered_at__isnull=False),
                name="experiments_webhookdelivery_delivered_has_time",
            ),
            models.CheckConstraint(
                condition=~Q(status="PENDING") | Q(next_attempt_at__isnull=False),
                name="experiments_webhookdelivery_pending_has_next_attempt",
            ),
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at", "id"],
                condition=Q(status="PENDING"),
                name="exp_webhook_due_idx",
            ),
            models.Index(fields=["endpoint", "-created_at"], name="exp_webhook_endpoint_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_event_display()} to {self.endpoint} ({self.get_status_display()})"
