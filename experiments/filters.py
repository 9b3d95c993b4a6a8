import django_filters

from config.api.filters import DateTimeFilter, IdFilter
from experiments.models import Context, Decision, Experiment, Strategy, StrategyConfig


class StrategyFilter(django_filters.FilterSet):
    context = django_filters.ChoiceFilter(choices=Context.choices)
    is_active = django_filters.BooleanFilter()
    is_baseline = django_filters.BooleanFilter()

    class Meta:
        model = Strategy
        fields = ["context", "is_active", "is_baseline"]


class StrategyConfigFilter(django_filters.FilterSet):
    context = django_filters.ChoiceFilter(choices=Context.choices)
    is_active = django_filters.BooleanFilter()

    class Meta:
        model = StrategyConfig
        fields = ["context", "is_active"]


class ExperimentFilter(django_filters.FilterSet):
    context = django_filters.ChoiceFilter(choices=Context.choices)
    status = django_filters.MultipleChoiceFilter(choices=Experiment.Status.choices)
    experiment_type = django_filters.ChoiceFilter(choices=Experiment.Type.choices)

    class Meta:
        model = Experiment
        fields = ["context", "status", "experiment_type"]


class DecisionFilter(django_filters.FilterSet):
    context = django_filters.ChoiceFilter(choices=Context.choices)
    source = django_filters.ChoiceFilter(choices=Decision.Source.choices)
    experiment = IdFilter(field_name="experiment_id")
    since = DateTimeFilter(field_name="created_at", lookup_expr="gte")
    until = DateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Decision
        fields = ["context", "source", "experiment", "since", "until"]
