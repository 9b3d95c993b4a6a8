"""Cache invalidation for `acts_for_users` (DESIGN.md §3: a service account is a user
holding personalization.act_for_users). A revoked permission, a group change or a changed
staff/superuser/active flag takes effect on the next request, not a minute later."""

from typing import Any

from django.contrib.auth.models import Group, Permission
from django.db.models.signals import m2m_changed, post_save, pre_delete

from personalization.models import User
from personalization.roles import acts_for_users_forget

CHANGES = {"post_add", "post_remove", "post_clear", "pre_clear"}


def _group_member_ids(group_ids: Any) -> list[int]:
    return list(User.objects.filter(groups__in=list(group_ids)).values_list("pk", flat=True))


def _user_permissions_changed(
    sender: Any, instance: Any, action: str, reverse: bool, pk_set: Any, **kwargs: Any
) -> None:
    if action not in CHANGES:
        return
    if reverse:  # permission.user_set.add(...): the users are pk_set (None on clear)
        ids = pk_set if pk_set else instance.user_set.values_list("pk", flat=True)
        acts_for_users_forget(ids)
    else:
        acts_for_users_forget([instance.pk])


def _user_groups_changed(
    sender: Any, instance: Any, action: str, reverse: bool, pk_set: Any, **kwargs: Any
) -> None:
    if action not in CHANGES:
        return
    if reverse:  # group.user_set.add(...)
        ids = pk_set if pk_set else instance.user_set.values_list("pk", flat=True)
        acts_for_users_forget(ids)
    else:
        acts_for_users_forget([instance.pk])


def _group_permissions_changed(
    sender: Any, instance: Any, action: str, reverse: bool, pk_set: Any, **kwargs: Any
) -> None:
    if action not in CHANGES:
        return
    if reverse:  # permission.group_set.add(...): the groups are pk_set
        group_ids = pk_set if pk_set else instance.group_set.values_list("pk", flat=True)
    else:
        group_ids = [instance.pk]
    acts_for_users_forget(_group_member_ids(group_ids))


def _user_saved(sender: Any, instance: Any, **kwargs: Any) -> None:
    acts_for_users_forget([instance.pk])


def _group_deleted(sender: Any, instance: Any, **kwargs: Any) -> None:
    acts_for_users_forget(_group_member_ids([instance.pk]))


def _permission_deleted(sender: Any, instance: Any, **kwargs: Any) -> None:
    holders = set(instance.user_set.values_list("pk", flat=True))
    holders.update(_group_member_ids(instance.group_set.values_list("pk", flat=True)))
    acts_for_users_forget(holders)


def connect() -> None:
    uid = "acts-for-users"
    m2m_changed.connect(
        _user_permissions_changed, sender=User.user_permissions.through, dispatch_uid=f"{uid}:up"
    )
    m2m_changed.connect(_user_groups_changed, sender=User.groups.through, dispatch_uid=f"{uid}:ug")
    m2m_changed.connect(
        _group_permissions_changed, sender=Group.permissions.through, dispatch_uid=f"{uid}:gp"
    )
    post_save.connect(_user_saved, sender=User, dispatch_uid=f"{uid}:user")
    pre_delete.connect(_group_deleted, sender=Group, dispatch_uid=f"{uid}:group")
    pre_delete.connect(_permission_deleted, sender=Permission, dispatch_uid=f"{uid}:permission")
