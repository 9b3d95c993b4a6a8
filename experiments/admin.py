from typing import Any, cast

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db.models import Count, QuerySet
from django.http import HttpRequest

from config import admin_format as fmt
from config.errors import DomainError
from experiments.admin_results import experiment_results_view
from experiments.api.serializers import (
    ExperimentInputSerializer,
    StrategyInputSerializer,
    VariantInputSerializer,
)
from experiments.catalog import catalog_invalidate
from experiments.models import (
    SUBSCRIBABLE_EVENTS,
    Assignment,
    BanditWeightSnapshot,
    Context,
    Decision,
    Experiment,
    Holdout,
    Rollout,
    Strategy,
    StrategyConfig,
    Variant,
    WebhookDelivery,
    WebhookEndpoint,
)
from experiments.services import experiments as experiment_services
from experiments.services.experiments import (
    EXPERIMENT_FIELDS,
    VARIANT_FIELDS,
    experiment_create,
    experiment_update,
)
from experiments.services.holdouts import HOLDOUT_FIELDS, holdout_create, holdout_update
from experiments.services.rollouts import experiment_ship, rollout_deactivate
from experiments.services.strategies import EDITABLE_FIELDS, strategy_create, strategy_update
from experiments.services.webhooks import (
    MIN_SECRET_LENGTH,
    webhook_delivery_retry,
    webhook_endpoint_create,
    webhook_endpoint_delete,
    webhook_endpoint_update,
    webhook_secret_new,
)
from experiments.targeting import targeting_summary
from logs.admin import (
    AuditedModelAdmin,
    JSONFormFieldsMixin,
    ReadOnlyModelAdmin,
    ServiceModelAdmin,
    ServiceModelForm,
    form_errors_add,
    service_rehearsal,
)


def _serializer_check(form: forms.BaseForm, serializer: Any) -> None:
    """The API's input checks, with their errors shown on the form."""
    if not serializer.is_valid():
        form_errors_add(form, serializer.errors)


class StrategyAdminForm(ServiceModelForm):
    """Checked as `strategies/` checks its input, and saved by strategy_create or
    strategy_update: a baseline stays the active baseline (naming another strategy the
    baseline moves the role), params are validated per context, and a strategy that a
    running experiment serves stays active."""

    class Meta:
        model = Strategy
        fields = list(EDITABLE_FIELDS)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if not self.errors:
            stored = self.instance if self.instance.pk is not None else None
            _serializer_check(self, StrategyInputSerializer(instance=stored, data=self._data()))
        return cleaned

    def _data(self) -> dict[str, Any]:
        return {
            name: self.cleaned_data[name] for name in EDITABLE_FIELDS if name in self.cleaned_data
        }

    def write(self) -> Strategy:
        if self.instance.pk is None:
            return strategy_create(actor=self.actor, data=self._data())
        return strategy_update(actor=self.actor, strategy=self.instance, data=self._data())


@admin.register(Strategy)
class StrategyAdmin(ServiceModelAdmin):
    form = StrategyAdminForm
    list_display = ["name", "context", "key", "is_baseline", "is_active", "updated_at"]
    list_filter = ["context", "is_baseline", "is_active"]
    search_fields = ["name", "key", "description"]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Every decide in a context without its baseline would answer 409.
        return not (obj is not None and obj.is_baseline) and super().has_delete_permission(
            request, obj
        )

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> Any:
        deleted, model_count, perms_needed, protected = super().get_deleted_objects(objs, request)
        baselines = [
            f"{strategy} is its context's baseline: make another strategy the baseline first"
            for strategy in objs
            if strategy.is_baseline
        ]
        return deleted, model_count, perms_needed, [*protected, *baselines]

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        super().delete_model(request, obj)
        catalog_invalidate()

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Strategy]) -> None:
        super().delete_queryset(request, queryset)
        catalog_invalidate()


def _experiment_write(
    *,
    actor: Any,
    experiment: Experiment,
    data: dict[str, Any],
    variants: list[dict[str, Any]] | None,
) -> Experiment:
    if experiment.pk is None:
        return experiment_create(actor=actor, data=data, variants=variants or [])
    return experiment_update(actor=actor, experiment=experiment, data=data, variants=variants)


