"""Shipping a winner (DESIGN.md §3, §4 step 4): a context's Rollout serves the shipped
strategy to learners whom no experiment, holdout or bandit decides for."""

from typing import Any

from django.db import transaction
from django.utils import timezone

from config.errors import ConflictError, NotFoundError
from experiments.catalog import catalog_invalidate
from experiments.models import Experiment, Rollout, WebhookEvent
from experiments.services.webhooks import experiment_event_emit
from logs.models import AuditEvent
from logs.services import audit_event_record

Status = Experiment.Status


@transaction.atomic
def experiment_ship(*, actor: Any, experiment: Experiment, variant: str | None = None) -> Rollout:
    """The context's rollout from the experiment's winner (COMPLETED with a winner) or from a
    named variant (ACTIVE or COMPLETED); the context's previous rollout is deactivated."""
    experiment = Experiment.objects.select_for_update().get(pk=experiment.pk)
    if variant is None:
        if experiment.status != Status.COMPLETED or experiment.winning_variant_id is None:
            raise ConflictError(
                f"Experiment {experiment.name!r} is {experiment.status} "
                f"{'with' if experiment.winning_variant_id else 'without'} a winner; ship a "
                'COMPLETED experiment\'s winner, or name the variant: {"variant": "<key>"}.',
                code="no_winner",
            )
        chosen = experiment.winning_variant
    else:
        if experiment.status not in (Status.ACTIVE, Status.COMPLETED):
            raise ConflictError(
                f"Experiment {experiment.name!r} is {experiment.status}; only an ACTIVE or "
                "COMPLETED experiment's variant can be shipped.",
                code="not_shippable",
            )
        chosen = experiment.variants.filter(key=variant).first()
        if chosen is None:
            keys = ", ".join(experiment.variants.values_list("key", flat=True))
            raise NotFoundError(
                f"Experiment {experiment.name!r} has no variant {variant!r}; its variants are "
                f"{keys}.",
                attr="variant",
            )
    if chosen is None:  # the winner was deleted since the evaluation named it
        raise ConflictError(
            f"Experiment {experiment.name!r} has no winner to ship.", code="no_winner"
        )
    now = timezone.now()
    previous = list(
        Rollout.objects.select_for_update().filter(context=experiment.context, is_active=True)
    )
    for old in previous:
        old.is_active, old.deactivated_at = False, now
        old.save(update_fields=["is_active", "deactivated_at", "updated_at"])
    rollout = Rollout.objects.create(
        context=experiment.context,
        strategy=chosen.strategy,
        experiment=experiment,
        variant=chosen,
        params=chosen.params,
        created_by=actor if getattr(actor, "pk", None) else None,
    )
    experiment.shipped_at = now
    experiment.save(update_fields=["shipped_at", "updated_at"])
    audit_event_record(
        actor=actor,
        action=AuditEvent.Action.EXPERIMENT_SHIPPED,
        target=experiment,
        changes={
            "variant": {"old": None, "new": chosen.key},
            "strategy": {"old": None, "new": chosen.strategy.key},
            "rollout": {"old": [r.pk for r in previous] or None, "new": rollout.pk},
        },
    )
    catalog_invalidate()
    experiment_event_emit(
        event=WebhookEvent.EXPERIMENT_SHIPPED,
        experiment=experiment,
        extra={
            "rollout": {
                "id": rollout.pk,
                "context": rollout.context,
                "strategy": chosen.strategy.key,
                "variant": chosen.key,
            }
        },
    )
    return rollout


@transaction.atomic
def rollout_deactivate(*, actor: Any, rollout: Rollout) -> Rollout:
    """Learners it served get the baseline again. Deactivating an inactive rollout changes
    nothing."""
    rollout = Rollout.objects.select_for_update().get(pk=rollout.pk)
    if not rollout.is_active:
        return rollout
    rollout.is_active, rollout.deactivated_at = False, timezone.now()
    rollout.save(update_fields=["is_active", "deactivated_at", "updated_at"])
    audit_event_record(
        actor=actor,
        action=AuditEvent.Action.ROLLOUT_DEACTIVATED,
        target=rollout,
        changes={"is_active": {"old": True, "new": False}},
    )
    catalog_invalidate()
    return rollout
