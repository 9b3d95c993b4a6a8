from django.apps import AppConfig


class OutcomesConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "outcomes"
    verbose_name = "Outcomes and effectiveness"

    def ready(self) -> None:
        from outcomes.models import Effectiveness, Outcome
        from personalization.registry import register_user_data

        register_user_data(Outcome)
        register_user_data(Effectiveness)
