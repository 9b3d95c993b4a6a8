"""The experiment planner (DESIGN.md §5.3): the formula pinned by hand, its power checked by
simulation, and `experiments/plan/` with its 400s."""

import datetime

import numpy as np
import pytest
from django.utils import timezone
from scipy import stats as scipy_stats

from experiments.services.decisions import decision_make
from outcomes import stats
from outcomes.planning import fixed_horizon_per_variant, plan
from outcomes.services.ingest import outcome_record_many
from tests.conftest import assert_error_shape
from tests.personalization.factories import UserFactory

PLAN = "/api/v1/experiments/plan/"


def test_fixed_horizon__hand_computed_two_sample_power():
    """sd 0.2, baseline 0.5, relative MDE 5 % (δ = 0.025), α 0.05, power 0.8, 2 variants:
    n = 2·(1.959964 + 0.841621)²·0.04 / 0.000625 = 1004.7 → 1,005 per variant."""
    by_hand = 2 * (1.959964 + 0.841621) ** 2 * 0.2**2 / 0.025**2
    assert by_hand == pytest.approx(1004.7, abs=0.05)
    result = plan(baseline_mean=0.5, sd=0.2, mde=0.05, analysis="FIXED")
    assert (result.per_variant, result.per_variant_fixed, result.total) == (1005, 1005, 2010)
    assert result.delta == pytest.approx(0.025)


def test_several_treatments__bonferroni_alpha():
    three = plan(baseline_mean=0.5, sd=0.2, mde=0.05, variants=3, analysis="FIXED")
    z = scipy_stats.norm.ppf(1 - 0.05 / 2 / 2) + scipy_stats.norm.ppf(0.8)
    assert three.per_variant == int(np.ceil(2 * z**2 * 0.04 / 0.025**2))
    assert three.total == 3 * three.per_variant


def test_sequential__inflation_and_power_at_the_planned_size():
    """Known truth: at the planned sizes, 400 simulated experiments with a true δ reject at
    the final look about `power` of the time (fixed: Welch; sequential: the confidence
    sequence the evaluation uses)."""
    sequential = plan(baseline_mean=0.5, sd=0.2, mde=0.05)
    assert sequential.per_variant > sequential.per_variant_fixed
    assert sequential.inflation == pytest.approx(sequential.per_variant / 1005)
    rng = np.random.default_rng(9)
    for n, analysis in ((1005, "FIXED"), (sequential.per_variant, "SEQUENTIAL")):
        control = rng.normal(0.5, 0.2, (400, n))
        treatment = rng.normal(0.525, 0.2, (400, n))
        difference = treatment.mean(axis=1) - control.mean(axis=1)
        variance = (treatment.var(axis=1, ddof=1) + control.var(axis=1, ddof=1)) / n
        if analysis == "FIXED":
            p = stats.fixed_horizon_many(difference, variance, np.full(400, 2.0 * n - 2))["p_value"]
        else:
            p = stats.sequential_many(difference, variance, np.full(400, 2 * n))["p_value"]
        power = float((p < 0.05).mean())
        se = np.sqrt(0.8 * 0.2 / 400)
        assert abs(power - 0.8) <= 2.5 * se, f"{analysis}: power {power:.3f} ± {se:.3f}"


def _traffic(context="MISSION", learners=28):
    for index in range(learners):
        user = UserFactory()
        decision_make(user=user, context=context)
        outcome_record_many(
            user=user,
            items=[
                {
                    "event_id": f"plan-{index}",
                    "context": context,
                    "outcome_type": "MISSION_COMPLETED",
                    "occurred_at": timezone.now() - datetime.timedelta(days=2),
                    "retention_score": 0.3 + (index % 5) / 10,
                }
            ],
        )


def test_plan_api__given_inputs(staff_client, strategy_catalog):
    _traffic()
    body = staff_client.post(
        PLAN,
        {"context": "MISSION", "baseline_mean": 0.5, "sd": 0.2, "mde": 0.05, "analysis": "FIXED"},
        format="json",
    ).json()
    assert body["learners_per_variant"] == 1005
    assert body["total_learners"] == 2010
    assert body["daily_learners"] == pytest.approx(28 / 28)
    assert body["days"] == pytest.approx(2010.0)
    assert body["measured"] == {"baseline_mean": False, "sd": False}


def test_plan_api__measured_from_the_context(staff_client, strategy_catalog):
    _traffic()
    body = staff_client.post(PLAN, {"context": "MISSION", "mde": 0.1}, format="json").json()
    rewards = np.array([0.3 + (i % 5) / 10 for i in range(28)])
    assert body["measured"] == {"baseline_mean": True, "sd": True}
    assert body["baseline_mean"] == pytest.approx(rewards.mean())
    assert body["sd"] == pytest.approx(rewards.std(ddof=1))
    assert body["analysis"] == "SEQUENTIAL"
    assert body["sequential_inflation"] > 1


@pytest.mark.parametrize(
    ("payload", "attr"),
    [
        ({"mde": 0}, "mde"),
        ({"mde": -0.05}, "mde"),
        ({"sd": 0}, "sd"),
        ({"sd": -1}, "sd"),
        ({"baseline_mean": 0}, "baseline_mean"),
        ({"variants": 1}, "variants"),
        ({"power": 1.5}, "power"),
    ],
)
def test_plan_api__cannot_be_planned__400_says_why(staff_client, strategy_catalog, payload, attr):
    _traffic(learners=3)
    body = {"context": "MISSION", "baseline_mean": 0.5, "sd": 0.2, "mde": 0.05, **payload}
    assert_error_shape(staff_client.post(PLAN, body, format="json"), 400, attr=attr)


def test_plan_api__zero_traffic__400(staff_client, strategy_catalog):
    response = staff_client.post(
        PLAN, {"context": "SESSION", "baseline_mean": 0.5, "sd": 0.2, "mde": 0.05}, format="json"
    )
    body = assert_error_shape(response, 400, attr="context", code="no_traffic")
    assert "No learner" in body["errors"][0]["detail"]


def test_plan_api__nothing_to_measure__400(staff_client, strategy_catalog):
    response = staff_client.post(PLAN, {"context": "ASSESSMENT", "mde": 0.05}, format="json")
    assert_error_shape(response, 400, attr="baseline_mean", code="not_measurable")


def test_plan_api__staff_only(user_client, service_client):
    payload = {"context": "MISSION", "baseline_mean": 0.5, "sd": 0.2, "mde": 0.05}
    assert_error_shape(user_client.post(PLAN, payload, format="json"), 403)
    assert_error_shape(service_client.post(PLAN, payload, format="json"), 403)


def test_fixed_horizon_per_variant__comparisons_divide_alpha():
    one = fixed_horizon_per_variant(sd=1, delta=0.1, alpha=0.05, power=0.8)
    two = fixed_horizon_per_variant(sd=1, delta=0.1, alpha=0.05, power=0.8, comparisons=2)
    assert two > one
