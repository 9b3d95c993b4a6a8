"""Who may do what (DESIGN.md §3, §7, §10).

A user is a **learner** unless staff (or superuser) or holding `personalization.act_for_users`
(a **service account**). Only learners are decided for, enrolled, rewarded and recommended;
service accounts act only for learners."""

from typing import TYPE_CHECKING

from rest_framework import permissions

if TYPE_CHECKING:
    from rest_framework.request import Request
    from rest_framework.views import APIView

from personalization.roles import (  # noqa: F401 (re-exported for the API plumbing)
    ACT_FOR_USERS,
    LEARNER_REQUIRED,
    LEARNER_REQUIRED_MESSAGE,
    acts_for_users,
    acts_for_users_forget,
    is_learner,
)


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


class IsLearnerForWrites(permissions.BasePermission):
    """Writes (decisions, outcomes, recommendations) need a learner as the effective user:
    staff or a service account acting for itself gets 403 `learner_required`."""

    message = LEARNER_REQUIRED_MESSAGE
    code = LEARNER_REQUIRED

    def has_permission(self, request: "Request", view: "APIView") -> bool:
        if request.method in permissions.SAFE_METHODS:
            return True
        return is_learner(request.user)


def owner_scope(request: "Request"):
    """Whose rows a list shows: None (everyone's) for staff speaking for themselves, else
    the effective user. Ordinary users see only their own rows (DESIGN.md §7)."""
    acting_for_someone = getattr(request._request, "attune_caller", None) is not None
    if request.user.is_staff and not acting_for_someone:
        return None
    return request.user
