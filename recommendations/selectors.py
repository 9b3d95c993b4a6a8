from typing import Any

from django.db.models import Avg, Count, Prefetch, Q, QuerySet

from config.db import apply_filters
from recommendations.filters import ContentItemFilter, LearningPathFilter, RecommendationFilter
from recommendations.models import (
    ContentItem,
    LearningPath,
    LearningPathItem,
    LearningPathStage,
    Recommendation,
)


def content_item_list(*, filters: dict[str, Any] | None = None) -> QuerySet[ContentItem]:
    return apply_filters(
        ContentItemFilter, filters, ContentItem.objects.order_by("skill", "difficulty", "key")
    )


def recommendation_list(
    *, owner: Any = None, filters: dict[str, Any] | None = None
) -> QuerySet[Recommendation]:
    queryset = Recommendation.objects.select_related("item").order_by("-created_at", "-id")
    if owner is not None:
        queryset = queryset.filter(user=owner)
    return apply_filters(RecommendationFilter, filters, queryset)


def learning_path_list(
    *, owner: Any = None, filters: dict[str, Any] | None = None
) -> QuerySet[LearningPath]:
    queryset = LearningPath.objects.prefetch_related(
        Prefetch(
            "stages",
            queryset=LearningPathStage.objects.order_by("order").prefetch_related(
                Prefetch(
                    "items",
                    queryset=LearningPathItem.objects.select_related("item").order_by("order"),
                )
            ),
        )
    ).order_by("-created_at", "-id")
    if owner is not None:
        queryset = queryset.filter(user=owner)
    return apply_filters(LearningPathFilter, filters, queryset)


def recommendation_summary(user: Any) -> dict[str, Any]:
    """The `me/` summary section: counts by status, acceptance rate (accepted or completed
    among those answered) and the mean effectiveness of completed ones. One query."""
    Status = Recommendation.Status
    figures = Recommendation.objects.filter(user=user).aggregate(
        total=Count("id"),
        **{status.lower(): Count("id", filter=Q(status=status)) for status in Status.values},
        mean_effectiveness=Avg("effectiveness", filter=Q(status=Status.COMPLETED)),
    )
    taken = figures["accepted"] + figures["completed"]
    answered = taken + figures["declined"]
    return {
        "by_status": {status: figures[status.lower()] for status in Status.values},
        "total": figures["total"],
        "acceptance_rate": taken / answered if answered else None,
        "mean_effectiveness": figures["mean_effectiveness"],
    }
