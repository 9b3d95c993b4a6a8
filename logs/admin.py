"""The admin's audit trail. Every ModelAdmin in the project derives from AuditedModelAdmin,
so each create, change and delete made by staff is an AuditEvent with the field diff,
written in the admin's own transaction."""

from typing import Any, cast

from django.contrib import admin
from django.db import models
from django.db.models import QuerySet
from django.forms import BaseModelFormSet, ModelForm
from django.http import HttpRequest

from logs.models import AuditEvent, PersonalizationLog, TranslationLog
from logs.services import audit_event_record, changes_between, model_snapshot

Action = AuditEvent.Action


class AuditedModelAdmin(admin.ModelAdmin):
    def save_model(self, request: HttpRequest, obj: Any, form: ModelForm, change: bool) -> None:
        before = self._stored_snapshot(obj) if change else {}
        super().save_model(request, obj, form, change)
        self._record(request, obj, before)

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        self._record_deletion(request, obj)
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        for obj in queryset:
            self._record_deletion(request, obj)
        super().delete_queryset(request, queryset)

    def save_formset(
        self, request: HttpRequest, form: ModelForm, formset: BaseModelFormSet, change: bool
    ) -> None:
        """Inline rows are audited like top-level objects."""
        model = cast(type[models.Model], formset.model)
        changed_pks = [f.instance.pk for f in formset.forms if f.instance.pk and f.has_changed()]
        before = {
            obj.pk: model_snapshot(obj) for obj in model._default_manager.filter(pk__in=changed_pks)
        }
        for deleted_form in formset.deleted_forms:
            if deleted_form.instance.pk is not None:
                self._record_deletion(request, deleted_form.instance)
        super().save_formset(request, form, formset, change)
        for obj in formset.new_objects:
            self._record(request, obj, {})
        for obj, _changed_fields in formset.changed_objects:
            self._record(request, obj, before.get(obj.pk, {}))

    def _stored_snapshot(self, obj: models.Model) -> dict[str, Any]:
        stored = type(obj)._default_manager.filter(pk=obj.pk).first()
        return model_snapshot(stored) if stored is not None else {}

    def _record(self, request: HttpRequest, obj: models.Model, before: dict[str, Any]) -> None:
        changes = changes_between(before, model_snapshot(obj))
        if before and not changes:
            return
        audit_event_record(
            actor=request.user,
            action=Action.ADMIN_CHANGED if before else Action.ADMIN_CREATED,
            target=obj,
            changes=changes,
        )

    def _record_deletion(self, request: HttpRequest, obj: models.Model) -> None:
        audit_event_record(
            actor=request.user,
            action=Action.ADMIN_DELETED,
            target=obj,
            changes=changes_between(model_snapshot(obj), {}),
        )


class ReadOnlyModelAdmin(AuditedModelAdmin):
    """Computed data: staff may look, not touch."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyModelAdmin):
    list_display = ["created_at", "action", "target_type", "target_id", "actor"]
    list_filter = ["action", "target_type"]
    search_fields = ["target_id", "actor__username", "actor__email"]
    list_select_related = ["actor"]
    date_hierarchy = "created_at"


class RequestLogAdmin(ReadOnlyModelAdmin):
    list_display = ["request_timestamp", "user", "chapter_id", "status", "response_time_ms"]
    list_filter = ["status"]
    search_fields = ["chapter_id", "user__username", "user__email", "error_message"]
    list_select_related = ["user"]
    date_hierarchy = "request_timestamp"


admin.site.register(PersonalizationLog, RequestLogAdmin)


@admin.register(TranslationLog)
class TranslationLogAdmin(RequestLogAdmin):
    list_display = [*RequestLogAdmin.list_display, "target_language"]
    list_filter = ["status", "target_language"]
