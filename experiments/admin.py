from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from config.errors import DomainError
from experiments.catalog import catalog_invalidate
from experiments.models import (
    Assignment,
    BanditWeightSnapshot,
    Decision,
    Experiment,
    Strategy,
    StrategyConfig,
    Variant,
)
from experiments.params import params_errors
from experiments.selectors import experiment_results_display
from experiments.services import experiments as experiment_services
from logs.admin import AuditedModelAdmin, ReadOnlyModelAdmin


class StrategyAdminForm(forms.ModelForm):
    class Meta:
        model = Strategy
        fields = [
            "context",
            "key",
            "name",
            "description",
            "default_params",
            "is_baseline",
            "is_active",
        ]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        context, params = cleaned.get("context"), cleaned.get("default_params")
        if context and params is not None:
            errors = params_errors(context, params, complete=True)
            if errors:
                self.add_error(
                    "default_params", [f"{name}: {message}" for name, message in errors.items()]
                )
        return cleaned


@admin.register(Strategy)
class StrategyAdmin(AuditedModelAdmin):
    form = StrategyAdminForm
    list_display = ["name", "context", "key", "is_baseline", "is_active", "updated_at"]
    list_filter = ["context", "is_baseline", "is_active"]
    search_fields = ["name", "key", "description"]

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        catalog_invalidate()

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        super().delete_model(request, obj)
        catalog_invalidate()


class VariantInline(admin.TabularInline):
    """Variants change only while the experiment is a DRAFT."""

    model = Variant
    extra = 0
    fields = ["key", "name", "strategy", "params", "weight", "is_control"]
    autocomplete_fields = ["strategy"]

    def _editable(self, obj: Experiment | None) -> bool:
        return obj is None or obj.status == Experiment.Status.DRAFT

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._editable(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._editable(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._editable(obj) and super().has_delete_permission(request, obj)


@admin.register(Experiment)
class ExperimentAdmin(AuditedModelAdmin):
    list_display = ["name", "experiment_type", "context", "status", "start_date", "completed_at"]
    list_filter = ["status", "experiment_type", "context"]
    search_fields = ["name", "description"]
    inlines = [VariantInline]
    actions = [
        "start_experiments",
        "complete_experiments",
        "force_complete_experiments",
        "cancel_experiments",
    ]
    readonly_fields = [
        "status",
        "variant_metrics",
        "winning_variant",
        "statistical_significance",
        "srm_p_value",
        "evaluated_at",
        "completed_at",
        "created_at",
        "updated_at",
    ]
    fieldsets = (
        (None, {"fields": ("name", "description", "experiment_type", "context", "status")}),
        (
            "Design",
            {
                "fields": (
                    ("traffic_percent", "salt"),
                    ("min_participants", "min_duration_days"),
                    ("primary_metric", "alpha"),
                    ("algorithm", "epsilon", "min_arm_share"),
                    ("start_date", "end_date"),
                )
            },
        ),
        (
            "Results (cached by the last evaluation)",
            {
                "fields": (
                    "variant_metrics",
                    "winning_variant",
                    "statistical_significance",
                    "srm_p_value",
                    "evaluated_at",
                    "completed_at",
                )
            },
        ),
    )

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> Any:
        experiment = self.get_object(request, object_id)
        context = dict(extra_context or {})
        if experiment is not None:
            context["results"] = experiment_results_display(experiment)
        return super().change_view(request, object_id, form_url, extra_context=context)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is not None and obj.status != Experiment.Status.DRAFT:
            # Only the description stays editable once an experiment has left DRAFT.
            return [f.name for f in Experiment._meta.fields if f.name != "description"]
        return self.readonly_fields

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        catalog_invalidate()

    def _apply(
        self, request: HttpRequest, queryset: QuerySet[Experiment], verb: str, **kwargs: Any
    ) -> None:
        service = getattr(experiment_services, f"experiment_{verb}")
        for experiment in queryset:
            try:
                service(actor=request.user, experiment=experiment, **kwargs)
            except DomainError as exc:
                self.message_user(request, f"{experiment.name}: {exc.detail}", messages.ERROR)
            else:
                self.message_user(request, f"{experiment.name}: {verb} done.", messages.SUCCESS)

    @admin.action(description="Start selected experiments")
    def start_experiments(self, request: HttpRequest, queryset: QuerySet[Experiment]) -> None:
        self._apply(request, queryset, "start")

    @admin.action(description="Complete selected experiments (when ready)")
    def complete_experiments(self, request: HttpRequest, queryset: QuerySet[Experiment]) -> None:
        self._apply(request, queryset, "complete")

    @admin.action(description="Complete selected experiments now (force; audited)")
    def force_complete_experiments(
        self, request: HttpRequest, queryset: QuerySet[Experiment]
    ) -> None:
        self._apply(request, queryset, "complete", force=True)

    @admin.action(description="Cancel selected experiments")
    def cancel_experiments(self, request: HttpRequest, queryset: QuerySet[Experiment]) -> None:
        self._apply(request, queryset, "cancel")


@admin.register(StrategyConfig)
class StrategyConfigAdmin(ReadOnlyModelAdmin):
    list_display = [
        "user",
        "context",
        "strategy",
        "is_active",
        "times_selected",
        "avg_reward",
        "confidence_score",
        "effectiveness_score",
    ]
    list_filter = ["context", "is_active", "strategy__key"]
    search_fields = ["user__username", "user__email", "user__external_id"]
    list_select_related = ["user", "strategy"]


@admin.register(Decision)
class DecisionAdmin(ReadOnlyModelAdmin):
    list_display = [
        "created_at",
        "user",
        "context",
        "strategy",
        "source",
        "experiment",
        "variant",
        "propensity",
        "latency_ms",
    ]
    list_filter = ["context", "source", "personalization_applied"]
    search_fields = ["user__username", "user__email", "user__external_id"]
    list_select_related = ["user", "strategy", "experiment", "variant"]
    date_hierarchy = "created_at"


@admin.register(Assignment)
class AssignmentAdmin(ReadOnlyModelAdmin):
    list_display = ["assigned_at", "experiment", "user", "variant", "propensity"]
    list_filter = ["experiment"]
    search_fields = ["user__username", "user__email", "user__external_id"]
    list_select_related = ["experiment", "user", "variant"]


@admin.register(BanditWeightSnapshot)
class BanditWeightSnapshotAdmin(ReadOnlyModelAdmin):
    list_display = ["computed_at", "experiment", "weights", "seed"]
    list_filter = ["experiment"]
    list_select_related = ["experiment"]
