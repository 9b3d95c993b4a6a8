import json
from collections import Counter
from collections.abc import Iterable
from typing import Any, cast

from django import forms
from django.contrib import admin
from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.admin.options import get_content_type_for_model
from django.contrib.auth.admin import GroupAdmin as DjangoGroupAdmin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.models import Group
from django.db import models, transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from rest_framework.authtoken.admin import TokenAdmin as DjangoTokenAdmin
from rest_framework.authtoken.models import TokenProxy

from logs.admin import (
    AuditedModelAdmin,
    JSONFormFieldsMixin,
    ReadOnlyModelAdmin,
    form_errors_add,
)
from logs.models import AuditEvent
from logs.services import MASK, audit_event_record
from personalization.api.serializers import PreferencesSerializer
from personalization.models import (
    Interaction,
    Preferences,
    SkillAssessment,
    SkillProfile,
    User,
    default_notification_settings,
)
from personalization.registry import user_data_sources
from personalization.services.users import profile_is_complete, user_erase


class PreferencesForm(forms.ModelForm):
    """Checked as `me/preferences/` checks its input (lists of short strings, a BCP 47
    language, the two notification switches) and stored as the API stores it: the validated
    values, notification switches left out keeping their value."""

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        writable = [
            name
            for name, field in PreferencesSerializer().fields.items()
            if not field.read_only and name in self.fields
        ]
        if self.errors or not writable:
            return cleaned
        serializer = PreferencesSerializer(data={name: cleaned.get(name) for name in writable})
        if not serializer.is_valid():
            form_errors_add(self, serializer.errors)
            return cleaned
        values = dict(serializer.validated_data)
        if "notification_settings" in values:
            stored = self.instance.notification_settings
            base = stored if isinstance(stored, dict) else default_notification_settings()
            values["notification_settings"] = {**base, **values["notification_settings"]}
        cleaned.update(values)
        return cleaned


class PreferencesInline(JSONFormFieldsMixin, admin.StackedInline):
    model = Preferences
    form = PreferencesForm
    can_delete = False
    extra = 0
    max_num = 1
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

    def get_formset(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        # A tampered TOTAL_FORMS builds one form, not Django's default of 1,001.
        kwargs.setdefault("absolute_max", self.max_num)
        return super().get_formset(request, obj, **kwargs)


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


class NeutralLogEntriesMixin:
    """The admin's own history (LogEntry) names these objects by id, not by str(): a user's
    str() is personal data that erasure must not leave behind, a token's is its key."""

    model: type[models.Model]

    def _log(
        self, request: HttpRequest, objs: Iterable[Any], flag: int, message: Any = ""
    ) -> list[LogEntry]:
        content_type = get_content_type_for_model(self.model)
        text = message if isinstance(message, str) else json.dumps(message)
        return LogEntry.objects.bulk_create(
            LogEntry(
                user_id=cast(int, request.user.pk),
                content_type=content_type,
                object_id=str(obj.pk),
                object_repr=f"{self.model._meta.verbose_name} #{obj.pk}",
                action_flag=flag,
                change_message=text,
            )
            for obj in objs
        )

    def log_addition(self, request: HttpRequest, obj: Any, message: Any) -> LogEntry:
        return self._log(request, [obj], ADDITION, message)[0]

    def log_change(self, request: HttpRequest, obj: Any, message: Any) -> LogEntry:
        return self._log(request, [obj], CHANGE, message)[0]

    def log_deletions(self, request: HttpRequest, queryset: Any) -> list[LogEntry]:
        return self._log(request, queryset, DELETION)


@admin.register(User)
class UserAdmin(NeutralLogEntriesMixin, AuditedModelAdmin, DjangoUserAdmin):
    """Deleting a user here is the erasure of `me/` DELETE (user_erase): every row about the
    user goes, the audit trail about them loses its values, one USER_ERASED event counts
    what went."""

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

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> Any:
        """What erasure deletes, counted per kind of row. Erasure is the user's right, so it
        needs no permission to delete computed rows (decisions, outcomes, logs) one by one,
        and a user with 100,000 rows of one kind gets a page of counts, not of rows."""
        counts: Counter[str] = Counter()
        for user in objs:
            for source in user_data_sources():
                if source.model is not User:
                    counts[str(source.model._meta.verbose_name_plural)] += source.rows(user).count()
        users = [f"{str(self.opts.verbose_name).capitalize()}: {user}" for user in objs]
        return users, {name: n for name, n in counts.items() if n}, set(), []

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        self._erase(request, obj)

    @transaction.atomic
    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        for user in queryset.order_by("pk"):
            self._erase(request, user)

    def _erase(self, request: HttpRequest, user: Any) -> None:
        user_pk = user.pk
        user_erase(actor=request.user, user=user)
        # Entries of the admin's history written before it named users by id.
        LogEntry.objects.filter(
            content_type=get_content_type_for_model(User), object_id=str(user_pk)
        ).update(object_repr=f"{User._meta.verbose_name} #{user_pk}")


# Django's own admins, re-registered so that changes to them are audited as well.
admin.site.unregister(Group)
admin.site.unregister(TokenProxy)


@admin.register(Group)
class GroupAdmin(AuditedModelAdmin, DjangoGroupAdmin):
    pass


@admin.register(TokenProxy)
class TokenAdmin(NeutralLogEntriesMixin, AuditedModelAdmin, DjangoTokenAdmin):
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
