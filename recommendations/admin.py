from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from logs.admin import AuditedModelAdmin, ReadOnlyModelAdmin
from recommendations.models import (
    ContentItem,
    LearningPath,
    LearningPathItem,
    LearningPathStage,
    Recommendation,
)


@admin.register(ContentItem)
class ContentItemAdmin(AuditedModelAdmin):
    list_display = ["title", "skill", "content_type", "difficulty", "duration_minutes", "is_active"]
    list_filter = ["content_type", "difficulty", "skill", "is_active"]
    search_fields = ["title", "key", "skill"]
    prepopulated_fields = {"key": ["title"]}


@admin.register(Recommendation)
class RecommendationAdmin(ReadOnlyModelAdmin):
    list_display = [
        "created_at",
        "user",
        "item",
        "context",
        "status",
        "priority_score",
        "strategy_variant",
    ]
    list_filter = ["status", "context", "strategy_variant"]
    search_fields = ["user__username", "user__email", "user__external_id", "item__title", "reason"]
    list_select_related = ["user", "item"]
    date_hierarchy = "created_at"


class StageInline(admin.TabularInline):
    model = LearningPathStage
    extra = 0
    fields = ("order", "title", "status")
    readonly_fields = ("order", "title", "status")
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(LearningPath)
class LearningPathAdmin(ReadOnlyModelAdmin):
    list_display = ["title", "user", "goal", "status", "progress", "created_at"]
    list_filter = ["status"]
    search_fields = ["title", "goal", "user__username", "user__email", "user__external_id"]
    list_select_related = ["user"]
    inlines = [StageInline]


@admin.register(LearningPathItem)
class LearningPathItemAdmin(ReadOnlyModelAdmin):
    list_display = ["stage", "order", "item", "done", "done_at"]
    list_filter = ["done"]
    list_select_related = ["stage", "item"]
