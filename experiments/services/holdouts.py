"""Holdouts (DESIGN.md §3, §4 step 1b): randomised control groups that get the baseline."""

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from config.errors import ConflictError
from experiments.catalog import catalog_invalidate
from experiments.models import Context, Holdout
from experiments.services.webhooks import holdout_event_emit
from logs.models import AuditEvent
from logs.services import audit_event_record, changes_between, model_snapshot

HOLDOUT_FIELDS = ("name", "contexts", "percent", "salt", "is_active")
# Changing these of an active holdout would move learners in or out of it.
MEMBERSHIP_FIELDS = ("percent", "salt")


def _contexts_error(contexts: Any) -> str | None:
    if not isinstance(contexts, list) or any(c not in Context.values for c in contexts):
        return f"Give a list of contexts from {', '.join(Context.values)} (empty: every context)."
    if len(set(contexts)) != len(contexts):
        return "Each context at most once."
    return None


def _save(holdout: Holdout) -> None:
    message = _contexts_error(holdout.contexts)
    if message:
        raise ValidationError({"contexts": [message]})
    holdout.full_clean(validate_constraints=False)
    if holdout.is_active and holdout.started_at is None:
        holdout.started_at = timezone.now()
    holdout.save()
    catalog_invalidate()


@transaction.atomic
def holdout_create(*, actor: Any, data: dict[str, Any]) -> Holdout:
    holdout = Holdout(**{k: v for k, v in data.items() if k in HOLDOUT_FIELDS})
    _save(holdout)
    audit_event_record(
        actor=actor,
        action=AuditEvent.Action.HOLDOUT_CREATED,
        target=holdout,
        changes=changes_between({}, model_snapshot(holdout)),
    )
    holdout_event_emit(holdout=holdout)
    return holdout


@transaction.atomic
def holdout_update(*, actor: Any, holdout: Holdout, data: dict[str, Any]) -> Holdout:
    """Rename, change contexts, activate or deactivate. An active holdout's percent and salt
    are fixed (409): changing them would move learners between it and everyone else."""
    holdout = Holdout.objects.select_for_update().get(pk=holdout.pk)
    moved = [
        name for name in MEMBERSHIP_FIELDS if name in data and data[name] != getattr(holdout, name)
    ]
    if holdout.is_active and moved:
        raise ConflictError(
            f"Holdout {holdout.name!r} is active; changing its {' and '.join(moved)} would move "
            "learners in or out of it. Deactivate it and create a new holdout instead.",
            code="holdout_active",
            attr=moved[0],
        )
    before = model_snapshot(holdout)
    for name, value in data.items():
        if name in HOLDOUT_FIELDS:
            setattr(holdout, name, value)
    _save(holdout)
    changes = changes_between(before, model_snapshot(holdout))
    if changes:
        audit_event_record(
            actor=actor, action=AuditEvent.Action.HOLDOUT_CHANGED, target=holdout, changes=changes
        )
        holdout_event_emit(holdout=holdout)
    return holdout


def holdout_results_set(*, holdout: Holdout, results: dict[str, Any], evaluated_at: Any) -> None:
    """Store the hourly evaluation's figures (outcomes.services.holdouts)."""
    Holdout.objects.filter(pk=holdout.pk).update(results=results, evaluated_at=evaluated_at)
