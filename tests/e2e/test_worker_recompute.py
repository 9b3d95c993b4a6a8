"""Outcomes posted through the API, recomputed by a real Celery worker through Redis, and
checked against a computation from scratch; then the worker is SIGKILLed mid-recompute, with
the production broker settings (a visibility timeout of hours). The tasks store no result by
default; the test asks for them with ignore_result=False."""

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
from tests.e2e.conftest import unacked_of
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
    """Every GLOBAL row against scipy on the raw outcomes, the learner as the unit (each
    learner's mean reward is one value, DESIGN.md §5.2); and no window missing."""
    baselines = set(Strategy.objects.filter(is_baseline=True).values_list("id", flat=True))
    rows = list(
        Outcome.objects.values_list(
            "user_id", "context", "strategy_id", "personalization_applied", "occurred_at", "reward"
        )
    )
    personalized = defaultdict(lambda: defaultdict(list))
    baseline = defaultdict(lambda: defaultdict(list))
    for user_id, context, strategy_id, applied, occurred, reward in rows:
        window = window_index(occurred, DAYS)
        if applied and strategy_id is not None and strategy_id not in baselines:
            personalized[(context, strategy_id, window)][user_id].append(reward)
        if not applied:
            baseline[(context, window)][user_id].append(reward)
    stored = {
        (r.context, r.strategy_id, window_index(r.window_start, DAYS)): r
        for r in Effectiveness.objects.filter(scope="GLOBAL")
    }
    assert set(stored) == set(personalized)
    for key, by_learner in personalized.items():
        row = stored[key]
        base_by_learner = baseline[(key[0], key[2])]
        values = np.array([np.mean(v) for v in by_learner.values()])
        base = np.array([np.mean(v) for v in base_by_learner.values()])
        assert (row.n_personalized, row.n_baseline) == (len(values), len(base))
        assert (row.n_outcomes_personalized, row.n_outcomes_baseline) == (
            sum(map(len, by_learner.values())),
            sum(map(len, base_by_learner.values())),
        )
        assert row.window_start == window_bounds(key[2], DAYS)[0]
        if len(values) >= 2 and len(base) >= 2:
            welch = scipy_stats.ttest_ind(values, base, equal_var=False)
            assert row.difference == pytest.approx(values.mean() - base.mean(), abs=1e-9)
            assert row.ci_lower == pytest.approx(welch.confidence_interval(0.95).low, abs=1e-9)
            assert row.p_value == pytest.approx(welch.pvalue, rel=1e-6, abs=1e-12)


def _advisory_lock_held() -> bool:
    with connection.cursor() as cursor:
        # This database's only: the server is shared with other test databases.
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND database = "
            "(SELECT oid FROM pg_database WHERE datname = current_database())"
        )
        return cursor.fetchone()[0] > 0


def test_worker__recomputes_through_the_broker_and_survives_sigkill(worker_factory):
    load_catalog()
    _post_outcomes(seed=1)
    worker = worker_factory().start()

    result = recompute_bandit_rewards.apply_async(queue=worker.queue, ignore_result=False)
    assert result.get(timeout=120)["updated"] > 0
    _assert_bandit_statistics_exact()
    windows = compute_effectiveness_windows.apply_async(
        queue=worker.queue, ignore_result=False
    ).get(timeout=120)
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
        kwargs={"windows": every_window}, queue=worker.queue, ignore_result=False
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
    # The lock goes with the session, once PostgreSQL has read the end of the dead socket.
    deadline = time.monotonic() + 10
    while _advisory_lock_held():
        assert time.monotonic() < deadline, "the killed worker's lock outlived it"
        time.sleep(0.05)

    # A new worker receives the unacknowledged task again (acks_late), within a minute of its
    # start because the killed worker's liveness record expires, and finishes it once.
    restarted = time.monotonic()
    worker_factory().start()
    assert pending.get(timeout=60 - (time.monotonic() - restarted))["global"] > 0
    print(f"recompute completed {time.monotonic() - restarted:.1f} s after the restart")
    _assert_global_effectiveness_exact()
    recompute_bandit_rewards.apply_async(queue=worker.queue, ignore_result=False).get(timeout=120)
    _assert_bandit_statistics_exact()
    log = worker.log_path.read_text()
    assert log.count(f"compute_effectiveness_windows[{pending.id}] received") == 2
    assert log.count(f"compute_effectiveness_windows[{pending.id}] succeeded") == 1
    assert unacked_of(worker.queue) == []
