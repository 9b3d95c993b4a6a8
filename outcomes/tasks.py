"""Periodic recomputation (DESIGN.md §6). Thin: each task calls its service, which an
operator can also run through the manage.py twin. `experiments.update_bandit_weights` lives
here because it reads outcomes; it calls the experiments app's pure §5.4 functions."""

from typing import Any

from celery import shared_task

from config.tasks import TASK_OPTIONS


@shared_task(
    name="outcomes.recompute_bandit_rewards", time_limit=600, soft_time_limit=540, **TASK_OPTIONS
)
def recompute_bandit_rewards(self: Any) -> dict[str, int]:
    from outcomes.services.rewards import bandit_rewards_recompute

    return bandit_rewards_recompute()


@shared_task(
    name="experiments.update_bandit_weights", time_limit=600, soft_time_limit=540, **TASK_OPTIONS
)
def update_bandit_weights(self: Any) -> dict[str, int]:
    from outcomes.services.evaluation import bandit_weights_update

    return bandit_weights_update()


@shared_task(
    name="outcomes.compute_effectiveness_windows",
    time_limit=1800,
    soft_time_limit=1700,
    **TASK_OPTIONS,
)
def compute_effectiveness_windows(self: Any, windows: list[int] | None = None) -> dict[str, int]:
    from outcomes.services.effectiveness import effectiveness_windows_compute

    return effectiveness_windows_compute(windows=set(windows) if windows is not None else None)


@shared_task(
    name="outcomes.evaluate_experiments", time_limit=1800, soft_time_limit=1700, **TASK_OPTIONS
)
def evaluate_experiments(self: Any) -> dict[str, int]:
    from outcomes.services.evaluation import experiments_evaluate_due

    return experiments_evaluate_due()
