"""The strategy catalog."""

import json
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from config.errors import ConflictError
from experiments.catalog import catalog_invalidate
from experiments.models import Experiment, Strategy
from experiments.params import params_errors
from logs.models import AuditEvent
from logs.services import audit_event_record, changes_between, model_snapshot

EDITABLE_FIELDS = (
    "context",
    "key",
    "name",
    "description",
    "default_params",
    "is_baseline",
    "is_active",
)


def _validate(strategy: Strategy) -> None:
    errors = params_errors(strategy.context, strategy.default_params, complete=True)
    if errors:
        raise ValidationError(
            {"default_params": [f"{name}: {message}" for name, message in errors.items()]}
        )
    strategy.full_clean()


def _demote_other_baselines(strategy: Strategy) -> None:
    if strategy.is_baseline:
        Strategy.objects.filter(context=strategy.context, is_baseline=True).exclude(
            pk=strategy.pk
        ).update(is_baseline=False)


@transaction.atomic
def strategy_create(*, actor: Any, data: dict[str, Any]) -> Strategy:
    strategy = Strategy(**data)
    if strategy.is_baseline and not strategy.is_active:
        raise ValidationError({"is_active": ["The baseline must stay active."]})
    _demote_other_baselines(strategy)
    _validate(strategy)
    strategy.save()
    audit_event_record(
        actor=actor,
        action=AuditEvent.Action.STRATEGY_CHANGED,
        target=strategy,
        changes=changes_between({}, model_snapshot(strategy)),
    )
    catalog_invalidate()
    return strategy


@transaction.atomic
def strategy_update(*, actor: Any, strategy: Strategy, data: dict[str, Any]) -> Strategy:
    """Change a strategy. Making it the baseline takes the role from the context's other one;
    a baseline cannot be switched off or demoted directly (name another baseline instead)."""
    strategy = Strategy.objects.select_for_update().get(pk=strategy.pk)
    before = model_snapshot(strategy)
    if strategy.is_baseline and (
        data.get("is_baseline") is False or data.get("is_active") is False
    ):
        raise ValidationError(
            {"is_baseline": ["Each context needs a baseline: make another strategy the baseline."]}
        )
    if data.get("context", strategy.context) != strategy.context:
        raise ValidationError(
            {"context": ["A strategy's context cannot change; create a new strategy."]}
        )
    if strategy.is_active and data.get("is_active") is False:
        _refuse_if_running(strategy)
    for name, value in data.items():
        setattr(strategy, name, value)
    if strategy.is_baseline and not strategy.is_active:
        raise ValidationError({"is_active": ["The baseline must stay active."]})
    _demote_other_baselines(strategy)
    _validate(strategy)
    strategy.save()
    changes = changes_between(before, model_snapshot(strategy))
    if changes:
        audit_event_record(
            actor=actor, action=AuditEvent.Action.STRATEGY_CHANGED, target=strategy, changes=changes
        )
    catalog_invalidate()
    return strategy


def _refuse_if_running(strategy: Strategy) -> None:
    """A strategy that a variant of a running (or scheduled) experiment serves stays active:
    its learners would be counted in a variant whose strategy they never received."""
    running = (
        Experiment.objects.filter(
            status__in=[Experiment.Status.ACTIVE, Experiment.Status.SCHEDULED],
            variants__strategy=strategy,
        )
        .order_by("pk")
        .values_list("name", flat=True)
        .first()
    )
    if running is not None:
        raise ConflictError(
            f"Experiment {running!r} serves this strategy: complete or cancel it before "
            "deactivating the strategy.",
            code="strategy_in_use",
            attr="is_active",
        )


@transaction.atomic
def strategy_catalog_load(*, path: Path) -> tuple[int, int]:
    """Create or refresh the catalog from a fixture file, matching by (context, key).
    Returns (created, updated)."""
    created = updated = 0
    for entry in json.loads(path.read_text()):
        fields = {k: v for k, v in entry["fields"].items() if k in EDITABLE_FIELDS}
        strategy = Strategy.objects.filter(context=fields["context"], key=fields["key"]).first()
        if strategy is None:
            strategy = Strategy(**fields)
            created += 1
        else:
            for name, value in fields.items():
                setattr(strategy, name, value)
            updated += 1
        _demote_other_baselines(strategy)
        _validate(strategy)
        strategy.save()
    catalog_invalidate()
    return created, updated
