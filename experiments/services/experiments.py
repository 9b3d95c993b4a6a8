"""Experiments: creation, edits while in DRAFT, and the lifecycle (DESIGN.md §3, §5.3)."""

import datetime
import json
import math
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from config.arrays import AnyOf, update_columns
from config.db import serialized
from config.errors import ConflictError
from experiments.catalog import catalog_invalidate
from experiments.models import Assignment, Experiment, Strategy, Variant, WebhookEvent
from experiments.params import params_errors
from experiments.services.webhooks import experiment_event_emit
from logs.models import AuditEvent
from logs.services import audit_event_record, changes_between, model_snapshot

Status = Experiment.Status

# DESIGN.md §3: DRAFT → SCHEDULED → ACTIVE → COMPLETED / CANCELLED, DRAFT → ACTIVE directly.
ALLOWED: dict[str, set[str]] = {
    Status.DRAFT: {Status.SCHEDULED, Status.ACTIVE, Status.CANCELLED},
    Status.SCHEDULED: {Status.ACTIVE, Status.CANCELLED},
    Status.ACTIVE: {Status.COMPLETED, Status.CANCELLED},
    Status.COMPLETED: set(),
    Status.CANCELLED: set(),
}
ACTION_BY_STATUS: dict[str, str] = {
    Status.SCHEDULED: AuditEvent.Action.EXPERIMENT_SCHEDULED,
    Status.ACTIVE: AuditEvent.Action.EXPERIMENT_STARTED,
    Status.COMPLETED: AuditEvent.Action.EXPERIMENT_COMPLETED,
    Status.CANCELLED: AuditEvent.Action.EXPERIMENT_CANCELLED,
}
WEBHOOK_EVENT_BY_STATUS: dict[str, str] = {
    Status.ACTIVE: WebhookEvent.EXPERIMENT_STARTED,
    Status.COMPLETED: WebhookEvent.EXPERIMENT_COMPLETED,
    Status.CANCELLED: WebhookEvent.EXPERIMENT_CANCELLED,
}
EXPERIMENT_FIELDS = (
    "name",
    "description",
    "experiment_type",
    "context",
    "start_date",
    "end_date",
    "min_participants",
    "min_duration_days",
    "traffic_percent",
    "salt",
    "algorithm",
    "epsilon",
    "min_arm_share",
    "primary_metric",
    "alpha",
    "analysis",
    "sequential_tuning",
    "engine",
    "cuped",
    "prior_mean",
    "prior_sd",
    "targeting",
    "namespace_start",
    "namespace_end",
)
VARIANT_FIELDS = ("key", "name", "strategy", "params", "weight", "is_control")
# The sample-ratio p-value below which the evaluation reports a mismatch (outcomes.analysis).
SRM_ALERT_P = 0.001
MAX_WEIGHT = 1_000_000.0


def check_transition(experiment: Experiment, target: str) -> None:
    if target not in ALLOWED[experiment.status]:
        raise ConflictError(
            f"Experiment {experiment.name!r} is {experiment.status}; it cannot become {target}.",
            code="illegal_transition",
        )


def _variant_errors(experiment: Experiment, variants: list[dict[str, Any]]) -> dict[str, Any]:
    """Field errors of nested variants, keyed like the API's `variants.<i>.<field>`."""
    errors: dict[str, Any] = {}
    keys = [v.get("key") for v in variants]
    for index, data in enumerate(variants):
        prefix = f"variants.{index}"
        strategy: Strategy | None = data.get("strategy")
        if strategy is not None and strategy.context != experiment.context:
            errors[f"{prefix}.strategy"] = (
                f"Strategy {strategy.key!r} belongs to {strategy.context}, "
                f"not to the experiment's context {experiment.context}."
            )
        weight = data.get("weight", 1.0)
        if not math.isfinite(weight) or weight < 0 or weight > MAX_WEIGHT:
            errors[f"{prefix}.weight"] = f"Weights are numbers from 0 to {MAX_WEIGHT:,.0f}."
        if keys.count(data.get("key")) > 1:
            errors[f"{prefix}.key"] = "Variant keys must be unique within the experiment."
        problems = params_errors(experiment.context, data.get("params") or {}, complete=False)
        if problems:
            errors[f"{prefix}.params"] = [f"{name}: {msg}" for name, msg in problems.items()]
    if variants and sum(v.get("weight", 1.0) for v in variants) <= 0:
        errors["variants"] = "Weights may not all be zero."
    if sum(1 for v in variants if v.get("is_control")) > 1:
        errors["variants"] = "Exactly one variant is the control."
    return errors


