from django.apps import AppConfig


class ExperimentsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "experiments"
    verbose_name = "Strategies and experiments"

    def ready(self) -> None:
        from experiments import seeding
        from experiments.models import Assignment, Decision, StrategyConfig
        from personalization.registry import register_user_data
        from personalization.seeding import register_seed_step

        for model in (StrategyConfig, Assignment, Decision):
            register_user_data(model)
        register_seed_step(order=30, name="strategy catalog", run=seeding.seed_strategy_catalog)
        register_seed_step(order=40, name="demo experiment", run=seeding.seed_demo_experiment)
        register_seed_step(order=45, name="demo holdout", run=seeding.seed_demo_holdout)
