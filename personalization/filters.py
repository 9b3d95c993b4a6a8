import django_filters

from config.api.filters import DateTimeFilter
from personalization.models import Interaction, User


class InteractionFilter(django_filters.FilterSet):
    type = django_filters.MultipleChoiceFilter(choices=Interaction.Type.choices)
    service = django_filters.CharFilter()
    theme = django_filters.CharFilter()
    since = DateTimeFilter(field_name="occurred_at", lookup_expr="gte")
    until = DateTimeFilter(field_name="occurred_at", lookup_expr="lt")

    class Meta:
        model = Interaction
        fields = ["type", "service", "theme", "since", "until"]


class UserFilter(django_filters.FilterSet):
    external_id = django_filters.CharFilter()
    email = django_filters.CharFilter(lookup_expr="iexact")

    class Meta:
        model = User
        fields = ["external_id", "email"]
