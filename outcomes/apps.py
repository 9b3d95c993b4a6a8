from django.apps import AppConfig


class OutcomesConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "outcomes"
    verbose_name = "Outcomes and effectiveness"

    def ready(self) -> None:
        from outcomes import admin as _admin  # noqa: F401 - adds "Evaluate now" to experiments
        from outcomes import seeding
        from outcomes.models import Effectiveness, Outcome
        from personalization.registry import register_user_data
        from personalization.seeding import register_seed_step

        register_user_data(Outcome)
        register_user_data(Effectiveness)
        register_seed_step(order=50, name="demo bandit", run=seeding.seed_demo_bandit)
        register_seed_step(order=60, name="outcome history", run=seeding.seed_outcome_history)
