from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin as DjangoGroupAdmin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.models import Group
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from rest_framework.authtoken.admin import TokenAdmin as DjangoTokenAdmin
from rest_framework.authtoken.models import TokenProxy

from logs.admin import AuditedModelAdmin
from logs.models import AuditEvent
from logs.services import MASK, audit_event_record
from personalization.models import User


@admin.register(User)
class UserAdmin(AuditedModelAdmin, DjangoUserAdmin):
    list_display = ["username", "email", "external_id", "display_name", "is_staff", "is_active"]
    list_filter = ["is_staff", "is_superuser", "is_active", "profile_completed"]
    search_fields = ["username", "email", "external_id", "display_name"]
    readonly_fields = ["profile_completed", "created_at", "updated_at", "last_login", "date_joined"]
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        ("Profile", {"fields": ("display_name", "email", "external_id", "profile_completed")}),
        ("Backgrounds", {"fields": ("software_background", "hardware_background")}),
        (
            "Privacy",
            {
                "fields": (
                    "behavioral_analysis_enabled",
                    "learning_style_profiling_enabled",
                    "share_anonymized_patterns",
                )
            },
        ),
        (
            "Permissions",
            {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")},
        ),
        ("Dates", {"fields": ("last_login", "date_joined", "created_at", "updated_at")}),
    )

    def user_change_password(
        self, request: HttpRequest, id: str, form_url: str = ""
    ) -> HttpResponse:
        # The admin's password view runs outside a transaction; the audit entry needs one.
        with transaction.atomic():
            return super().user_change_password(request, id, form_url)

    def log_change(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        match = request.resolver_match
        if match is not None and match.url_name == "auth_user_password_change":
            audit_event_record(
                actor=request.user,
                action=AuditEvent.Action.PASSWORD_CHANGED,
                target=obj,
                changes={"password": {"old": MASK, "new": MASK}},
            )
        return super().log_change(request, obj, message)


# Django's own admins, re-registered so that changes to them are audited as well.
admin.site.unregister(Group)
admin.site.unregister(TokenProxy)


@admin.register(Group)
class GroupAdmin(AuditedModelAdmin, DjangoGroupAdmin):
    pass


@admin.register(TokenProxy)
class TokenAdmin(AuditedModelAdmin, DjangoTokenAdmin):
    pass
