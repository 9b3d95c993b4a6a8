from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin as DjangoGroupAdmin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.models import Group
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from rest_framework.authtoken.admin import TokenAdmin as DjangoTokenAdmin
from rest_framework.authtoken.models import TokenProxy

from logs.admin import AuditedModelAdmin, ReadOnlyModelAdmin
from logs.models import AuditEvent
from logs.services import MASK, audit_event_record
from personalization.models import Interaction, Preferences, SkillAssessment, SkillProfile, User
from personalization.services.users import profile_is_complete


class PreferencesInline(admin.StackedInline):
    model = Preferences
    can_delete = False
    extra = 0
    readonly_fields = ["last_reset_at"]
    fieldsets = (
        (
            None,
            {
                "fields": (
                    ("personalization_level", "auto_adapt_enabled"),
                    (
                        "mission_personalization_enabled",
                        "content_personalization_enabled",
                        "assessment_personalization_enabled",
                        "session_personalization_enabled",
                    ),
                    "disabled_features",
                    ("learning_style", "reading_length", "tone_preference"),
                    ("daily_minutes", "preferred_language"),
                    "goals",
                    "preferred_themes",
                    "preferred_services",
                    "notification_settings",
                    "last_reset_at",
                )
            },
        ),
    )


class SkillProfileInline(admin.StackedInline):
    """Derived from the assessments; shown, never edited."""

    model = SkillProfile
    can_delete = False
    extra = 0
    max_num = 0
    fields = ("skill_ratings", "weaknesses", "learning_velocity", "updated_at")
    readonly_fields = ("skill_ratings", "weaknesses", "learning_velocity", "updated_at")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(User)
class UserAdmin(AuditedModelAdmin, DjangoUserAdmin):
    list_display = ["username", "email", "external_id", "display_name", "is_staff", "is_active"]
    list_filter = [
        "preferences__personalization_level",
        "profile_completed",
        "is_staff",
        "is_active",
    ]
    inlines = [PreferencesInline, SkillProfileInline]
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

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        obj.profile_completed = profile_is_complete(obj)
        super().save_model(request, obj, form, change)

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


@admin.register(Interaction)
class InteractionAdmin(ReadOnlyModelAdmin):
    list_display = ["occurred_at", "user", "type", "service", "theme", "rating"]
    list_filter = ["type", "service", "rating"]
    search_fields = ["user__username", "user__email", "user__external_id", "service", "theme"]
    list_select_related = ["user"]
    date_hierarchy = "occurred_at"


@admin.register(SkillAssessment)
class SkillAssessmentAdmin(ReadOnlyModelAdmin):
    list_display = ["assessed_at", "user", "skill", "score"]
    list_filter = ["skill"]
    search_fields = ["user__username", "user__email", "user__external_id", "skill"]
    list_select_related = ["user"]
    date_hierarchy = "assessed_at"
