"""Decide calls racing the recomputations that rewrite StrategyConfig rows (STYLE.md rule 5):
every writer locks a learner's configs in id order, so none deadlocks (PostgreSQL only)."""

import datetime
import threading
from collections.abc import Callable

import numpy as np
import pytest
from django.db import connection, transaction
from django.db.models import Count, Sum
from django.utils import timezone

from experiments.models import Decision, StrategyConfig
from experiments.services.decisions import decision_make
from outcomes.models import Effectiveness, Outcome
from outcomes.services.effectiveness import effectiveness_windows_compute
from outcomes.services.ingest import outcome_record_many
from outcomes.services.rewards import bandit_rewards_recompute
from outcomes.windows import window_bounds, window_index
from tests.personalization.factories import UserFactory

TRIALS = 30
LEARNERS = 24
DAYS = 14
WINDOW = window_index(timezone.now(), DAYS) - 1  # the last complete window
PERSONALIZED = ["pattern_heavy", "prediction_heavy", "balanced"]


def _skip_unless_postgresql() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("row locks and deadlocks are exercised on PostgreSQL")


def _learners(count: int = LEARNERS) -> list:
    users = UserFactory.create_batch(count)
    for user in users:
        decision_make(user=user, context="MISSION", rng=np.random.default_rng(user.pk))
    return users


def _reverse_physical_order(users: list) -> None:
    """Rewrite the configs one by one, each learner's highest id first, so that a scan meets a
    learner's last config long before its first one: the order a busy table drifts into, in
    which a bulk UPDATE that locks in scan order crosses the decide call's id order."""
    rank: dict[int, int] = {}
    ordered = []
    for pk, user_id in (
        StrategyConfig.objects.filter(user__in=users).order_by("-id").values_list("id", "user_id")
    ):
        rank[user_id] = rank.get(user_id, -1) + 1
        ordered.append((rank[user_id], user_id, pk))
    ids = [pk for _, _, pk in sorted(ordered)]
    with transaction.atomic(), connection.cursor() as cursor:
        for pk in ids:
            cursor.execute(
                "UPDATE experiments_strategyconfig SET updated_at = updated_at WHERE id = %s",
                [pk],
            )


def _race(
    users: list, prepare: Callable[[], None], recompute: Callable[[], object]
) -> tuple[dict[int, list[BaseException]], int]:
    """TRIALS pairs of threads started by one barrier: one recompute against decide calls for
    the learners in random order until the recompute ends. Before each trial no config is
    active, so each learner's first decision switches one on (config_activate). Returns the
    exceptions either thread raised by trial, and how many decisions were made."""
    failures: dict[int, list[BaseException]] = {}
    decided: list[int] = []
    rng = np.random.default_rng(7)
    for trial in range(TRIALS):
        StrategyConfig.objects.filter(user__in=users).update(is_active=False)
        prepare()
        _reverse_physical_order(users)
        order = [users[i] for i in rng.permutation(len(users))]
        barrier, done = threading.Barrier(2), threading.Event()

        def decide(order=order, barrier=barrier, done=done, trial=trial) -> None:
            try:
                barrier.wait(timeout=10)
                for user in order:
                    if done.is_set():
                        break
                    decision_make(
                        user=user, context="MISSION", rng=np.random.default_rng(trial + user.pk)
                    )
                    decided.append(user.pk)
            except BaseException as exc:  # reported by the test
                failures.setdefault(trial, []).append(exc)
            finally:
                connection.close()

        def rewrite(barrier=barrier, done=done, trial=trial) -> None:
            try:
                barrier.wait(timeout=10)
                recompute()
            except BaseException as exc:  # reported by the test
                failures.setdefault(trial, []).append(exc)
            finally:
                done.set()
                connection.close()

        threads = [threading.Thread(target=decide), threading.Thread(target=rewrite)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    return failures, len(decided)


def _assert_no_failures(failures: dict[int, list[BaseException]], decided: int) -> None:
    first = next(iter(failures.values()), [])
    assert not failures, f"{len(failures)} of {TRIALS} trials failed, e.g. {first[:1]}"
    assert decided >= TRIALS, f"only {decided} decisions raced the recomputations"


@pytest.fixture
def slow_recompute_writes(transactional_db):
    """Each config row a recomputation rewrites (its bandit statistics or its effectiveness
    score change) waits a millisecond once locked: the UPDATEs last a few milliseconds at the
    end of a run, and this lets the decide calls meet them mid-statement in most trials."""
    _skip_unless_postgresql()
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION attune_test_slow_write() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN PERFORM pg_sleep(0.001); RETURN NEW; END $$"
        )
        cursor.execute(
            "CREATE TRIGGER attune_test_slow_write BEFORE UPDATE ON experiments_strategyconfig "
            "FOR EACH ROW WHEN (OLD.times_selected <> NEW.times_selected "
            "OR (NEW.effectiveness_score IS NOT NULL "
            "AND OLD.effectiveness_score IS DISTINCT FROM NEW.effectiveness_score)) "
            "EXECUTE FUNCTION attune_test_slow_write()"
        )
    yield
    with connection.cursor() as cursor:
        cursor.execute("DROP TRIGGER attune_test_slow_write ON experiments_strategyconfig")
        cursor.execute("DROP FUNCTION attune_test_slow_write()")


