import django_filters

from config.api.filters import DateTimeFilter, IdFilter
from experiments.models import Context
from outcomes.models import Effectiveness, Outcome


class OutcomeFilter(django_filters.FilterSet):
    context = django_filters.ChoiceFilter(choices=Context.choices)
    outcome_type = django_filters.ChoiceFilter(choices=Outcome.Type.choices)
    strategy = django_filters.CharFilter(field_name="strategy_variant")
    experiment = IdFilter(field_name="experiment_id")
    since = DateTimeFilter(field_name="occurred_at", lookup_expr="gte")
    until = DateTimeFilter(field_name="occurred_at", lookup_expr="lt")

    class Meta:
        model = Outcome
        fields = ["context", "outcome_type", "strategy", "experiment", "since", "until"]


class EffectivenessFilter(django_filters.FilterSet):
    scope = django_filters.ChoiceFilter(choices=Effectiveness.Scope.choices)
    context = django_filters.ChoiceFilter(choices=Context.choices)
    strategy = django_filters.CharFilter(field_name="strategy__key")
    window = DateTimeFilter(field_name="window_start")
    since = DateTimeFilter(field_name="window_start", lookup_expr="gte")
    significant = django_filters.BooleanFilter(field_name="is_statistically_significant")

    class Meta:
        model = Effectiveness
        fields = ["scope", "context", "strategy", "window", "since", "significant"]
