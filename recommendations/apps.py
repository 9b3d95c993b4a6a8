from django.apps import AppConfig


class RecommendationsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "recommendations"

    def ready(self) -> None:
        from personalization.registry import register_profile_summary, register_user_data
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
        register_profile_summary("recommendations", recommendation_summary)
        register_seed_step(order=35, name="content catalog", run=seeding.seed_content_catalog)
        register_seed_step(
            order=70, name="demo recommendations", run=seeding.seed_demo_recommendations
        )
