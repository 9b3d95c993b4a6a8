from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from experiments.admin import ExperimentAdmin
from experiments.models import Experiment
from logs.admin import ReadOnlyModelAdmin
from outcomes.models import Effectiveness, Outcome


@admin.register(Outcome)
class OutcomeAdmin(ReadOnlyModelAdmin):
    list_display = [
        "occurred_at",
        "user",
        "event_id",
        "context",
        "strategy_variant",
        "outcome_type",
        "reward",
        "personalization_applied",
    ]
    list_filter = ["context", "strategy_variant", "outcome_type", "personalization_applied"]
    search_fields = ["event_id", "user__username", "user__email", "user__external_id"]
    list_select_related = ["user"]
    date_hierarchy = "occurred_at"


@admin.register(Effectiveness)
class EffectivenessAdmin(ReadOnlyModelAdmin):
    list_display = [
        "window_start",
        "scope",
        "context",
        "strategy",
        "user",
        "n_personalized",
        "n_baseline",
        "difference",
        "p_value",
        "composite_score",
        "is_statistically_significant",
    ]
    list_filter = ["scope", "context", "strategy__key", "is_statistically_significant"]
    search_fields = ["user__username", "user__email", "user__external_id"]
    list_select_related = ["strategy", "user"]
    date_hierarchy = "window_start"


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