class ExperimentAdminForm(forms.ModelForm):
    """Checked as `experiments/` checks its input (ranges, dates the databases store, a
    unique name); the variants are checked with the experiment by VariantFormSet."""

    class Meta:
        model = Experiment
        fields = list(EXPERIMENT_FIELDS)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if not self.errors:
            data = {name: cleaned[name] for name in EXPERIMENT_FIELDS if name in cleaned}
            stored = self.instance if self.instance.pk is not None else None
            _serializer_check(self, ExperimentInputSerializer(instance=stored, data=data))
        return cleaned

    def _update_errors(self, errors: ValidationError) -> None:
        """Experiment.clean names a targeting rule's errors by path (`targeting.0.op`),
        which Django's add_error refuses (a 500): they are shown as the API's checks are,
        except on fields that already show the API's (the same rules, reported once)."""
        if not hasattr(errors, "error_dict"):
            form_errors_add(self, errors)
            return
        fresh = {
            key: messages_
            for key, messages_ in errors.message_dict.items()
            if key.partition(".")[0] not in self.errors
        }
        if fresh:
            form_errors_add(self, ValidationError(fresh))


class VariantForm(ServiceModelForm):
    """One variant row, checked as `experiments/` checks a nested variant (params an object,
    weights 0 to 1,000,000). Its rules with the experiment (a strategy of its context, params
    per context, one control) are the experiments service's, which the formset rehearses
    for all rows together."""

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if not self.errors and cleaned:
            data = {name: cleaned.get(name) for name in VARIANT_FIELDS}
            data["strategy"] = getattr(data["strategy"], "pk", None)
            _serializer_check(self, VariantInputSerializer(data=data))
        return cleaned

    def rehearse(self) -> None:
        pass


class VariantFormSet(forms.BaseInlineFormSet):
    """The experiment's variants, validated and saved together with the experiment by
    experiment_create / experiment_update (the variants are replaced as a whole)."""

    actor: Any = None

    def rows(self) -> list[tuple[forms.BaseForm, dict[str, Any]]]:
        return [
            (form, {name: form.cleaned_data.get(name) for name in VARIANT_FIELDS})
            for form in self.forms
            if not (self.can_delete and getattr(form, "cleaned_data", {}).get("DELETE"))
            and (form.instance.pk is not None or form.has_changed())
        ]

    def variants(self) -> list[dict[str, Any]] | None:
        """The variants to store, or None to keep the stored ones."""
        if self.instance.pk is not None and not self.has_changed():
            return None
        return [data for _form, data in self.rows()]

    def write(self, data: dict[str, Any]) -> Experiment:
        return _experiment_write(
            actor=self.actor, experiment=self.instance, data=data, variants=self.variants()
        )

    def clean(self) -> None:
        super().clean()
        experiment = self.instance
        if any(self.errors) or experiment.context not in Context.values:
            return
        try:
            experiment.full_clean(exclude=["winning_variant"], validate_constraints=False)
        except ValidationError:
            return  # the experiment's own form shows these; the rows are checked once it is valid
        data = {name: getattr(experiment, name) for name in EXPERIMENT_FIELDS}
        error = service_rehearsal(lambda: self.write(data))
        if error is not None:
            self._show(error)

    def _show(self, error: ValidationError) -> None:
        """Errors keyed `variants.<i>.<field>` go on their row; the others above the rows."""
        rows = [form for form, _data in self.rows()]
        errors = (
            error.message_dict
            if hasattr(error, "error_dict")
            else {NON_FIELD_ERRORS: error.messages}
        )
        above: list[str] = []
        for key, messages_ in errors.items():
            parts = key.split(".")
            if (
                len(parts) == 3
                and parts[0] == "variants"
                and parts[1].isdigit()
                and int(parts[1]) < len(rows)
            ):
                form = rows[int(parts[1])]
                form.add_error(parts[2] if parts[2] in form.fields else None, messages_)
            else:
                label = "" if key in (NON_FIELD_ERRORS, "variants") else f"{key}: "
                above.extend(f"{label}{message}" for message in messages_)
        if above:
            raise ValidationError(above)


