import datetime
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from config import admin_format as fmt
from experiments.admin import ExperimentAdmin
from experiments.models import Experiment
from logs.admin import ReadOnlyModelAdmin
from outcomes.models import Effectiveness, Outcome


@admin.register(Outcome)
class OutcomeAdmin(ReadOnlyModelAdmin):
    list_display = [
        "display_title",
        "occurred_at",
        "strategy_variant",
        "reward",
        "personalization_applied",
    ]
    list_filter = ["context", "strategy_variant", "outcome_type", "personalization_applied"]
    search_fields = ["event_id", "user__username", "user__email", "user__external_id"]
    list_select_related = ["user"]
    date_hierarchy = "occurred_at"

    def object_title(self, obj: Outcome) -> str:
        return f"{obj.get_outcome_type_display()} by {obj.user} · {obj.get_context_display()}"


def window_length(start: datetime.datetime, end: datetime.datetime) -> str:
    return fmt.duration(end - start)


@admin.register(Effectiveness)
class EffectivenessAdmin(ReadOnlyModelAdmin):
    list_display = [
        "display_title",
        "learners",
        "difference",
        "p_value",
        "composite_score",
        "is_statistically_significant",
    ]
    list_filter = ["scope", "context", "strategy__key", "is_statistically_significant"]
    search_fields = ["user__username", "user__email", "user__external_id"]
    list_select_related = ["strategy", "user"]
    date_hierarchy = "window_start"

    def object_title(self, obj: Effectiveness) -> str:
        who = "everyone" if obj.user_id is None else str(obj.user)
        return (
            f"{obj.strategy.name} for {who} · {obj.get_context_display()} · "
            f"{window_length(obj.window_start, obj.window_end)} from {fmt.date(obj.window_start)}"
        )

    @admin.display(description="personalized / baseline", ordering="sample_size")
    def learners(self, obj: Effectiveness) -> str:
        unit = "learners" if obj.scope == Effectiveness.Scope.GLOBAL else "outcomes"
        return f"{fmt.count(obj.n_personalized)} / {fmt.count(obj.n_baseline)} {unit}"


@admin.action(description="Evaluate now (results on the experiment's page)")
def evaluate_now(model_admin: Any, request: HttpRequest, queryset: QuerySet[Experiment]) -> None:
    from outcomes.services.evaluation import experiment_evaluate

    for experiment in queryset:
        results = experiment_evaluate(experiment=experiment)
        model_admin.message_user(
            request,
            f"{experiment.name}: evaluated, winner {results['winner'] or 'none yet'}.",
            messages.SUCCESS,
        )


# The experiments app cannot import this one; evaluation is offered on its admin from here.
ExperimentAdmin.actions = [*ExperimentAdmin.actions, evaluate_now]
