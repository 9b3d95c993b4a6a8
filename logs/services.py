"""Writes of the logs app. AuditEvents are written only here, inside the caller's
transaction, so an audited change and its event commit or roll back together."""

import datetime
import logging
from typing import Any, cast

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone

from logs.models import AuditEvent, PersonalizationLog, RequestLog, TranslationLog

logger = logging.getLogger(__name__)

# Values that must never be copied into the audit trail; a change shows as masked. Fields
# are secret by name everywhere, or only on the model that holds a credential (a strategy's
# or a content item's `key` is an ordinary name; an API token's `key` is the credential).
SECRET_FIELDS = frozenset({"password", "secret"})
SECRET_MODEL_FIELDS = {"authtoken.token": frozenset({"key"})}
MASK = "••••••"


def model_snapshot(instance: models.Model) -> dict[str, Any]:
    """Concrete field values of `instance`, as JSON-ready values, secrets masked."""
    concrete = (instance._meta.concrete_model or type(instance))._meta.label_lower
    secret = SECRET_FIELDS | SECRET_MODEL_FIELDS.get(concrete, frozenset())
    snapshot: dict[str, Any] = {}
    for field in instance._meta.concrete_fields:
        if field.name in ("created_at", "updated_at"):
            continue
        value = getattr(instance, field.attname)
        snapshot[field.name] = MASK if field.name in secret else _json_ready(value)
    return snapshot


def _json_ready(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str | list | dict):
        return value
    return DjangoJSONEncoder().default(value)


def changes_between(before: dict[str, Any], after: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """`{field: {"old": …, "new": …}}` for every field whose value differs. A masked field
    that changed is reported without its values."""
    changes: dict[str, dict[str, Any]] = {}
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name), after.get(name)
        if old != new:
            changes[name] = {"old": old, "new": new}
    return changes


def audit_event_record(
    *,
    actor: Any,
    action: str,
    target: models.Model | None = None,
    target_type: str = "",
    target_id: str | int = "",
    changes: dict[str, Any] | None = None,
) -> AuditEvent:
    """Record one AuditEvent. Must run inside the transaction that makes the change."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError(
            "audit_event_record must run inside the transaction of the change it records "
            "(wrap the service in transaction.atomic)."
        )
    if action not in AuditEvent.Action.values:
        raise ValueError(f"Unknown audit action {action!r}.")
    if target is not None:
        target_type = target_type or target._meta.label_lower
        target_id = target_id or (target.pk if target.pk is not None else "")
    actor_id = actor.pk if actor is not None and getattr(actor, "is_authenticated", False) else None
    return AuditEvent.objects.create(
        actor_id=actor_id,
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        changes=changes or {},
    )


def _request_log_create(model: type[RequestLog], *, user: Any, **fields: Any) -> RequestLog:
    fields.setdefault("request_timestamp", timezone.now())
    entry = model(user=user, **fields)
    entry.full_clean()
    entry.save()
    return entry


def personalization_log_create(*, user: Any, **fields: Any) -> PersonalizationLog:
    return cast(PersonalizationLog, _request_log_create(PersonalizationLog, user=user, **fields))


def translation_log_create(*, user: Any, **fields: Any) -> TranslationLog:
    return cast(TranslationLog, _request_log_create(TranslationLog, user=user, **fields))


PURGE_BATCH = 5000


def request_logs_purge_expired(*, now: datetime.datetime | None = None) -> dict[str, int]:
    """Delete request logs older than LOG_RETENTION_DAYS, PURGE_BATCH rows per transaction so
    that no lock is held for long.

    Idempotent and safe to run concurrently: each run deletes whatever is still expired.
    """
    cutoff = (now or timezone.now()) - datetime.timedelta(days=settings.LOG_RETENTION_DAYS)
    deleted: dict[str, int] = {}
    for model in (PersonalizationLog, TranslationLog):
        total = 0
        while True:
            with transaction.atomic():
                batch = list(
                    model.objects.filter(request_timestamp__lt=cutoff).values_list("pk", flat=True)[
                        :PURGE_BATCH
                    ]
                )
                if batch:
                    model.objects.filter(pk__in=batch).delete()
            total += len(batch)
            if len(batch) < PURGE_BATCH:
                break
        deleted[model._meta.model_name or model.__name__] = total
    if any(deleted.values()):
        audit_event_record(
            actor=None,
            action=AuditEvent.Action.REQUEST_LOGS_PURGED,
            target_type="logs.requestlog",
            changes={
                "deleted": {"old": None, "new": deleted},
                "cutoff": {"old": None, "new": cutoff.isoformat()},
            },
        )
    logger.info("purged request logs older than %s: %s", cutoff.isoformat(), deleted)
    return deleted


def audit_events_redact(*, about: Q) -> int:
    """Drop the recorded values of every event matching `about` (a condition on
    target_type/target_id), keeping who did what and when. Used when a user is erased."""
    return AuditEvent.objects.filter(about).update(changes={})
