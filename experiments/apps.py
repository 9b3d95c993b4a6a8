from django.apps import AppConfig


class ExperimentsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "experiments"
    verbose_name = "Strategies and experiments"

    def ready(self) -> None:
        from experiments import seeding
        from experiments.merge import decisions_and_configs_merge
        from experiments.models import Assignment, Decision, Rollout, StrategyConfig
        from personalization.registry import (
            register_erasure_listener,
            register_user_data,
            register_user_merge,
        )
        from personalization.seeding import register_seed_step

        for model in (StrategyConfig, Assignment, Decision):
            register_user_data(model)
        register_user_data(Rollout, owner_field="created_by")  # staff who shipped it
        register_user_merge(Rollout, stays=True)  # learners ship nothing
        register_erasure_listener(_user_erased)
        register_user_merge(Decision, merge=decisions_and_configs_merge, order=20)
        register_user_merge(Assignment, keys=("experiment",), order=30)
        register_seed_step(order=30, name="strategy catalog", run=seeding.seed_strategy_catalog)
        register_seed_step(order=40, name="demo experiment", run=seeding.seed_demo_experiment)
        register_seed_step(order=45, name="demo holdout", run=seeding.seed_demo_holdout)
        register_seed_step(order=47, name="demo platform", run=seeding.seed_demo_platform)
        # Last: the deliveries of every event the steps before emitted.
        register_seed_step(
            order=90, name="demo webhook deliveries", run=seeding.seed_demo_webhook_deliveries
        )


def _user_erased(user_id: int) -> None:
    from experiments.services.webhooks import user_erased_event_emit

    user_erased_event_emit(user_id=user_id)