class VariantInline(JSONFormFieldsMixin, admin.TabularInline):
    """Variants change only while the experiment is a DRAFT."""

    model = Variant
    form = VariantForm
    formset = VariantFormSet
    extra = 0
    max_num = 50
    fields = ["key", "name", "strategy", "params", "weight", "is_control"]
    # A plain select (a context has four strategies): the autocomplete widget cannot redisplay
    # a submitted id that is not a number (500).

    def get_formset(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        # A tampered TOTAL_FORMS builds at most this many rows (Django's default is 2,000).
        kwargs.setdefault("absolute_max", self.max_num)
        formset = cast(type[VariantFormSet], super().get_formset(request, obj, **kwargs))
        # inlineformset_factory made this class for this request alone.
        formset.actor = request.user
        return formset

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
    """Experiments are written by the experiments service, with their variants; only a
    DRAFT can be edited (afterwards the page is read-only and the lifecycle is the
    actions')."""

    form = ExperimentAdminForm
    list_display = ["name", "experiment_type", "context", "status", "started", "participants"]
    list_filter = ["status", "experiment_type", "context"]
    search_fields = ["name", "description"]
    inlines = [VariantInline]
    actions = [
        "start_experiments",
        "complete_experiments",
        "force_complete_experiments",
        "cancel_experiments",
        "ship_winners",
    ]
    readonly_fields = [
        "status",
        "who_takes_part",
        "burn_in",
        "winning_variant",
        "evaluated_at",
        "shipped_at",
        "completed_at",
        "created_at",
        "updated_at",
    ]
    BANDIT_FIELDS = (("algorithm", "epsilon", "min_arm_share"), "burn_in")

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        """The fields the experiment's type uses (DESIGN.md §3): allocation by a bandit
        algorithm for MULTI_ARMED_BANDIT, CUPED for the others (bandits are compared within
        allocation periods instead), the prior only for the Bayesian engine. A new
        experiment shows them all; the bandit's are folded away."""
        bandit = obj is None or obj.is_bandit
        fixed = obj is None or not obj.is_bandit
        bayesian = obj is None or obj.engine == Experiment.Engine.BAYESIAN
        analysis: list[Any] = [
            ("analysis", "sequential_tuning"),
            ("engine", "cuped") if fixed else "engine",
        ]
        if bayesian:
            analysis.append(("prior_mean", "prior_sd"))
        fieldsets: list[tuple[str | None, dict[str, Any]]] = [
            (None, {"fields": ("name", "description", "experiment_type", "context", "status")}),
            (
                "Design",
                {
                    "fields": (
                        ("traffic_percent", "salt"),
                        ("min_participants", "min_duration_days"),
                        ("primary_metric", "alpha"),
                        ("start_date", "end_date"),
                    )
                },
            ),
        ]
        if bandit:
            fieldsets.append(
                (
                    "Bandit allocation" + (" (multi-armed bandits only)" if obj is None else ""),
                    {
                        "fields": self.BANDIT_FIELDS,
                        "classes": ("collapse",) if obj is None else (),
                        "description": "The algorithm rewrites the variants' weights every "
                        "few minutes; epsilon applies to EPSILON_GREEDY only.",
                    },
                )
            )
        fieldsets += [
            (
                "Who takes part",
                {
                    "fields": ("targeting", "who_takes_part", ("namespace_start", "namespace_end")),
                    "description": "Targeting rules must all hold (empty: everyone); they are "
                    "checked once, when a learner is assigned. ACTIVE experiments of one "
                    "context need disjoint namespace ranges.",
                },
            ),
            ("Analysis", {"fields": tuple(analysis)}),
        ]
        if obj is not None:
            fieldsets.append(
                (
                    "Lifecycle",
                    {
                        "fields": (
                            ("winning_variant", "evaluated_at"),
                            ("completed_at", "shipped_at"),
                            ("created_at", "updated_at"),
                        )
                    },
                )
            )
        return self.formatted_fieldsets(request, obj, fieldsets)

    @admin.display(description="Burn-in")
    def burn_in(self, obj: Experiment) -> str:
        return (
            f"weights stay equal until every variant has {fmt.count(settings.BANDIT_BURN_IN)} "
            "learners with outcomes"
        )

    @admin.display(description="started", ordering="start_date")
    def started(self, obj: Experiment) -> str:
        return fmt.date(obj.start_date) if obj.start_date else "not yet"

    @admin.display(description="participants", ordering="participant_count")
    def participants(self, obj: Experiment) -> str:
        return fmt.count(getattr(obj, "participant_count", None))

    def get_queryset(self, request: HttpRequest) -> QuerySet[Experiment]:
        return super().get_queryset(request).annotate(participant_count=Count("assignments"))

    @admin.display(description="In words")
    def who_takes_part(self, obj: Experiment) -> str:
        summary = targeting_summary(obj.targeting or [])
        share = obj.namespace_end - obj.namespace_start
        return (
            f"{summary}; {obj.traffic_percent:g}% of the learners in namespace "
            f"[{obj.namespace_start:g}, {obj.namespace_end:g}) ({share:.0%} of the context)"
        )

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> Any:
        experiment = self.get_object(request, object_id)
        context = dict(extra_context or {})
        if experiment is not None:
            context["results"] = experiment_results_view(experiment)
        return super().change_view(request, object_id, form_url, extra_context=context)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        editable = obj is None or obj.status == Experiment.Status.DRAFT
        return editable and super().has_change_permission(request, obj)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        """Nothing yet: save_related writes the experiment and its variants in one call."""

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        data = {
            name: form.cleaned_data[name] for name in EXPERIMENT_FIELDS if name in form.cleaned_data
        }
        variant_formsets = [f for f in formsets if isinstance(f, VariantFormSet)]
        if variant_formsets:
            experiment = variant_formsets[0].write(data)
        else:
            experiment = _experiment_write(
                actor=request.user, experiment=form.instance, data=data, variants=None
            )
        form.instance.pk = experiment.pk
        form.instance.refresh_from_db()
        for formset in formsets:
            # The service replaced the rows and recorded them in its audit event; the admin's
            # change message names the experiment's fields.
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
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

    @admin.action(description="Ship the winner of selected experiments (becomes the rollout)")
    def ship_winners(self, request: HttpRequest, queryset: QuerySet[Experiment]) -> None:
        for experiment in queryset:
            try:
                rollout = experiment_ship(actor=request.user, experiment=experiment)
            except DomainError as exc:
                self.message_user(request, f"{experiment.name}: {exc.detail}", messages.ERROR)
            else:
                self.message_user(
                    request,
                    f"{experiment.name}: {rollout.strategy.name} now serves "
                    f"{rollout.get_context_display()}.",
                    messages.SUCCESS,
                )


class HoldoutAdminForm(ServiceModelForm):
    """Saved by holdout_create or holdout_update: an active holdout keeps its percent and
    salt."""

    contexts = forms.MultipleChoiceField(
        choices=Context.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Leave all unticked to cover every context.",
    )

    class Meta:
        model = Holdout
        fields = list(HOLDOUT_FIELDS)

    def _data(self) -> dict[str, Any]:
        data = {
            name: self.cleaned_data[name] for name in HOLDOUT_FIELDS if name in self.cleaned_data
        }
        data["contexts"] = list(data.get("contexts") or [])
        return data

    def write(self) -> Holdout:
        if self.instance.pk is None:
            return holdout_create(actor=self.actor, data=self._data())
        stored = Holdout.objects.get(pk=self.instance.pk)
        return holdout_update(actor=self.actor, holdout=stored, data=self._data())


def holdout_worth(holdout: Holdout) -> str:
    """The last hourly evaluation in words: everyone else's mean reward against the
    held-out learners', with the always-valid interval."""
    results = holdout.results or {}
    held, rest = results.get("holdout") or {}, results.get("everyone_else") or {}
    if results.get("difference") is None:
        return (
            f"not measurable yet ({fmt.count(held.get('learners', 0))} held out, "
            f"{fmt.count(rest.get('learners', 0))} others with outcomes)"
            if results
            else "not evaluated yet"
        )
    interval = fmt.interval(results.get("ci_lower"), results.get("ci_upper"), sign=True)
    lift = results.get("relative_lift")
    relative = f" ({fmt.percent(lift, sign=True)})" if lift is not None else ""
    verdict = "significant" if results.get("significant") else "not significant"
    return (
        f"{fmt.number(results['difference'], sign=True)}{relative} mean reward {interval}, "
        f"{verdict}: {fmt.count(rest.get('learners', 0))} learners at "
        f"{fmt.number(rest.get('mean'))} against {fmt.count(held.get('learners', 0))} held out "
        f"at {fmt.number(held.get('mean'))}"
    )


@admin.register(Holdout)
class HoldoutAdmin(ServiceModelAdmin):
    form = HoldoutAdminForm
    list_display = ["name", "covers", "percent", "is_active", "worth", "started_at"]
    list_filter = ["is_active"]
    search_fields = ["name"]
    readonly_fields = ["started_at", "worth", "evaluated_at"]

    @admin.display(description="What personalization is worth")
    def worth(self, obj: Holdout) -> str:
        return holdout_worth(obj)

    @admin.display(description="Contexts")
    def covers(self, obj: Holdout) -> str:
        return (
            ", ".join(Context(c).label for c in obj.contexts) if obj.contexts else "every context"
        )

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # deactivate instead: the learners it held out stay in its results


@admin.register(Rollout)
class RolloutAdmin(ReadOnlyModelAdmin):
    list_display = ["display_title", "experiment", "is_active", "created_at"]
    list_filter = ["context", "is_active"]
    list_select_related = ["strategy", "experiment"]

    actions = ["deactivate_rollouts"]

    def object_title(self, obj: Rollout) -> str:
        origin = f", shipped from {obj.experiment.name}" if obj.experiment is not None else ""
        return f"{obj.strategy.name} for {obj.get_context_display()}{origin}"

    @admin.action(description="Deactivate selected rollouts (their learners get the baseline)")
    def deactivate_rollouts(self, request: HttpRequest, queryset: QuerySet[Rollout]) -> None:
        for rollout in queryset:
            rollout_deactivate(actor=request.user, rollout=rollout)
        self.message_user(request, f"{queryset.count()} rollout(s) inactive.", messages.SUCCESS)


@admin.register(StrategyConfig)
class StrategyConfigAdmin(ReadOnlyModelAdmin):
    list_display = [
        "display_title",
        "is_active",
        "times_selected",
        "avg_reward",
        "confidence_score",
        "effectiveness_score",
    ]
    list_filter = ["context", "is_active", "strategy__key"]
    search_fields = ["user__username", "user__email", "user__external_id"]
    list_select_related = ["user", "strategy"]

    def object_title(self, obj: StrategyConfig) -> str:
        return f"{obj.user} · {obj.get_context_display()} · {obj.strategy.name}"


def _experiment_arm(experiment: Experiment | None, variant: Variant | None) -> str:
    if experiment is None:
        return fmt.UNDEFINED
    return f"{experiment.name}: {variant.name or variant.key}" if variant else experiment.name


@admin.register(Decision)
class DecisionAdmin(ReadOnlyModelAdmin):
    list_display = ["display_title", "created_at", "source", "arm", "latency_ms"]
    list_filter = ["context", "source", "personalization_applied"]
    search_fields = ["user__username", "user__email", "user__external_id"]
    list_select_related = ["user", "strategy", "experiment", "variant"]
    date_hierarchy = "created_at"

    def object_title(self, obj: Decision) -> str:
        return f"{obj.strategy.name} for {obj.user} · {obj.get_context_display()}"

    @admin.display(description="experiment")
    def arm(self, obj: Decision) -> str:
        return _experiment_arm(obj.experiment, obj.variant)


@admin.register(Assignment)
class AssignmentAdmin(ReadOnlyModelAdmin):
    list_display = ["display_title", "assigned_at", "propensity"]
    list_filter = ["experiment"]
    search_fields = ["user__username", "user__email", "user__external_id"]
    list_select_related = ["experiment", "user", "variant"]

    def object_title(self, obj: Assignment) -> str:
        return f"{obj.user} in {_experiment_arm(obj.experiment, obj.variant)}"


@admin.register(BanditWeightSnapshot)
class BanditWeightSnapshotAdmin(ReadOnlyModelAdmin):
    list_display = ["display_title", "shares", "seed"]
    list_filter = ["experiment"]
    list_select_related = ["experiment"]

    def object_title(self, obj: BanditWeightSnapshot) -> str:
        return f"{obj.experiment.name} · allocation of {fmt.moment(obj.computed_at)}"

    @admin.display(description="weights")
    def shares(self, obj: BanditWeightSnapshot) -> str:
        weights = obj.weights if isinstance(obj.weights, dict) else {}
        return ", ".join(f"{key} {fmt.percent(share)}" for key, share in weights.items())


# --- Webhooks -------------------------------------------------------------------------------


class WebhookEndpointAdminForm(ServiceModelForm):
    """Saved by webhook_endpoint_create / webhook_endpoint_update, which check the URL
    (http or https, no private address unless WEBHOOK_ALLOW_PRIVATE) and the events. The
    secret can be typed (or generated) when the endpoint is added and is never shown again."""

    events = forms.MultipleChoiceField(
        choices=[(event.value, event.label) for event in SUBSCRIBABLE_EVENTS],
        widget=forms.CheckboxSelectMultiple,
    )
    url = forms.URLField(max_length=500, assume_scheme="https")

    class Meta:
        model = WebhookEndpoint
        fields = ["name", "url", "events", "is_active"]

    def _data(self) -> dict[str, Any]:
        names = ["name", "url", "events", "is_active", "secret"]
        return {name: self.cleaned_data[name] for name in names if name in self.cleaned_data}

    def write(self) -> WebhookEndpoint:
        if self.instance.pk is None:
            return webhook_endpoint_create(actor=self.actor, data=self._data())
        return webhook_endpoint_update(actor=self.actor, endpoint=self.instance, data=self._data())


class WebhookEndpointAddForm(WebhookEndpointAdminForm):
    secret = forms.CharField(
        required=False,
        max_length=200,
        min_length=MIN_SECRET_LENGTH,
        help_text="Leave blank to generate one. It is shown once, after saving.",
    )

    class Meta(WebhookEndpointAdminForm.Meta):
        fields = ["name", "url", "events", "is_active", "secret"]


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ServiceModelAdmin):
    list_display = ["display_title", "url", "is_active", "event_list", "created_at"]
    list_filter = ["is_active"]
    search_fields = ["name", "url"]
    readonly_fields = ["created_at", "updated_at"]
    actions = ["rotate_secrets"]

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any):
        kwargs["form"] = WebhookEndpointAddForm if obj is None else WebhookEndpointAdminForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = ["name", "url", "events", "is_active"]
        return [*fields, "secret"] if obj is None else [*fields, "created_at", "updated_at"]

    @admin.display(description="events")
    def event_list(self, obj: WebhookEndpoint) -> str:
        return ", ".join(obj.events) if isinstance(obj.events, list) else ""

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if not change:
            self.message_user(
                request,
                f"{obj}: the signing secret is {obj.secret} — store it now, it is not shown again.",
                messages.WARNING,
            )

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        webhook_endpoint_delete(actor=request.user, endpoint=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        for endpoint in queryset:
            webhook_endpoint_delete(actor=request.user, endpoint=endpoint)

    @admin.action(description="Rotate the secret of selected endpoints (shown once)")
    def rotate_secrets(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        for endpoint in queryset:
            secret = webhook_secret_new()
            try:
                webhook_endpoint_update(
                    actor=request.user, endpoint=endpoint, data={"secret": secret}
                )
            except ValidationError as exc:
                self.message_user(request, f"{endpoint}: {'; '.join(exc.messages)}", messages.ERROR)
            else:
                self.message_user(
                    request,
                    f"{endpoint}: the new signing secret is {secret} — store it now, it is not "
                    "shown again.",
                    messages.WARNING,
                )


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyModelAdmin):
    list_display = [
        "display_title",
        "created_at",
        "attempts",
        "response_code",
        "next_attempt_at",
    ]
    list_filter = ["status", "event", "endpoint"]
    search_fields = ["endpoint__name", "endpoint__url", "last_error"]
    list_select_related = ["endpoint"]
    date_hierarchy = "created_at"
    actions = ["retry_now"]

    def object_title(self, obj: WebhookDelivery) -> str:
        return f"{obj.get_event_display()} to {obj.endpoint} ({obj.get_status_display().lower()})"

    @admin.action(description="Retry selected deliveries now")
    def retry_now(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        for delivery in queryset:
            try:
                webhook_delivery_retry(actor=request.user, delivery=delivery)
            except DomainError as exc:
                self.message_user(
                    request, f"{self.object_title(delivery)}: {exc.detail}", messages.ERROR
                )
            else:
                self.message_user(
                    request, f"{self.object_title(delivery)}: queued for now.", messages.SUCCESS
                )
