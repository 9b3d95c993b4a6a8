from django.apps import AppConfig


class OutcomesConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "outcomes"
    verbose_name = "Outcomes and effectiveness"

    def ready(self) -> None:
        from experiments.models import StrategyConfig
        from outcomes import admin as _admin  # noqa: F401 - adds "Evaluate now" to experiments
        from outcomes import seeding
        from outcomes.merge import outcomes_merge, reward_figures_rebuild
        from outcomes.models import Effectiveness, Outcome
        from outcomes.services.effectiveness import effectiveness_erasure_mark
        from personalization.registry import (
            register_erasure_preparer,
            register_user_data,
            register_user_merge,
        )
        from personalization.seeding import register_seed_step

        register_user_data(Outcome)
        register_user_data(Effectiveness)
        # Outcomes first, while the merged learner's configs still say which strategy each
        # outcome was for; the figures last, once every row has moved.
        register_user_merge(Outcome, merge=outcomes_merge, order=10)
        register_user_merge(StrategyConfig, merge=reward_figures_rebuild, order=90)
        # USER effectiveness rows are computed; the survivor's are recomputed hourly (the
        # merge marks the moved outcomes' windows), and so are the GLOBAL rows that counted
        # an erased learner.
        register_user_merge(Effectiveness, stays=True)
        register_erasure_preparer(effectiveness_erasure_mark)
        register_seed_step(order=50, name="demo bandit", run=seeding.seed_demo_bandit)
        register_seed_step(order=60, name="outcome history", run=seeding.seed_outcome_history)
