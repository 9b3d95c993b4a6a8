"""Learners and service accounts (DESIGN.md §3): a user is a **learner** unless staff (or
superuser) or holding `personalization.act_for_users` (a **service account**). Only learners
are decided for, enrolled, rewarded, recommended and analysed; service accounts act only for
learners."""

from collections.abc import Iterable
from typing import Any

from django.core.cache import cache

ACT_FOR_USERS = "personalization.act_for_users"
ACT_FOR_USERS_CODENAME = "act_for_users"

ACTS_FOR_USERS_CACHE_SECONDS = 60


def act_for_users_permission() -> Any:
    """The act_for_users permission as a queryset of at most one row: the user model's
    (User.Meta.permissions), which every role check of the project reads."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission

    user_model = get_user_model()
    return Permission.objects.filter(
        codename=ACT_FOR_USERS_CODENAME,
        content_type__app_label=user_model._meta.app_label,
        content_type__model=user_model._meta.model_name,
    ).order_by()


def _act_for_users_grants(who: Any) -> Any:
    """The act_for_users permission rows granted to `who` (a user id or an OuterRef),
    directly or through any of their groups."""
    from django.db.models import Q

    return act_for_users_permission().filter(Q(user=who) | Q(group__user=who))


def holds_act_for_users() -> Any:
    """Whether the outer user row holds act_for_users, directly or through one of their
    groups, as an expression to annotate a read of users with (the token lookup of
    config/api/authentication.py): two index probes by user and permission id. The id is
    an uncorrelated scalar subquery, which PostgreSQL runs once per statement through two
    unique indexes; joined into each probe, it scanned the permission table twice for every
    token lookup."""
    from django.contrib.auth import get_user_model
    from django.db.models import Exists, OuterRef, Subquery

    user_model = get_user_model()
    permission = Subquery(act_for_users_permission().values("pk")[:1])
    direct = user_model.user_permissions.through.objects.filter(
        user_id=OuterRef("pk"), permission_id=permission
    )
    grouped = user_model.groups.through.objects.filter(
        user_id=OuterRef("pk"), group__permissions=permission
    )
    return Exists(direct) | Exists(grouped)


def _holds_act_for_users(caller: Any) -> bool:
    """One query, through the user's own permissions or any of their groups."""
    return bool(_act_for_users_grants(caller.pk).exists())


def _cache_key(user_id: Any) -> str:
    return f"acts-for-users:{user_id}"


def acts_for_users(caller: Any) -> bool:
    """Whether the caller holds personalization.act_for_users (directly, through a group, or
    as a superuser). Asked on every request by the throttle, so the answer is kept in the
    shared cache for a minute: one cache read instead of two permission queries. Every change
    of a user's permissions, groups or flags drops the cached answer (`acts_for_users_forget`)."""
    known = getattr(caller, "acts_for_users", None)
    if known is not None:
        return bool(known)
    key = _cache_key(caller.pk)
    answer = cache.get(key)
    if answer is None:
        answer = bool(caller.is_active) and (caller.is_superuser or _holds_act_for_users(caller))
        cache.set(key, answer, ACTS_FOR_USERS_CACHE_SECONDS)
    caller.acts_for_users = answer
    return bool(answer)


def acts_for_users_known(user: Any, *, holds: bool) -> None:
    """Record on `user` what a read of their row found (whether they hold act_for_users), so
    that acts_for_users() answers without the cache for the rest of the request."""
    user.acts_for_users = bool(user.is_active) and (bool(user.is_superuser) or holds)


def acts_for_users_forget(user_ids: Iterable[Any]) -> None:
    """Drop the cached answers of these users, after their permissions changed."""
    keys = [_cache_key(user_id) for user_id in user_ids]
    if keys:
        cache.delete_many(keys)


def is_learner(user: Any) -> bool:
    """DESIGN.md §3: neither staff nor a service account."""
    return bool(
        user
        and user.is_authenticated
        and not user.is_staff
        and not user.is_superuser
        and not acts_for_users(user)
    )


LEARNER_REQUIRED = "learner_required"
LEARNER_REQUIRED_MESSAGE = (
    "Only learners are decided for, enrolled and recommended: staff and service accounts are "
    "not. A service account sends X-On-Behalf-Of: <external_id> (or id:<attune id>) to act "
    "for one of its learners."
)
