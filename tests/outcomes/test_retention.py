"""Retention of the decision log: expired decisions go in batches, only once the reward run
has counted them; outcomes keep their attribution and the reward figures, incremental and
rebuilt, stay exact."""

import datetime

import numpy as np
import pytest
from django.test import override_settings
from django.utils import timezone

from experiments.models import Decision, StrategyConfig
from experiments.services.decisions import decision_make
from outcomes.models import Outcome
from outcomes.services.ingest import outcome_record_many
from outcomes.services.retention import decisions_purge_expired
from outcomes.services.rewards import bandit_rewards_recompute
from tests.personalization.factories import UserFactory

FIGURES = ("times_selected", "times_rewarded", "total_reward", "total_reward_sq", "avg_reward")


def _figures() -> dict[int, tuple]:
    return {
        row[0]: tuple(row[1:])
        for row in StrategyConfig.objects.order_by("id").values_list("id", *FIGURES)
    }


def _history(users, rng, *, days_ago: float, per_user: int, prefix: str) -> None:
    when = timezone.now() - datetime.timedelta(days=days_ago)
    for user in users:
        for index in range(per_user):
            decision = decision_make(user=user, context="MISSION", rng=rng).decision
            Decision.objects.filter(pk=decision.pk).update(created_at=when)
            if index % 2 == 0:
                outcome_record_many(
                    user=user,
                    items=[
                        {
                            "event_id": f"{prefix}{index}",
                            "decision": decision.pk,
                            "outcome_type": "MISSION_COMPLETED",
                            "occurred_at": when,
                            "retention_score": float(rng.uniform(0.1, 0.9)),
                        }
                    ],
                )


@override_settings(DECISION_RETENTION_DAYS=30)
def test_purge__in_batches__aggregates_and_attribution_survive(strategy_catalog):
    rng = np.random.default_rng(12)
    users = UserFactory.create_batch(3)
    _history(users, rng, days_ago=40, per_user=6, prefix="old")
    _history(users, rng, days_ago=2, per_user=4, prefix="new")
    bandit_rewards_recompute()
    before = _figures()
    attributed = dict(Outcome.objects.values_list("id", "config_id"))

    result = decisions_purge_expired(batch=5)

    assert result == {"decisions": 18, "batches": 4}
    assert Decision.objects.count() == 12
    assert not Decision.objects.filter(
        created_at__lt=timezone.now() - datetime.timedelta(days=30)
    ).exists()
    assert dict(Outcome.objects.values_list("id", "config_id")) == attributed
    assert Outcome.objects.filter(decision__isnull=True).count() == 9  # the purged ones' links
    assert sum(StrategyConfig.objects.values_list("selections_purged", flat=True)) == 18
    assert bandit_rewards_recompute()["updated"] == 0  # incremental: nothing new
    assert _figures() == before
    bandit_rewards_recompute(rebuild=True)
    rebuilt = _figures()
    for pk, figures in before.items():
        assert rebuilt[pk] == pytest.approx(figures, rel=1e-9, abs=1e-12), pk


@override_settings(DECISION_RETENTION_DAYS=30)
def test_purge__keeps_decisions_the_reward_run_has_not_counted(strategy_catalog):
    rng = np.random.default_rng(13)
    users = UserFactory.create_batch(2)
    _history(users, rng, days_ago=40, per_user=2, prefix="a")
    assert decisions_purge_expired() == {"decisions": 0, "batches": 0}  # never counted
    bandit_rewards_recompute()
    _history(users, rng, days_ago=40, per_user=2, prefix="b")  # after the run
    assert decisions_purge_expired()["decisions"] == 4
    assert Decision.objects.count() == 4
    bandit_rewards_recompute()
    assert decisions_purge_expired()["decisions"] == 4
    assert sum(StrategyConfig.objects.values_list("times_selected", flat=True)) == 8
    before = _figures()
    bandit_rewards_recompute(rebuild=True)
    rebuilt = _figures()
    for pk, figures in before.items():
        assert rebuilt[pk] == pytest.approx(figures, rel=1e-9, abs=1e-12), pk


def test_purge__nothing_expired__nothing_deleted(strategy_catalog):
    rng = np.random.default_rng(14)
    _history(UserFactory.create_batch(1), rng, days_ago=1, per_user=2, prefix="c")
    bandit_rewards_recompute()
    assert decisions_purge_expired() == {"decisions": 0, "batches": 0}
    assert Decision.objects.count() == 2
