"""`effectiveness/offline/` (DESIGN.md §5.6): the SQL summary of a window's log gives the
estimates the pure estimators give on the same decisions one by one, clustered by learner;
support, the default reward and the window are honoured."""

import datetime

import numpy as np
import pytest
from django.test import override_settings
from django.utils import timezone

from experiments.models import Decision, Strategy
from outcomes import ope
from outcomes.models import Outcome
from outcomes.offline import offline_evaluation
from personalization.models import User
from tests.conftest import assert_error_shape
from tests.personalization.factories import UserFactory

URL = "/api/v1/effectiveness/offline/"
WINDOW_START = datetime.date(2026, 10, 5)
INSIDE = datetime.datetime(2026, 10, 8, 12, tzinfo=datetime.UTC)


def _log(strategies, rng, *, learners=30, per_learner=6):
    """Decisions in MISSION with propensities from ε-greedy-like draws, a fifth of them
    deterministic (propensity 1, the baseline), three in four with an outcome."""
    keys = ["conservative", "balanced", "pattern_heavy", "prediction_heavy"]
    ids = [strategies[("MISSION", key)].pk for key in keys]
    decisions, outcomes, truth = [], [], []
    users = UserFactory.create_batch(learners)
    for user in users:
        for _ in range(per_learner):
            if rng.random() < 0.2:
                action, propensity = 0, 1.0
            else:
                action = int(rng.integers(4))
                propensity = float(rng.choice([0.025, 0.05, 0.925]))
            decisions.append(
                Decision(
                    user=user,
                    context="MISSION",
                    strategy_id=ids[action],
                    source="BANDIT" if propensity < 1 else "DISABLED",
                    propensity=propensity,
                    personalization_applied=propensity < 1,
                    latency_ms=1.0,
                )
            )
    Decision.objects.bulk_create(decisions)
    Decision.objects.update(created_at=INSIDE)
    for index, decision in enumerate(Decision.objects.order_by("id")):
        has_outcome = rng.random() < 0.75
        reward = float(rng.uniform(0, 1)) if has_outcome else None
        if has_outcome:
            for copy in range(1 + index % 2):  # some decisions have two outcomes
                outcomes.append(
                    Outcome(
                        user_id=decision.user_id,
                        event_id=f"e{decision.pk}-{copy}",
                        payload_hash="x",
                        decision=decision,
                        context="MISSION",
                        strategy_id=decision.strategy_id,
                        outcome_type="MISSION_COMPLETED",
                        occurred_at=INSIDE,
                        reward=reward,
                        retention_score=reward,
                    )
                )
        truth.append(
            (decision.user_id, ids.index(decision.strategy_id), decision.propensity, reward)
        )
    Outcome.objects.bulk_create(outcomes)
    return keys, truth


def _expected(truth, strategy, default):
    rows = [
        (u, a, p, default if r is None else r)
        for u, a, p, r in truth
        if (r is not None or default is not None) and (p < 1 or a == strategy)
    ]
    users, actions, propensities, rewards = map(np.array, zip(*rows, strict=True))
    return ope.policy_value(
        actions=actions,
        propensities=propensities,
        rewards=rewards.astype(float),
        target=ope.always(strategy, len(rows), 4),
        clusters=users,
    )


@pytest.mark.parametrize("default", [0.0, 0.3, None])
def test_offline__sql_summary__equals_the_pure_estimators_decision_by_decision(
    strategy_catalog, default
):
    keys, truth = _log(strategy_catalog, np.random.default_rng(4))
    with override_settings(OPE_DEFAULT_REWARD=default):
        report = offline_evaluation(context="MISSION", window_start=WINDOW_START)
    policies = {row["policy"]: row for row in report["policies"]}
    assert report["decisions"] == sum(1 for *_, r in truth if r is not None or default is not None)
    for index, key in enumerate(keys):
        expected = _expected(truth, index, default)
        row = policies[f"always:{key}"]
        assert row["decisions_used"] == expected.ips.decisions
        for name in ("ips", "snips", "dr"):
            want = getattr(expected, name)
            assert row[name]["value"] == pytest.approx(want.value, rel=1e-9), (key, name)
            assert row[name]["standard_error"] == pytest.approx(want.standard_error, rel=1e-9)
            assert row[name]["ci_lower"] < row[name]["value"] < row[name]["ci_upper"]
        assert row["effective_sample_size"] == pytest.approx(
            expected.ips.effective_sample_size, abs=0.05
        )
    # The levels' per-learner policies explore, so no deterministic decision supports them.
    stochastic = sum(1 for _, _, p, r in truth if p < 1 and (r is not None or default is not None))
    for level in ("LOW", "MEDIUM", "HIGH"):
        assert policies[f"level:{level}"]["decisions_used"] == stochastic


