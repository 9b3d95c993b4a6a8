"""The hourly evaluation of holdouts (DESIGN.md §3): the learner-level mean reward of the
held-out learners against everyone else in the contexts the holdout covers, since it
started."""

import datetime
import logging

import numpy as np
from django.db.models import Avg
from django.utils import timezone

from config.arrays import query_arrays
from experiments.assignment import bucket
from experiments.models import Holdout
from experiments.services.holdouts import holdout_results_set
from outcomes import analysis
from outcomes.models import Outcome
from personalization.models import User
from personalization.selectors import learners

logger = logging.getLogger(__name__)


def holdout_learner_means(holdout: Holdout) -> tuple[np.ndarray, np.ndarray]:
    """(held-out learners' mean rewards, everyone else's): one GROUP BY of the outcomes in
    the holdout's contexts since it started, learners only."""
    outcomes = Outcome.objects.filter(user__in=learners(User.objects.all()))
    if holdout.contexts:
        outcomes = outcomes.filter(context__in=holdout.contexts)
    if holdout.started_at is not None:
        outcomes = outcomes.filter(occurred_at__gte=holdout.started_at)
    columns = query_arrays(
        outcomes.values("user_id").annotate(mean_reward=Avg("reward")).order_by(),
        {"user_id": "int8", "mean_reward": "float8"},
    )
    threshold = holdout.percent / 100.0
    held = np.array(
        [bucket(holdout.salt, user_id) < threshold for user_id in columns["user_id"].tolist()],
        dtype=bool,
    )
    return columns["mean_reward"][held], columns["mean_reward"][~held]


def holdout_evaluate(*, holdout: Holdout, now: datetime.datetime | None = None) -> dict:
    now = now or timezone.now()
    held_out, others = holdout_learner_means(holdout)
    results = analysis.holdout_lift(held_out, others) | {"evaluated_at": now.isoformat()}
    holdout_results_set(holdout=holdout, results=results, evaluated_at=now)
    return results


def holdouts_evaluate_active(*, now: datetime.datetime | None = None) -> int:
    """Every active holdout; one that fails is logged and the others still run."""
    evaluated = 0
    for holdout in Holdout.objects.filter(is_active=True):
        try:
            holdout_evaluate(holdout=holdout, now=now)
            evaluated += 1
        except Exception:  # isolation (DESIGN.md §10): report and go on
            logger.exception("holdout %s not evaluated", holdout.name)
    return evaluated
