"""Outcomes posted through the API, recomputed by a real Celery worker through Redis, and
checked against a computation from scratch; then the worker is SIGKILLed mid-recompute."""

import datetime
import time
from collections import defaultdict

import numpy as np
import pytest
from django.db import connection
from django.utils import timezone
from scipy import stats as scipy_stats

from experiments.models import Decision, Strategy, StrategyConfig
from experiments.services.decisions import decision_make
from outcomes.models import Effectiveness, Outcome
from outcomes.tasks import compute_effectiveness_windows, recompute_bandit_rewards
from outcomes.windows import window_bounds, window_index
from tests.conftest import token_client
from tests.experiments.factories import load_catalog
from tests.personalization.factories import ServiceAccountFactory, UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
DAYS = 14


def _post_outcomes(seed: int, users: int = 24, per_user: int = 30) -> None:
    """Decisions for each user, then their outcomes through the API, with true effects:
    personalized strategies add 0.1 to the retention score."""
    rng = np.random.default_rng(seed)
    client = token_client(ServiceAccountFactory())
    now = timezone.now()
    for user in UserFactory.create_batch(users):
        items = []
        for index in range(per_user):
            decision = decision_make(user=user, context="MISSION", rng=rng).decision
            lift = 0.1 if decision.personalization_applied else 0.0
            occurred = now - datetime.timedelta(days=float(rng.uniform(0, 40)))
            items.append(
                {
                    "event_id": f"{seed}-{user.pk}-{index}",
                    "decision": decision.pk,
                    "outcome_type": "MISSION_COMPLETED",
                    "occurred_at": occurred.isoformat(),
                    "retention_score": float(np.clip(rng.normal(0.5 + lift, 0.15), 0, 1)),
                    "completion_rate": float(rng.uniform(0.3, 1.0)),
                }
            )
        response = client.post(
            "/api/v1/outcomes/", items, format="json", HTTP_X_ON_BEHALF_OF=f"id:{user.pk}"
        )
        assert response.status_code == 201, response.content
        assert response.json()["created"] == per_user


def _assert_bandit_statistics_exact() -> None:
    decisions = defaultdict(int)
    for config_id in Decision.objects.exclude(config=None).values_list("config_id", flat=True):
        decisions[config_id] += 1
    rewards = defaultdict(list)
    for config_id, reward in Outcome.objects.exclude(config=None).values_list(
        "config_id", "reward"
    ):
        rewards[config_id].append(reward)
    for config in StrategyConfig.objects.all():
        assert config.times_selected == decisions[config.pk]
        assert config.times_rewarded == len(rewards[config.pk])
        assert config.total_reward == pytest.approx(sum(rewards[config.pk]), abs=1e-9)
        expected_mean = np.mean(rewards[config.pk]) if rewards[config.pk] else 0.0
        assert config.avg_reward == pytest.approx(expected_mean, abs=1e-12)


def _assert_global_effectiveness_exact() -> None:
    """Every GLOBAL row against scipy on the raw outcomes; and no window missing."""
    baselines = set(Strategy.objects.filter(is_baseline=True).values_list("id", flat=True))
    rows = list(
        Outcome.objects.values_list(
            "context", "strategy_id", "personalization_applied", "occurred_at", "reward"
        )
    )
    personalized = defaultdict(list)
    baseline = defaultdict(list)
    for context, strategy_id, applied, occurred, reward in rows:
        window = window_index(occurred, DAYS)
        if applied and strategy_id is not None and strategy_id not in baselines:
            personalized[(context, strategy_id, window)].append(reward)
        if not applied:
            baseline[(context, window)].append(reward)
    stored = {
        (r.context, r.strategy_id, window_index(r.window_start, DAYS)): r
        for r in Effectiveness.objects.filter(scope="GLOBAL")
    }
    assert set(stored) == set(personalized)
    for key, values in personalized.items():
        row = stored[key]
        base = baseline[(key[0], key[2])]
        assert (row.n_personalized, row.n_baseline) == (len(values), len(base))
        assert row.window_start == window_bounds(key[2], DAYS)[0]
        if len(values) >= 2 and len(base) >= 2:
            welch = scipy_stats.ttest_ind(values, base, equal_var=False)
            assert row.difference == pytest.approx(np.mean(values) - np.mean(base), abs=1e-9)
            assert row.ci_lower == pytest.approx(welch.confidence_interval(0.95).low, abs=1e-9)
            pearson = scipy_stats.pearsonr(
                np.r_[np.ones(len(values)), np.zeros(len(base))], np.r_[values, base]
            )
            assert row.p_value == pytest.approx(pearson.pvalue, rel=1e-6, abs=1e-12)


def _advisory_lock_held() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted")
        return cursor.fetchone()[0] > 0


def test_worker__recomputes_through_the_broker_and_survives_sigkill(worker_factory):
    load_catalog()
    _post_outcomes(seed=1)
    worker = worker_factory().start()

    result = recompute_bandit_rewards.apply_async(queue=worker.queue)
    assert result.get(timeout=120)["updated"] > 0
    _assert_bandit_statistics_exact()
    windows = compute_effectiveness_windows.apply_async(queue=worker.queue).get(timeout=120)
    assert windows["global"] > 0
    _assert_global_effectiveness_exact()
    before = sorted(
        Effectiveness.objects.values_list(
            "scope", "strategy_id", "user_id", "window_start", "n_personalized", "n_baseline"
        )
    )

    # More outcomes, then a full recompute that is killed while it holds its lock.
    _post_outcomes(seed=2, users=40, per_user=40)
    every_window = sorted(
        {window_index(t, DAYS) for t in Outcome.objects.values_list("occurred_at", flat=True)}
    )
    pending = compute_effectiveness_windows.apply_async(
        kwargs={"windows": every_window}, queue=worker.queue
    )
    deadline = time.monotonic() + 60
    while not _advisory_lock_held():
        assert time.monotonic() < deadline, "the recomputation never started"
        time.sleep(0.01)
    worker.kill()
    after_kill = sorted(
        Effectiveness.objects.values_list(
            "scope", "strategy_id", "user_id", "window_start", "n_personalized", "n_baseline"
        )
    )
    assert after_kill == before  # nothing half-written: the transaction died with the worker
    assert not _advisory_lock_held()

    # A new worker receives the unacknowledged task again (acks_late) and finishes it.
    worker_factory().start()
    assert pending.get(timeout=180)["global"] > 0
    _assert_global_effectiveness_exact()
    recompute_bandit_rewards.apply_async(queue=worker.queue).get(timeout=120)
    _assert_bandit_statistics_exact()