def test_offline__level_policy__exploits_the_learners_best_strategy(strategy_catalog):
    """Every learner's stored figures favour `balanced` by far (50 rewards, mean 0.9 against
    0.2): the MEDIUM policy gives it 1 − ε + ε/4 = 0.925 and 0.025 to each other strategy, and
    the report equals the pure estimators with that target, decision by decision."""
    from experiments.catalog import population_invalidate
    from experiments.models import StrategyConfig

    keys, truth = _log(strategy_catalog, np.random.default_rng(9))
    configs = []
    for user_id in {u for u, *_ in truth}:
        for key in keys:
            mean = 0.9 if key == "balanced" else 0.2
            configs.append(
                StrategyConfig(
                    user_id=user_id,
                    context="MISSION",
                    strategy=strategy_catalog[("MISSION", key)],
                    times_rewarded=50,
                    total_reward=50 * mean,
                    total_reward_sq=50 * (0.01 + mean**2),
                    avg_reward=mean,
                )
            )
    StrategyConfig.objects.bulk_create(configs)
    population_invalidate()
    report = offline_evaluation(context="MISSION", window_start=WINDOW_START)
    row = {r["policy"]: r for r in report["policies"]}["level:MEDIUM"]
    assert row["kind"] == "LEVEL"
    rows = [(u, a, p, 0.0 if r is None else r) for u, a, p, r in truth if p < 1]
    users, actions, propensities, rewards = map(np.array, zip(*rows, strict=True))
    target = np.full((len(rows), 4), 0.025)
    target[:, keys.index("balanced")] = 0.925
    expected = ope.policy_value(
        actions=actions,
        propensities=propensities,
        rewards=rewards.astype(float),
        target=target,
        clusters=users,
    )
    for name in ("ips", "snips", "dr"):
        assert row[name]["value"] == pytest.approx(getattr(expected, name).value, rel=1e-9)


def test_offline__empty_window__undefined_estimates_are_null(strategy_catalog):
    report = offline_evaluation(context="SESSION", window_start=datetime.date(2025, 1, 6))
    assert report["decisions"] == 0
    assert report["logged"]["value"] is None
    for row in report["policies"]:
        assert row["ips"]["value"] is None
        assert row["reliable"] is False
        assert row["warning"]


def test_offline__decisions_outside_the_window__not_counted(strategy_catalog):
    _log(strategy_catalog, np.random.default_rng(2), learners=5)
    before = offline_evaluation(context="MISSION", window_start=WINDOW_START)["decisions"]
    Decision.objects.filter(pk__in=Decision.objects.values("pk")[:10]).update(
        created_at=INSIDE + datetime.timedelta(days=30)
    )
    after = offline_evaluation(context="MISSION", window_start=WINDOW_START)["decisions"]
    assert after == before - 10


def test_offline__default_window__the_last_complete_one(strategy_catalog):
    report = offline_evaluation(context="MISSION")
    start = datetime.date.fromisoformat(report["window_start"])
    end = datetime.date.fromisoformat(report["window_end"])
    assert (end - start).days == 14
    assert end <= timezone.now().date()
    assert (timezone.now().date() - end).days < 14


def test_offline_api__staff_report(staff_client, strategy_catalog):
    _log(strategy_catalog, np.random.default_rng(1), learners=5)
    response = staff_client.get(URL, {"context": "MISSION", "window_start": "2026-10-05"})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["window_start"] == "2026-10-05"
    assert body["window_end"] == "2026-10-19"
    assert {row["policy"] for row in body["policies"]} >= {
        "always:conservative",
        "level:LOW",
    }
    assert body["learners"] == User.objects.filter(decisions__isnull=False).distinct().count()


def test_offline_api__learner__403(user_client, strategy_catalog):
    assert_error_shape(user_client.get(URL, {"context": "MISSION"}), 403)


@pytest.mark.parametrize(
    ("query", "attr"),
    [
        ({}, "context"),
        ({"context": "X"}, "context"),
        ({"context": "MISSION", "window_start": "soon"}, "window_start"),
    ],
)
def test_offline_api__bad_query__400(staff_client, strategy_catalog, query, attr):
    assert_error_shape(staff_client.get(URL, query), 400, attr=attr)


def test_strategy_catalog_fixture_has_four_mission_strategies(strategy_catalog):
    assert Strategy.objects.filter(context="MISSION").count() == 4