def _replace_variants(experiment: Experiment, variants: list[dict[str, Any]]) -> None:
    experiment.variants.all().delete()
    Variant.objects.bulk_create(
        [
            Variant(experiment=experiment, **{k: v for k, v in data.items() if k in VARIANT_FIELDS})
            for data in variants
        ]
    )


def _save(experiment: Experiment) -> None:
    experiment.full_clean(exclude=["winning_variant"], validate_constraints=False)
    try:
        with transaction.atomic():
            experiment.save()
    except IntegrityError as exc:  # a check constraint the validation above did not foresee
        raise ConflictError(f"Experiment {experiment.name!r} could not be saved: {exc}.") from exc


def namespace_overlap(experiment: Experiment) -> Experiment | None:
    """The ACTIVE experiment of the same context whose namespace range overlaps this one's
    (ranges are half-open, [start, end)), if any."""
    return (
        Experiment.objects.filter(
            context=experiment.context,
            status=Status.ACTIVE,
            namespace_start__lt=experiment.namespace_end,
            namespace_end__gt=experiment.namespace_start,
        )
        .exclude(pk=experiment.pk)
        .order_by("namespace_start")
        .first()
    )


@transaction.atomic
def experiment_create(
    *, actor: Any, data: dict[str, Any], variants: list[dict[str, Any]] | None = None
) -> Experiment:
    experiment = Experiment(**{k: v for k, v in data.items() if k in EXPERIMENT_FIELDS})
    variants = variants or []
    errors = _variant_errors(experiment, variants)
    if errors:
        raise ValidationError(errors)
    _save(experiment)
    _replace_variants(experiment, variants)
    audit_event_record(
        actor=actor,
        action=AuditEvent.Action.EXPERIMENT_CREATED,
        target=experiment,
        changes=changes_between({}, model_snapshot(experiment))
        | {"variants": {"old": None, "new": [v["key"] for v in variants]}},
    )
    return experiment


@transaction.atomic
def experiment_update(
    *,
    actor: Any,
    experiment: Experiment,
    data: dict[str, Any],
    variants: list[dict[str, Any]] | None = None,
) -> Experiment:
    """Edit an experiment and, when given, replace its variants. Only in DRAFT (409 after)."""
    experiment = Experiment.objects.select_for_update().get(pk=experiment.pk)
    if experiment.status != Status.DRAFT:
        raise ConflictError(
            f"Experiment {experiment.name!r} is {experiment.status}; "
            "only DRAFT experiments and their variants can be edited.",
            code="not_editable",
        )
    before = model_snapshot(experiment)
    before_variants = sorted(experiment.variants.values_list("key", flat=True))
    for name, value in data.items():
        if name in EXPERIMENT_FIELDS:
            setattr(experiment, name, value)
    current = variants if variants is not None else _current_variants(experiment)
    errors = _variant_errors(experiment, current)
    if errors:
        raise ValidationError(errors)
    _save(experiment)
    if variants is not None:
        _replace_variants(experiment, variants)
    changes = changes_between(before, model_snapshot(experiment))
    after_variants = sorted(experiment.variants.values_list("key", flat=True))
    if variants is not None:
        changes["variants"] = {"old": before_variants, "new": after_variants}
    audit_event_record(
        actor=actor, action=AuditEvent.Action.EXPERIMENT_UPDATED, target=experiment, changes=changes
    )
    return experiment


