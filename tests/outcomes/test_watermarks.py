"""Incremental recomputation (DESIGN.md §6): the reward run reads only the rows committed
since its last run, never skips one committed late or concurrently, never reads one twice, and
its figures equal a whole rebuild."""

import threading

import numpy as np
import pytest
from django.db import connection, transaction

from experiments.models import StrategyConfig
from experiments.services.decisions import decision_make
from outcomes.models import Watermark
from outcomes.services.ingest import outcome_record_many
from outcomes.services.rewards import LOCK, bandit_rewards_recompute
from tests.personalization.factories import UserFactory

FIGURES = ("times_selected", "times_rewarded", "total_reward", "total_reward_sq", "avg_reward")


def _figures() -> dict[int, tuple[float, ...]]:
    return {
        row[0]: tuple(row[1:])
        for row in StrategyConfig.objects.order_by("id").values_list("id", *FIGURES)
    }


def _assert_equals_rebuild() -> None:
    incremental = _figures()
    bandit_rewards_recompute(rebuild=True)
    rebuilt = _figures()
    assert incremental.keys() == rebuilt.keys()
    for pk, figures in incremental.items():
        assert figures == pytest.approx(rebuilt[pk], rel=1e-9, abs=1e-12), pk


def _report(user, event_id: str, rng: np.random.Generator, context: str = "MISSION") -> None:
    decision = decision_make(user=user, context=context, rng=rng).decision
    outcome_record_many(
        user=user,
        items=[
            {
                "event_id": event_id,
                "decision": decision.pk,
                "outcome_type": "MISSION_COMPLETED",
                "retention_score": float(rng.uniform(0.1, 0.9)),
            }
        ],
    )


def test_rewards__interleaved_runs_equal_a_rebuild(strategy_catalog):
    """Batches of decisions and outcomes with a run after each: every row is counted once,
    including rows this transaction wrote before and after a run of its own."""
    rng = np.random.default_rng(3)
    users = UserFactory.create_batch(6)
    for batch in range(5):
        for index in range(int(rng.integers(1, 8))):
            _report(users[int(rng.integers(len(users)))], f"b{batch}-{index}", rng)
        if batch % 2:
            decision_make(user=users[batch], context="MISSION", rng=rng)  # chosen, no outcome
        bandit_rewards_recompute()
    assert bandit_rewards_recompute()["updated"] == 0
    _assert_equals_rebuild()
    assert Watermark.objects.filter(task=LOCK).exists()


def test_rewards__first_run_and_rebuild_count_purged_decisions(strategy_catalog):
    user = UserFactory()
    rng = np.random.default_rng(4)
    _report(user, "a", rng)
    config = StrategyConfig.objects.filter(user=user).order_by("id").first()
    StrategyConfig.objects.filter(pk=config.pk).update(selections_purged=2)
    bandit_rewards_recompute()  # the first run is a rebuild
    selected = dict(StrategyConfig.objects.filter(user=user).values_list("id", "times_selected"))
    assert sum(selected.values()) == 3
    assert selected[config.pk] >= 2


@pytest.mark.django_db(transaction=True)
def test_rewards__late_committing_transaction_is_not_skipped(strategy_catalog):
    """A transaction that inserted its outcome (and took its id) before another, and commits
    after a run that saw the other, is counted by the next run: a timestamp or id watermark
    would skip it for good."""
    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers are exercised on PostgreSQL (SQLite has one)")
    rng = np.random.default_rng(5)
    early, prompt = UserFactory(), UserFactory()
    for user in (early, prompt):
        decision_make(user=user, context="MISSION", rng=rng)
    bandit_rewards_recompute()
    inserted, release, failures = threading.Event(), threading.Event(), []

    def late() -> None:
        try:
            with transaction.atomic():
                _report(early, "late", np.random.default_rng(6))
                inserted.set()
                release.wait(timeout=30)
        except Exception as exc:  # reported below, in the test's thread
            failures.append(exc)
            inserted.set()
        finally:
            connection.close()

    writer = threading.Thread(target=late)
    writer.start()
    assert inserted.wait(timeout=30)
    _report(prompt, "prompt", rng)  # commits now, with a higher id than the open one
    first = bandit_rewards_recompute()
    release.set()
    writer.join(timeout=30)
    assert not failures, failures
    second = bandit_rewards_recompute()
    rewarded = dict(
        StrategyConfig.objects.filter(times_rewarded__gt=0).values_list("user_id", "times_rewarded")
    )
    assert rewarded == {early.pk: 1, prompt.pk: 1}
    assert first["updated"] >= 1
    assert second["updated"] >= 1
    assert bandit_rewards_recompute()["updated"] == 0
    _assert_equals_rebuild()


@pytest.mark.django_db(transaction=True)
def test_rewards__concurrent_writers_during_runs_equal_a_rebuild(strategy_catalog):
    """Writers commit decisions and outcomes in threads while runs go on: afterwards every row
    was counted exactly once."""
    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers are exercised on PostgreSQL (SQLite has one)")
    users = UserFactory.create_batch(4)
    for user in users:
        decision_make(user=user, context="MISSION", rng=np.random.default_rng(user.pk))
    stop, failures = threading.Event(), []

    def writer(user, seed: int) -> None:
        rng = np.random.default_rng(seed)
        try:
            for index in range(25):
                with transaction.atomic():
                    _report(user, f"w{index}", rng)
        except Exception as exc:  # reported below
            failures.append(exc)
        finally:
            connection.close()

    def runner() -> None:
        try:
            while not stop.is_set():
                bandit_rewards_recompute()
        except Exception as exc:  # reported below
            failures.append(exc)
        finally:
            connection.close()

    writers = [threading.Thread(target=writer, args=(u, i)) for i, u in enumerate(users)]
    runs = threading.Thread(target=runner)
    runs.start()
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join(timeout=120)
    stop.set()
    runs.join(timeout=60)
    assert not failures, failures
    bandit_rewards_recompute()
    assert sum(StrategyConfig.objects.values_list("times_rewarded", flat=True)) == 100
    _assert_equals_rebuild()


@pytest.mark.django_db(transaction=True)
def test_effectiveness__late_committing_transaction_is_not_skipped(strategy_catalog):
    """The hourly effectiveness run has its own watermark: an outcome committed after a run
    that began while it was open is in the next run's windows."""
    from outcomes.services.effectiveness import effectiveness_windows_compute

    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers are exercised on PostgreSQL (SQLite has one)")
    early, prompt = UserFactory(), UserFactory()
    rng = np.random.default_rng(8)
    _report(prompt, "first", rng)
    effectiveness_windows_compute()
    inserted, release, failures = threading.Event(), threading.Event(), []

    def late() -> None:
        try:
            with transaction.atomic():
                _report(early, "late", np.random.default_rng(9))
                inserted.set()
                release.wait(timeout=30)
        except Exception as exc:  # reported below, in the test's thread
            failures.append(exc)
            inserted.set()
        finally:
            connection.close()

    writer = threading.Thread(target=late)
    writer.start()
    assert inserted.wait(timeout=30)
    _report(prompt, "prompt", rng)
    effectiveness_windows_compute()
    release.set()
    writer.join(timeout=30)
    assert not failures, failures
    assert effectiveness_windows_compute()["windows"] == 1  # the late outcome's, alone
    assert effectiveness_windows_compute()["windows"] == 0
