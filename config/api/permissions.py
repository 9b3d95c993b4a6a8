from typing import TYPE_CHECKING, Any

from django.core.cache import cache
from rest_framework import permissions

if TYPE_CHECKING:
    from rest_framework.request import Request
    from rest_framework.views import APIView

ACT_FOR_USERS = "personalization.act_for_users"


ACTS_FOR_USERS_CACHE_SECONDS = 60


def _holds_act_for_users(caller: Any) -> bool:
    """One query, through the user's own permissions or any of their groups."""
    from django.contrib.auth.models import Permission
    from django.db.models import Q

    return Permission.objects.filter(
        Q(user=caller.pk) | Q(group__user=caller.pk),
        codename="act_for_users",
        content_type__app_label="personalization",
    ).exists()


def acts_for_users(caller: Any) -> bool:
    """Whether the caller holds personalization.act_for_users (directly, through a group, or
    as a superuser). Asked on every request by the throttle, so the answer is kept in the
    shared cache for a minute: one cache read instead of two permission queries."""
    known = getattr(caller, "acts_for_users", None)
    if known is not None:
        return bool(known)
    key = f"acts-for-users:{caller.pk}"
    answer = cache.get(key)
    if answer is None:
        answer = bool(caller.is_active) and (caller.is_superuser or _holds_act_for_users(caller))
        cache.set(key, answer, ACTS_FOR_USERS_CACHE_SECONDS)
    caller.acts_for_users = answer
    return bool(answer)


def caller_of(request: "Request"):
    """The account that authenticated, which differs from `request.user` when a service
    account acts on behalf of a user (X-On-Behalf-Of)."""
    return getattr(request._request, "attune_caller", None) or request.user


class IsStaff(permissions.BasePermission):
    """Staff accounts only. Decided on the caller, so X-On-Behalf-Of cannot lend a service
    account a staff user's rights."""

    message = "Only staff may do this."

    def has_permission(self, request: "Request", view: "APIView") -> bool:
        caller = caller_of(request)
        return bool(caller and caller.is_authenticated and caller.is_staff)


class IsStaffOrReadOnly(IsStaff):
    def has_permission(self, request: "Request", view: "APIView") -> bool:
        if request.method in permissions.SAFE_METHODS:
            return bool(request.user and request.user.is_authenticated)
        return super().has_permission(request, view)


class CanActForUsers(permissions.BasePermission):
    """Staff, or service accounts holding `personalization.act_for_users`."""

    message = "Only staff and service accounts may do this."

    def has_permission(self, request: "Request", view: "APIView") -> bool:
        caller = caller_of(request)
        if not (caller and caller.is_authenticated):
            return False
        return bool(caller.is_staff or acts_for_users(caller))


def owner_scope(request: "Request"):
    """Whose rows a list shows: None (everyone's) for staff speaking for themselves, else
    the effective user. Ordinary users see only their own rows (DESIGN.md §7)."""
    acting_for_someone = getattr(request._request, "attune_caller", None) is not None
    if request.user.is_staff and not acting_for_someone:
        return None
    return request.user