def _current_variants(experiment: Experiment) -> list[dict[str, Any]]:
    return [
        {name: getattr(v, name) for name in VARIANT_FIELDS}
        for v in experiment.variants.select_related("strategy")
    ]


def start_problems(experiment: Experiment) -> list[str]:
    """What keeps an experiment from starting (empty when it may start)."""
    variants = list(experiment.variants.select_related("strategy"))
    problems = []
    controls = sum(1 for v in variants if v.is_control)
    if controls != 1:
        problems.append(f"needs exactly one control variant (has {controls})")
    if experiment.experiment_type == Experiment.Type.AB_TEST and len(variants) != 2:
        problems.append(f"an AB_TEST needs exactly two variants (has {len(variants)})")
    elif len(variants) < 2:
        problems.append(f"needs at least two variants (has {len(variants)})")
    if not experiment.is_bandit and any(v.weight <= 0 for v in variants):
        problems.append("every variant needs a positive weight")
    foreign = [v.key for v in variants if v.strategy.context != experiment.context]
    if foreign:
        problems.append(f"variants {', '.join(foreign)} use strategies of another context")
    if experiment.is_bandit and experiment.min_arm_share * len(variants) > 1:
        problems.append(
            f"min_arm_share {experiment.min_arm_share} × {len(variants)} variants exceeds 1"
        )
    inactive = [v.key for v in variants if not v.strategy.is_active]
    if inactive:
        problems.append(f"variants {', '.join(inactive)} use inactive strategies")
    return problems


def _transition(
    experiment: Experiment, target: str, *, actor: Any, changes: dict[str, Any] | None = None
) -> Experiment:
    before = model_snapshot(experiment)
    experiment.status = target
    _save(experiment)
    audit_event_record(
        actor=actor,
        action=ACTION_BY_STATUS[target],
        target=experiment,
        changes=changes_between(before, model_snapshot(experiment)) | (changes or {}),
    )
    if target in WEBHOOK_EVENT_BY_STATUS:
        experiment_event_emit(event=WEBHOOK_EVENT_BY_STATUS[target], experiment=experiment)
    catalog_invalidate()
    return experiment


@transaction.atomic
def experiment_start(
    *, actor: Any, experiment: Experiment, start_date: datetime.datetime | None = None
) -> Experiment:
    """Start now, or schedule for `start_date` in the future (SCHEDULED; the hourly task
    starts it). Bandits start with equal weights."""
    experiment = Experiment.objects.select_for_update().get(pk=experiment.pk)
    now = timezone.now()
    target = Status.SCHEDULED if start_date and start_date > now else Status.ACTIVE
    check_transition(experiment, target)
    problems = start_problems(experiment)
    if problems:
        raise ConflictError(
            f"Experiment {experiment.name!r} cannot start: {'; '.join(problems)}.",
            code="not_ready",
        )
    if target == Status.ACTIVE:
        # Starts in one context are serialised, so two overlapping ranges cannot both pass
        # the check below.
        serialized(f"experiments.start:{experiment.context}")
        running = namespace_overlap(experiment)
        if running is not None:
            raise ConflictError(
                f"Experiment {running.name!r} (id {running.pk}) is ACTIVE in "
                f"{experiment.context} on namespace [{running.namespace_start:g}, "
                f"{running.namespace_end:g}), which overlaps [{experiment.namespace_start:g}, "
                f"{experiment.namespace_end:g}); give this one a disjoint range, or complete "
                "or cancel the other first.",
                code="namespace_overlap",
                attr="namespace_start",
            )
        if experiment.is_bandit:
            count = experiment.variants.count()
            experiment.variants.update(weight=1.0 / count)
        experiment.start_date = now
    else:
        experiment.start_date = start_date
    return _transition(experiment, target, actor=actor)


