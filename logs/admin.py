"""The admin's audit trail and its rules. Every ModelAdmin in the project derives from
AuditedModelAdmin, so each create, change and delete made by staff is an AuditEvent with the
field diff, written in the admin's own transaction. Objects that a service writes are saved
through it (ServiceModelForm), so the admin keeps every rule the API keeps."""

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, cast

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import NON_FIELD_ERRORS, FieldDoesNotExist, ValidationError
from django.db import models, transaction
from django.db.models import QuerySet
from django.forms import BaseModelFormSet, ModelForm
from django.forms.models import construct_instance
from django.http import HttpRequest
from rest_framework.settings import api_settings

from config import admin_format as fmt
from config.errors import DomainError
from logs.models import AuditEvent, PersonalizationLog, TranslationLog
from logs.services import audit_event_record, changes_between, model_snapshot

Action = AuditEvent.Action

# Nesting deeper than this is no configuration a person types; it only costs the parser.
MAX_JSON_DEPTH = 32


def json_value_error(value: Any) -> str | None:
    """Why `value` cannot be stored as JSON in every supported database, or None: numbers must
    be finite (PostgreSQL's jsonb has no NaN or Infinity), strings free of NUL and lone
    surrogates (neither has a jsonb form), nesting bounded."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return f"Nest at most {MAX_JSON_DEPTH} levels deep."
        if isinstance(item, float) and not math.isfinite(item):
            return "Numbers must be finite (no NaN or Infinity)."
        if isinstance(item, str):
            if "\x00" in item:
                return "Text may not contain NUL characters."
            if any("\ud800" <= char <= "\udfff" for char in item):
                return "Text may not contain unpaired surrogates."
        elif isinstance(item, dict):
            stack.extend((key, depth) for key in item)
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
    return None


class FiniteJSONFormField(forms.JSONField):
    """Django's JSON form field, refusing what the databases cannot store (see
    json_value_error) and input nested beyond the parser's recursion limit. For a column
    that is not nullable, an empty box (or null) stores the column's default, which Django
    would otherwise pass to the database as NULL."""

    def __init__(self, *, empty: Callable[[], Any] | None = None, **kwargs: Any):
        self.empty = empty
        super().__init__(**kwargs)

    def to_python(self, value: Any) -> Any:
        try:
            converted = super().to_python(value)
        except RecursionError:
            raise ValidationError(self.error_messages["invalid"], code="invalid") from None
        if converted is None and self.empty is not None:
            return self.empty()
        message = json_value_error(converted)
        if message:
            raise ValidationError(message, code="invalid")
        return converted

    def bound_data(self, data: Any, initial: Any) -> Any:
        """What was typed is shown again as typed when it cannot be stored (a lone
        surrogate could not even be written into the page)."""
        try:
            value = super().bound_data(data, initial)
        except RecursionError:
            return forms.fields.InvalidJSONInput(data)
        if isinstance(data, str) and json_value_error(value):
            return forms.fields.InvalidJSONInput(data)
        return value


class JSONFormFieldsMixin:
    """Every JSONField of an admin form is a FiniteJSONFormField."""

    def formfield_for_dbfield(self, db_field: models.Field, request: HttpRequest, **kwargs: Any):
        if isinstance(db_field, models.JSONField):
            kwargs.setdefault("form_class", FiniteJSONFormField)
            if not db_field.null:
                kwargs.setdefault("empty", db_field.get_default)
        return super().formfield_for_dbfield(db_field, request, **kwargs)  # type: ignore[misc]


def _error_leaves(errors: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], str]]:
    """(path, message) for every message in a Django ValidationError or a DRF error tree
    ({field: [messages]}, list children keyed by index, nested serializers)."""
    if isinstance(errors, ValidationError):
        if hasattr(errors, "error_dict"):
            yield from _error_leaves(errors.message_dict, path)
        else:
            for message in errors.messages:
                yield path, message
    elif isinstance(errors, Mapping):
        for key, child in errors.items():
            whole = key in (NON_FIELD_ERRORS, api_settings.NON_FIELD_ERRORS_KEY)
            yield from _error_leaves(child, path if whole else (*path, str(key)))
    elif isinstance(errors, list | tuple):
        for child in errors:
            yield from _error_leaves(child, path)
    else:
        yield path, str(errors)


def form_errors_add(form: forms.BaseForm, errors: Any) -> None:
    """Show `errors` (from a service or a serializer) on `form`: at the field they name when
    the form has it, otherwise above the form with their path."""
    for path, message in _error_leaves(errors):
        dotted = ".".join(path)
        head, _, rest = dotted.partition(".")
        if head in form.fields:
            form.add_error(head, f"{rest}: {message}" if rest else message)
        else:
            form.add_error(None, f"{dotted}: {message}" if dotted else message)


class _Rehearsal(Exception):
    """Raised to roll a rehearsal back."""


def service_rehearsal(call: Callable[[], object]) -> ValidationError | None:
    """Run a service call in a savepoint that is always rolled back, and return what it
    refused (a DomainError as an error on its attribute), or None when it would succeed.
    The admin rehearses the write while validating a form and performs it on save, so every
    rule the service keeps is a form error instead of a 500, without copying the rules."""
    try:
        with transaction.atomic():
            call()
            raise _Rehearsal
    except _Rehearsal:
        return None
    except ValidationError as exc:
        return exc
    except DomainError as exc:
        return ValidationError({exc.attr or NON_FIELD_ERRORS: [exc.detail]})


class ServiceModelForm(forms.ModelForm):
    """A model form whose object a service validates and writes. The form cleans its fields
    and builds the instance; the model's own rules are the service's (it runs full_clean
    inside its transaction, after e.g. demoting another baseline), so they are checked by
    `rehearse()` rather than against the rows as they stand. `actor` is set per request by
    ServiceModelAdmin."""

    actor: Any = None

    def _post_clean(self) -> None:
        try:
            self.instance = construct_instance(
                self, self.instance, self._meta.fields, self._meta.exclude
            )
        except ValidationError as exc:
            form_errors_add(self, exc)
            return
        if not self.errors:
            self.rehearse()

    def write(self) -> models.Model:
        """Create or update the object through its service; returns the stored object."""
        raise NotImplementedError

    def rehearse(self) -> None:
        error = service_rehearsal(self.write)
        if error is not None:
            form_errors_add(self, error)


# --- Titles and figures as people read them (DESIGN.md §8) --------------------------------

FORMATTED = "_formatted"  # suffix of the generated read-only display of a numeric field
# Integer fields that count something get thousands separators; other integers (codes,
# seeds, positions, ratings) are shown as stored.
COUNT_FIELDS = frozenset(
    {
        "sample_size",
        "times_selected",
        "times_rewarded",
        "selections_purged",
        "attempts",
        "min_participants",
    }
)


def figure_format(name: str, field: models.Field) -> Callable[[Any], str] | None:
    """How a numeric field reads, by what it holds; None to leave it to Django."""
    if isinstance(field, models.FloatField):
        if "p_value" in name:
            return fmt.p_value
        if name.endswith(("_improvement", "_change")):
            return lambda value: fmt.percent(value, sign=True, of_hundred=True)
        if name in ("composite_score", "effectiveness_score"):
            return fmt.score
        if name.endswith("_ms"):
            return fmt.milliseconds
        if name == "difference":
            return lambda value: fmt.number(value, sign=True)
        return fmt.number
    if isinstance(field, models.IntegerField) and (name.startswith("n_") or name in COUNT_FIELDS):
        return fmt.count
    return None


class FiguresAndTitlesMixin:
    """Every admin page titles objects by their names and shows figures formatted by
    config.admin_format: read-only float and count fields (list columns and detail pages)
    are replaced by a generated `<field>_formatted` display (sortable as the field), and
    `object_title` names the object in the list's first column, the change page's heading,
    its browser title and the breadcrumbs."""

    model: type[models.Model]

    def object_title(self, obj: Any) -> str:
        return str(obj)

    @admin.display(description="name")
    def display_title(self, obj: Any) -> str:
        return self.object_title(obj)

    def __getattr__(self, name: str) -> Any:
        # Only reached when normal lookup fails: builds `<field>_formatted` on demand.
        if not name.endswith(FORMATTED):
            raise AttributeError(name)
        field_name = name.removesuffix(FORMATTED)
        try:
            field = self.model._meta.get_field(field_name)
        except FieldDoesNotExist:
            raise AttributeError(name) from None
        formatter = figure_format(field_name, cast(models.Field, field))
        if formatter is None:
            raise AttributeError(name)

        def display(obj: Any) -> str:
            return formatter(getattr(obj, field_name))

        # The figure says its unit.
        label = str(getattr(field, "verbose_name", field_name)).removesuffix(" ms")
        display.short_description = label  # type: ignore[attr-defined]
        display.admin_order_field = field_name  # type: ignore[attr-defined]
        return display

    def _formatted(self, name: Any) -> Any:
        if not isinstance(name, str):
            return name
        if name == "__str__":
            return "display_title"
        try:
            field = self.model._meta.get_field(name)
        except FieldDoesNotExist:
            return name
        if figure_format(name, cast(models.Field, field)) is None:
            return name
        return f"{name}{FORMATTED}"

    def get_list_display(self, request: HttpRequest) -> Any:
        names = super().get_list_display(request)  # type: ignore[misc]
        return [self._formatted(name) for name in names]

    def get_list_display_links(self, request: HttpRequest, list_display: Sequence[Any]) -> Any:
        links = super().get_list_display_links(request, list_display)  # type: ignore[misc]
        return [self._formatted(name) for name in links] if links else links

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        names = super().get_readonly_fields(request, obj)  # type: ignore[misc]
        return [self._formatted(name) for name in names]

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        fieldsets = super().get_fieldsets(request, obj)  # type: ignore[misc]
        return self.formatted_fieldsets(request, obj, fieldsets)

    def formatted_fieldsets(self, request: HttpRequest, obj: Any, fieldsets: Any) -> Any:
        """`fieldsets` with each read-only figure replaced by its formatted display."""
        if obj is None:
            return fieldsets
        editable = self.has_change_permission(request, obj)
        readonly = set(super().get_readonly_fields(request, obj))  # type: ignore[misc]

        def shown(name: Any) -> Any:
            if isinstance(name, list | tuple):
                return type(name)(shown(part) for part in name)
            if editable and name not in readonly:
                return name
            return self._formatted(name)

        return [
            (title, {**options, "fields": shown(options.get("fields", ()))})
            for title, options in fieldsets
        ]

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> Any:
        context = dict(extra_context or {})
        if object_id is not None:
            obj = self.get_object(request, unquote(object_id))
            if obj is not None:
                context.setdefault("subtitle", self.object_title(obj))
                context.setdefault("object_title", self.object_title(obj))
        return super().changeform_view(  # type: ignore[misc]
            request, object_id, form_url, extra_context=context
        )


class AuditedModelAdmin(FiguresAndTitlesMixin, JSONFormFieldsMixin, admin.ModelAdmin):
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


class ServiceModelAdmin(AuditedModelAdmin):
    """An admin whose form is a ServiceModelForm: saving calls the service, which writes the
    object and its audit event."""

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any):
        form = cast(type[ServiceModelForm], super().get_form(request, obj, change=change, **kwargs))
        # modelform_factory made this class for this request alone.
        form.actor = request.user
        return form

    def save_model(self, request: HttpRequest, obj: Any, form: ModelForm, change: bool) -> None:
        saved = cast(ServiceModelForm, form).write()
        obj.pk = saved.pk
        obj.refresh_from_db()


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