def _one_decision_per_config(users: list) -> None:
    """So that the recompute rewrites every config of the learners."""
    Decision.objects.bulk_create(
        Decision(
            user_id=c.user_id,
            context=c.context,
            strategy_id=c.strategy_id,
            config=c,
            source=Decision.Source.BANDIT,
            propensity=1.0,
            personalization_applied=False,
            latency_ms=0.0,
        )
        for c in StrategyConfig.objects.filter(user__in=users)
    )


@pytest.mark.django_db(transaction=True)
def test_decide__concurrent_rewards_recompute__no_deadlock_and_exact_statistics(
    strategy_catalog, slow_recompute_writes
):
    """30 trials: recompute_bandit_rewards rewriting the 96 configs of 24 learners against
    decide calls that switch those learners' active configs."""
    _skip_unless_postgresql()
    users = _learners()
    failures, decided = _race(
        users, lambda: _one_decision_per_config(users), bandit_rewards_recompute
    )
    _assert_no_failures(failures, decided)

    bandit_rewards_recompute()
    chosen = dict(
        Decision.objects.filter(config__isnull=False)
        .values("config")
        .annotate(n=Count("id"))
        .values_list("config", "n")
    )
    rewarded = {
        row["config"]: (row["n"], row["total"])
        for row in Outcome.objects.filter(config__isnull=False)
        .values("config")
        .annotate(n=Count("id"), total=Sum("reward"))
    }
    for config in StrategyConfig.objects.filter(user__in=users):
        n, total = rewarded.get(config.pk, (0, 0.0))
        assert config.times_selected == chosen.get(config.pk, 0), config.pk
        assert config.times_rewarded == n, config.pk
        assert config.total_reward == pytest.approx(total), config.pk
    for user in users:
        assert StrategyConfig.objects.filter(user=user, is_active=True).count() <= 1


def _outcomes_of_every_strategy(users: list) -> None:
    """Two personalized outcomes of each non-baseline strategy and two baseline ones per
    learner in WINDOW: every personalized config gets a USER row with a finite composite."""
    start, _ = window_bounds(WINDOW, DAYS)
    rng = np.random.default_rng(11)
    for user in users:
        items = [
            {
                "event_id": f"{strategy or 'baseline'}-{i}",
                "context": "MISSION",
                "personalization_applied": strategy is not None,
                "outcome_type": "MISSION_COMPLETED",
                "occurred_at": start + datetime.timedelta(hours=1 + i),
                "retention_score": float(rng.uniform(0.2, 0.9)),
                **({"strategy": strategy} if strategy else {}),
            }
            for strategy in [*PERSONALIZED, None]
            for i in range(2)
        ]
        outcome_record_many(user=user, items=items)


@pytest.mark.django_db(transaction=True)
def test_decide__concurrent_config_scores_refresh__no_deadlock_and_scores_written(
    strategy_catalog, slow_recompute_writes
):
    """30 trials: the effectiveness run's config score refresh rewriting the 72 personalized
    configs of 24 learners against decide calls that switch those learners' active configs."""
    _skip_unless_postgresql()
    users = _learners()
    _outcomes_of_every_strategy(users)
    configs = StrategyConfig.objects.filter(user__in=users, strategy__is_baseline=False)

    def forget_scores() -> None:  # so that the refresh rewrites every personalized config
        configs.update(effectiveness_score=None, confidence_score=0.7)

    failures, decided = _race(
        users, forget_scores, lambda: effectiveness_windows_compute(windows={WINDOW})
    )
    _assert_no_failures(failures, decided)

    composite = dict(
        Effectiveness.objects.filter(scope=Effectiveness.Scope.USER).values_list(
            "config_id", "composite_score"
        )
    )
    assert len(composite) == LEARNERS * len(PERSONALIZED)
    for config in configs:
        assert config.effectiveness_score == pytest.approx(composite[config.pk]), config.pk
    for user in users:
        assert StrategyConfig.objects.filter(user=user, is_active=True).count() <= 1