def readiness(experiment: Experiment, *, now: datetime.datetime | None = None) -> dict[str, Any]:
    """DESIGN.md §5.3: ready once participants ≥ min_participants and the experiment has run
    min_duration_days."""
    now = now or timezone.now()
    participants = experiment.assignments.count()
    days = (now - experiment.start_date).total_seconds() / 86400 if experiment.start_date else 0.0
    return {
        "participants": participants,
        "days_running": round(days, 2),
        "ready": participants >= experiment.min_participants
        and days >= experiment.min_duration_days,
    }


@transaction.atomic
def experiment_complete(*, actor: Any, experiment: Experiment, force: bool = False) -> Experiment:
    experiment = Experiment.objects.select_for_update().get(pk=experiment.pk)
    check_transition(experiment, Status.COMPLETED)
    ready = readiness(experiment)
    if not ready["ready"] and not force:
        raise ConflictError(
            f"Experiment {experiment.name!r} is not ready to complete: "
            f"{ready['participants']} of {experiment.min_participants} participants, "
            f"{ready['days_running']} of {experiment.min_duration_days} days. "
            "Send force=true to complete it anyway (recorded in the audit trail).",
            code="not_ready",
        )
    experiment.completed_at = timezone.now()
    extra = {"forced": {"old": None, "new": True}} if force and not ready["ready"] else {}
    return _transition(experiment, Status.COMPLETED, actor=actor, changes=extra)


@transaction.atomic
def experiment_cancel(*, actor: Any, experiment: Experiment) -> Experiment:
    experiment = Experiment.objects.select_for_update().get(pk=experiment.pk)
    check_transition(experiment, Status.CANCELLED)
    return _transition(experiment, Status.CANCELLED, actor=actor)


def experiment_results_store(
    *,
    experiment: Experiment,
    results: dict[str, Any],
    winning: Variant | None,
    srm_p_value: float | None,
    srm_mismatch: bool,
    evaluated_at: datetime.datetime,
) -> None:
    """Cache an evaluation's results on the experiment (outcomes.services.evaluation), and
    tell webhooks when a winner is newly found or a sample ratio mismatch newly appears (not
    at every hourly evaluation)."""
    before = (
        Experiment.objects.filter(pk=experiment.pk)
        .values_list("winning_variant_id", "srm_p_value")
        .first()
    )
    Experiment.objects.filter(pk=experiment.pk).update(
        variant_metrics=results,
        winning_variant=winning,
        statistical_significance=winning is not None,
        srm_p_value=srm_p_value,
        evaluated_at=evaluated_at,
    )
    if before is None:
        return
    previous_winner, previous_srm = before
    experiment.winning_variant = winning
    if winning is not None and winning.pk != previous_winner:
        experiment_event_emit(event=WebhookEvent.EXPERIMENT_WINNER_FOUND, experiment=experiment)
    was_mismatch = previous_srm is not None and previous_srm < SRM_ALERT_P
    if srm_mismatch and not was_mismatch:
        experiment_event_emit(
            event=WebhookEvent.EXPERIMENT_SRM_DETECTED,
            experiment=experiment,
            extra={"srm_p_value": srm_p_value},
        )


def assignment_metrics_store(
    *, assignment_ids: list[int], values: list[float | None], counts: list[int]
) -> int:
    """Each assignment's own figures {value, outcomes} (the hourly evaluation's per-learner
    metric), written only where they changed: one read and, on PostgreSQL, one UPDATE from
    arrays whatever the number of participants. Answers the number of rows written."""
    current = dict(
        Assignment.objects.filter(AnyOf(F("pk"), assignment_ids)).values_list("id", "metrics")
    )
    changed: list[int] = []
    metrics: list[Any] = []
    for assignment_id, value, outcomes in zip(assignment_ids, values, counts, strict=True):
        fresh = {"value": value, "outcomes": outcomes}
        if current.get(assignment_id) != fresh:
            changed.append(assignment_id)
            # PostgreSQL takes the jsonb values as text, cast by update_columns' array type.
            metrics.append(json.dumps(fresh) if connection.vendor == "postgresql" else fresh)
    return update_columns(Assignment, changed, {"metrics": metrics})
