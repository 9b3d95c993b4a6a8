"""A user's strategy configs: created together per context, switched atomically."""

import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from experiments.catalog import ContextCatalog
from experiments.models import StrategyConfig
from experiments.params import params_errors
from logs.models import AuditEvent
from logs.services import audit_event_record, changes_between, model_snapshot


def configs_for_context(*, user: Any, catalog: ContextCatalog) -> dict[int, StrategyConfig]:
    """The user's configs in the context by strategy id; the missing ones (all of them on
    the first decision) are created together. Safe when two first decisions race."""
    # No ORDER BY: the default ordering joins the strategies for their keys, on the hot path.
    mine = StrategyConfig.objects.filter(user=user, context=catalog.context).order_by()
    configs = {c.strategy_id: c for c in mine}
    missing = [s for s in catalog.strategies if s.id not in configs]
    if missing:
        StrategyConfig.objects.bulk_create(
            [StrategyConfig(user=user, context=catalog.context, strategy_id=s.id) for s in missing],
            ignore_conflicts=True,
        )
        configs = {c.strategy_id: c for c in mine.all()}
    return configs


@transaction.atomic
def config_activate(
    *, config: StrategyConfig, now: datetime.datetime | None = None
) -> StrategyConfig:
    """Make `config` the user's active one in its context. The user's configs in the context
    are locked first, so concurrent switches serialise instead of breaking the
    one-active constraint."""
    now = now or timezone.now()
    siblings = StrategyConfig.objects.filter(user_id=config.user_id, context=config.context)
    list(siblings.select_for_update(no_key=True).order_by("pk").values_list("pk", flat=True))
    siblings.filter(is_active=True).exclude(pk=config.pk).update(
        is_active=False, deactivated_at=now
    )
    StrategyConfig.objects.filter(pk=config.pk).update(is_active=True, activated_at=now)
    config.is_active, config.activated_at = True, now
    return config


@transaction.atomic
def config_update(*, actor: Any, config: StrategyConfig, data: dict[str, Any]) -> StrategyConfig:
    """PATCH by the user: `params` overrides (validated for the context) and `is_active`."""
    # Lock every config of the user in the context, in id order (as config_activate does),
    # so that concurrent updates cannot deadlock.
    list(
        StrategyConfig.objects.filter(user_id=config.user_id, context=config.context)
        .select_for_update(no_key=True)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    config = StrategyConfig.objects.select_related("strategy").get(pk=config.pk)
    before = model_snapshot(config)
    if "params" in data:
        errors = params_errors(config.context, data["params"], complete=False)
        if errors:
            raise ValidationError(
                {
                    f"params.{name}" if name != "params" else "params": msg
                    for name, msg in errors.items()
                }
            )
        config.params = data["params"]
        config.save(update_fields=["params", "updated_at"])
    if data.get("is_active") is True and not config.is_active:
        config_activate(config=config)
    elif data.get("is_active") is False and config.is_active:
        config.is_active, config.deactivated_at = False, timezone.now()
        config.save(update_fields=["is_active", "deactivated_at", "updated_at"])
    config.refresh_from_db()
    changes = changes_between(before, model_snapshot(config))
    if changes:
        audit_event_record(
            actor=actor, action=AuditEvent.Action.CONFIG_CHANGED, target=config, changes=changes
        )
    return config
