import django_filters

from experiments.models import Context
from recommendations.models import ContentItem, LearningPath, Recommendation


class ContentItemFilter(django_filters.FilterSet):
    skill = django_filters.CharFilter()
    content_type = django_filters.ChoiceFilter(choices=ContentItem.Type.choices)
    difficulty = django_filters.NumberFilter(min_value=1, max_value=5)
    is_active = django_filters.BooleanFilter()

    class Meta:
        model = ContentItem
        fields = ["skill", "content_type", "difficulty", "is_active"]


class RecommendationFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=Recommendation.Status.choices)
    context = django_filters.ChoiceFilter(choices=Context.choices)

    class Meta:
        model = Recommendation
        fields = ["status", "context"]


class LearningPathFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=LearningPath.Status.choices)

    class Meta:
        model = LearningPath
        fields = ["status"]
