from django.apps import AppConfig


class RecommendationsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "recommendations"

    def ready(self) -> None:
        from django.db.models import Q

        from personalization.registry import (
            register_profile_summary,
            register_user_data,
            register_user_merge,
        )
        from personalization.seeding import register_seed_step
        from recommendations import seeding
        from recommendations.models import (
            LearningPath,
            LearningPathItem,
            LearningPathStage,
            Recommendation,
        )
        from recommendations.selectors import recommendation_summary

        register_user_data(Recommendation)
        register_user_data(LearningPath)
        register_user_data(LearningPathStage, owner_field="path__user")
        register_user_data(LearningPathItem, owner_field="stage__path__user")
        # A merged learner's pending recommendation of an item, or active path to a goal,
        # the survivor also has stays behind; the rest move (stages and items with their path).
        register_user_merge(Recommendation, keys=("item",), condition=Q(status="PENDING"))
        register_user_merge(LearningPath, keys=("goal",), condition=Q(status="ACTIVE"))
        register_profile_summary("recommendations", recommendation_summary)
        register_seed_step(order=35, name="content catalog", run=seeding.seed_content_catalog)
        register_seed_step(
            order=70, name="demo recommendations", run=seeding.seed_demo_recommendations
        )
