"""Preferences: replace, update part, reset to the defaults."""

from typing import Any

from django.db import transaction
from django.utils import timezone

from logs.models import AuditEvent
from logs.services import audit_event_record, changes_between, model_snapshot
from personalization.models import Preferences, User

# Everything a user may set; `last_reset_at` is the service's.
EDITABLE_FIELDS = tuple(
    field.name
    for field in Preferences._meta.concrete_fields
    if field.name not in {"id", "user", "created_at", "updated_at", "last_reset_at"}
)


def _defaults() -> dict[str, Any]:
    fresh = Preferences()
    return {name: getattr(fresh, name) for name in EDITABLE_FIELDS}


def _locked_preferences(user: User) -> Preferences:
    preferences, _created = Preferences.objects.select_for_update().get_or_create(user=user)
    return preferences


@transaction.atomic
def preferences_update(
    *, actor: Any, user: User, data: dict[str, Any], replace: bool = False
) -> Preferences:
    """PATCH (`replace=False`) changes the given fields; PUT (`replace=True`) replaces the
    whole set, so fields not given return to their defaults."""
    unknown = set(data) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValueError(f"not preference fields: {sorted(unknown)}")
    preferences = _locked_preferences(user)
    before = model_snapshot(preferences)
    base = (
        _defaults() if replace else {name: getattr(preferences, name) for name in EDITABLE_FIELDS}
    )
    values = {**_defaults(), **data} if replace else dict(data)
    if "notification_settings" in data:
        # Switches left out keep their value (PATCH) or default (PUT).
        values["notification_settings"] = {
            **base["notification_settings"],
            **data["notification_settings"],
        }
    for name, value in values.items():
        setattr(preferences, name, value)
    preferences.full_clean()
    preferences.save()
    changes = changes_between(before, model_snapshot(preferences))
    if changes:
        audit_event_record(
            actor=actor,
            action=AuditEvent.Action.PREFERENCES_UPDATED,
            target=preferences,
            changes=changes,
        )
    return preferences


@transaction.atomic
def preferences_reset(*, actor: Any, user: User) -> Preferences:
    """Back to the defaults; `last_reset_at` records when."""
    preferences = _locked_preferences(user)
    before = model_snapshot(preferences)
    for name, value in _defaults().items():
        setattr(preferences, name, value)
    preferences.last_reset_at = timezone.now()
    preferences.full_clean()
    preferences.save()
    audit_event_record(
        actor=actor,
        action=AuditEvent.Action.PREFERENCES_RESET,
        target=preferences,
        changes=changes_between(before, model_snapshot(preferences)),
    )
    return preferences
