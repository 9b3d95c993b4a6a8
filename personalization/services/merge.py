"""Identity merge (DESIGN.md §10, `users/{id}/merge/`): a learner who started anonymous and
later signed in is one learner again. The merged learner's decisions, outcomes, interactions,
recommendations, paths and logs move to the survivor; where both hold a row of one key (an
assignment to the same experiment, an outcome with the same event id, a config of the same
strategy) the survivor's wins; what stays behind is erased, and the merged learner's user row
is left as a tombstone that points at the survivor, so the client's old reference still finds
the learner."""

from typing import Any

from django.db import transaction
from django.db.models import Q

from config.errors import ConflictError
from logs.models import AuditEvent
from logs.services import audit_event_record, audit_events_redact
from personalization.models import User
from personalization.registry import (
    UserMerge,
    erasure_listeners,
    user_data_sources,
    user_merges,
)
from personalization.roles import is_learner


def _move(rule: UserMerge, source: User, target: User) -> int:
    """Move `source`'s rows of `rule.model` to `target`, leaving those the survivor's
    rows win over."""
    manager = rule.model._default_manager
    rows = manager.filter(user=source)
    theirs = manager.filter(user=target)
    if rule.one_per_user:
        if theirs.exists():
            return 0
        return rows.update(user=target)
    if rule.keys:
        scope = rows if rule.condition is None else rows.filter(rule.condition)
        held = theirs if rule.condition is None else theirs.filter(rule.condition)
        taken = held.values_list(*rule.keys)
        conflicting = Q()
        for key in taken:
            conflicting |= Q(**dict(zip(rule.keys, key, strict=True)))
        if conflicting:
            rows = rows.exclude(pk__in=scope.filter(conflicting).values("pk"))
    return rows.update(user=target)


@transaction.atomic
def user_merge(*, actor: Any, target: User, source: User) -> dict[str, int]:
    """Merge learner `source` into learner `target` (DESIGN.md §10); returns the rows moved
    per model. Both must be active learners and different (409 otherwise)."""
    if source.pk == target.pk:
        raise ConflictError(
            "A learner cannot be merged into themselves.", code="same_user", attr="from"
        )
    for role, user in (("from", source), ("target", target)):
        if not user.is_active or user.merged_into is not None:
            raise ConflictError(
                f"User {user.pk} was already merged or is inactive.",
                code="not_mergeable",
                attr=role,
            )
        if not is_learner(user):
            raise ConflictError(
                f"User {user.pk} is staff or a service account; only learners are merged.",
                code="target_not_learner",
                attr=role,
            )
    # Lock both users, lower id first, so two merges of the same pair cannot interleave.
    list(User.objects.select_for_update().filter(pk__in=[source.pk, target.pk]).order_by("pk"))
    moved: dict[str, int] = {}
    for rule in user_merges():
        if rule.stays:
            continue
        count = rule.merge(source, target) if rule.merge else _move(rule, source, target)
        moved[rule.label] = moved.get(rule.label, 0) + count
    erased = _erase_rows(source)
    _tombstone(source, target)
    for listener in erasure_listeners():
        listener(source.pk)
    audit_event_record(
        actor=actor,
        action=AuditEvent.Action.USER_MERGED,
        target=target,
        changes={
            "merged": {"old": None, "new": source.pk},
            "rows_moved": {"old": None, "new": {k: v for k, v in moved.items() if v}},
            "rows_erased": {"old": None, "new": {k: v for k, v in erased.items() if v}},
        },
    )
    return moved


def _erase_rows(user: User) -> dict[str, int]:
    """Delete what the merged learner still holds (rows the survivor's won over, their
    token, their preferences when the survivor has some) and redact audit events about them."""
    from personalization.selectors import user_audit_about

    erased: dict[str, int] = {}
    for source in user_data_sources():
        if source.model is User or source.owner_field not in ("user",):
            continue
        count, _ = source.rows(user).delete()
        erased[source.label] = count
    audit_events_redact(about=user_audit_about(user=user))
    return erased


def _tombstone(user: User, survivor: User) -> None:
    """The merged user's row without personal data, pointing at the survivor; it cannot log
    in or be decided for, and `X-On-Behalf-Of` with its old reference finds the survivor."""
    user.merged_into = survivor.pk
    user.is_active = False
    user.username = f"merged-{user.pk}"
    user.email = ""
    user.first_name = user.last_name = ""
    user.display_name = ""
    user.software_background = {}
    user.hardware_background = {}
    user.attributes = {}
    user.profile_completed = False
    user.set_unusable_password()
    user.save()
