"""Users: creation for service accounts, profile updates, and erasure."""

import uuid
from typing import Any

from django.db import IntegrityError, models, transaction
from django.db.models import F

from config.arrays import AnyOf
from config.errors import ConflictError
from logs.models import AuditEvent
from logs.services import audit_event_record, changes_between, model_snapshot
from personalization.models import User
from personalization.registry import erasure_listeners, erasure_preparers, user_data_sources

# Rows deleted per statement when erasing: Django's delete names the rows it cascades to in IN
# lists, one bind parameter each, and PostgreSQL accepts at most 65,535 a statement.
ERASE_BATCH = 2000

PROFILE_FIELDS = (
    "display_name",
    "software_background",
    "hardware_background",
    "behavioral_analysis_enabled",
    "learning_style_profiling_enabled",
    "share_anonymized_patterns",
    "attributes",
)


def profile_is_complete(user: User) -> bool:
    """DESIGN.md §3: complete once both background levels are set."""
    return bool(
        (user.software_background or {}).get("level")
        and (user.hardware_background or {}).get("level")
    )


@transaction.atomic
def user_create(
    *,
    actor: Any,
    external_id: str,
    username: str = "",
    email: str = "",
    display_name: str = "",
    attributes: dict[str, Any] | None = None,
) -> User:
    """A learner created by a client application. Has no usable password: the application
    acts for it with X-On-Behalf-Of. A taken external_id, username or email is 409."""
    user = User(
        username=username or f"user-{uuid.uuid4().hex[:16]}",
        email=email,
        external_id=external_id,
        display_name=display_name,
        attributes=attributes or {},
    )
    user.set_unusable_password()
    duplicate = _duplicate_field(user)
    if duplicate:
        raise ConflictError(f"A user with this {duplicate} already exists.", attr=duplicate)
    user.full_clean(validate_unique=False, validate_constraints=False)
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError as exc:  # a concurrent create won the race
        raise ConflictError("A user with these identifiers already exists.") from exc
    audit_event_record(
        actor=actor,
        action=AuditEvent.Action.USER_CREATED,
        target=user,
        changes={"external_id": {"old": None, "new": external_id}},
    )
    return user


def _duplicate_field(user: User) -> str | None:
    users = User.objects.all()
    if users.filter(external_id=user.external_id).exists():
        return "external_id"
    if users.filter(username=user.username).exists():
        return "username"
    if user.email and users.filter(email__iexact=user.email).exists():
        return "email"
    return None


@transaction.atomic
def user_profile_update(*, actor: Any, user: User, data: dict[str, Any]) -> User:
    """PATCH of the profile. `profile_completed` is derived here, never taken as input."""
    unknown = set(data) - set(PROFILE_FIELDS)
    if unknown:
        raise ValueError(f"not profile fields: {sorted(unknown)}")
    before = model_snapshot(user)
    for name, value in data.items():
        setattr(user, name, value if value is not None else {})
    user.profile_completed = profile_is_complete(user)
    user.full_clean(exclude=["password"])
    user.save()
    changes = changes_between(before, model_snapshot(user))
    if changes:
        audit_event_record(
            actor=actor, action=AuditEvent.Action.PROFILE_UPDATED, target=user, changes=changes
        )
    return user


def _delete_cascaded_rows(user: User) -> None:
    """Delete, ERASE_BATCH rows at a time, what deleting the user cascades to: the same rows
    and the same on_delete rules as user.delete(), which would otherwise collect a learner's
    100,000 outcomes into one statement (DESIGN.md §10 bind limits). Each batch is selected
    by one array parameter."""
    for relation in User._meta.related_objects:
        if relation.many_to_many or relation.on_delete is not models.CASCADE:
            continue
        manager = relation.related_model._default_manager
        rows = manager.filter(**{relation.field.name: user.pk})
        pk = relation.related_model._meta.pk
        key = getattr(pk, "target_field", pk)  # a one-to-one primary key: the user's id
        if not isinstance(key, models.IntegerField):
            rows.delete()  # e.g. the token, keyed by text: one per user
            continue
        ids = list(rows.order_by("pk").values_list("pk", flat=True))
        for start in range(0, len(ids), ERASE_BATCH):
            manager.filter(AnyOf(F("pk"), ids[start : start + ERASE_BATCH])).delete()


@transaction.atomic
def user_erase(*, actor: Any, user: User) -> dict[str, int]:
    """Delete the user and every row about them (every registered source; CASCADE and
    SET_NULL for anything else). Audit events about them lose their values; one USER_ERASED
    event records the erasure by counts only."""
    from logs.services import audit_events_redact
    from personalization.selectors import user_audit_about

    counts: dict[str, int] = {}
    for source in user_data_sources():
        if source.model is User:
            continue
        counts[source.label] = counts.get(source.label, 0) + source.rows(user).count()
    for prepare in erasure_preparers():
        prepare(user)
    audit_events_redact(about=user_audit_about(user=user))
    _delete_cascaded_rows(user)
    user_id = user.pk
    user.delete()
    actor_for_event = actor if actor is not None and getattr(actor, "pk", None) != user_id else None
    audit_event_record(
        actor=actor_for_event,
        action=AuditEvent.Action.USER_ERASED,
        target_type=User._meta.label_lower,
        target_id=user_id,
        changes={"rows_deleted": {"old": None, "new": counts}},
    )
    for listener in erasure_listeners():
        listener(user_id)
    return counts
