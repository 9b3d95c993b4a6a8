"""Simulating an experiment design before launch (experiments/design_simulation.py) and
`experiments/{id}/simulate/`: the looks are §5.3's analysis exactly, the figures are checked
against known truth (A/A, a large effect, bandit regret), and the API's errors keep the
project's shape."""

import datetime

import numpy as np
import pytest
from django.utils import timezone

from experiments import design_simulation as ds
from experiments.models import Experiment
from experiments.services.decisions import decision_make
from outcomes import analysis, planning
from outcomes.services.ingest import outcome_record_many
from tests.conftest import assert_error_shape
from tests.experiments.factories import make_experiment
from tests.personalization.factories import UserFactory

AB_ARMS = (analysis.Arm("control", is_control=True), analysis.Arm("treatment"))


def _spec(experiment_type="AB_TEST", algorithm=None, *, label=None, arms=2, **rules):
    return ds.DesignSpec(
        label=label or algorithm or "fixed split",
        rules=analysis.Design(experiment_type=experiment_type, **rules),
        weights=(1.0,) * arms,
        algorithm=algorithm,
    )


FIXED = _spec()
THOMPSON = _spec("MULTI_ARMED_BANDIT", "THOMPSON")


def _scenario(lift=0.0, *, runs=200, days=28, per_day=50.0, seed=0, arms=AB_ARMS):
    means = (0.5,) + (0.5 * (1 + lift),) * (len(arms) - 1)
    return ds.Scenario(
        arms=arms, means=means, sd=0.2, learners_per_day=per_day, days=days, runs=runs, seed=seed
    )


# --- The looks are §5.3's analysis -----------------------------------------------------------


def _learners(rng, runs, days, k, lift):
    """Per run: (arm, day, value) rows of learners, and the same as DailyData."""
    counts = rng.integers(0, 20, (runs, days, k))
    n = np.zeros((runs, days, k), dtype=np.int64)
    total, total_sq = np.zeros(n.shape), np.zeros(n.shape)
    rows = []
    for run in range(runs):
        mine = []
        for day in range(days):
            for arm in range(k):
                values = np.clip(rng.normal(0.5 + lift * arm, 0.2, counts[run, day, arm]), 0, 1)
                mine += [(arm, day, value) for value in values]
                n[run, day, arm] = values.size
                total[run, day, arm], total_sq[run, day, arm] = values.sum(), (values**2).sum()
        rows.append(np.array(mine))
    return rows, ds.DailyData(n, total, total_sq)


@pytest.mark.parametrize(
    ("experiment_type", "k", "rules"),
    [
        ("AB_TEST", 2, {"analysis": "SEQUENTIAL", "sequential_tuning": 100.0}),
        ("AB_TEST", 2, {"analysis": "FIXED"}),
        ("MULTIVARIATE", 3, {"analysis": "FIXED"}),
        ("MULTIVARIATE", 4, {"analysis": "SEQUENTIAL", "sequential_tuning": 100.0}),
        ("MULTI_ARMED_BANDIT", 3, {"analysis": "SEQUENTIAL", "sequential_tuning": 100.0}),
        ("MULTI_ARMED_BANDIT", 2, {"analysis": "FIXED"}),
        ("AB_TEST", 2, {"engine": "BAYESIAN"}),
        ("MULTIVARIATE", 3, {"engine": "BAYESIAN", "prior_mean": 0.0, "prior_sd": 0.1}),
        ("MULTI_ARMED_BANDIT", 3, {"engine": "BAYESIAN"}),
    ],
)
def test_looks__every_day__equal_analyse_on_the_learners_so_far(experiment_type, k, rules):
    """Known answer: `looks` (vectorised over runs and days) and `analysis.analyse` (one look
    at a time, from the learners themselves) agree on every figure and on the winner."""
    rng = np.random.default_rng(3)
    arms = [analysis.Arm(f"v{i}", is_control=i == 0) for i in range(k)]
    design = analysis.Design(experiment_type=experiment_type, **rules)
    rows, data = _learners(rng, runs=3, days=6, k=k, lift=0.12)
    out = ds.looks(design, arms, data)
    compared = ["difference", "p_value", "adjusted_p_value"]
    if design.engine == "BAYESIAN":
        compared += ["posterior_mean", "chance_to_win", "risk"]
    winners = looks_without = 0
    for run in range(3):
        for day in range(6):
            seen = rows[run][rows[run][:, 1] <= day]
            expected = analysis.analyse(
                design,
                arms,
                seen[:, 0].astype(np.int64),
                seen[:, 2],
                period=seen[:, 1] if design.is_bandit else None,
            )
            for j, row in enumerate(expected["comparisons"]):
                for name in compared:
                    got = out[name][run, day, j]
                    if row[name] is None:
                        assert np.isnan(got), (name, run, day)
                    else:
                        assert got == pytest.approx(row[name], rel=1e-7, abs=1e-12), name
            keys = [arm.key for arm in arms]
            winner = -1 if expected["winner"] is None else keys.index(expected["winner"])
            assert out["winner"][run, day] == winner, (run, day)
            winners += winner >= 0
            looks_without += winner < 0
    assert winners > 0, "no look named a winner: the winner rule went untested"
    assert looks_without > 0, "every look named a winner: the rule's 'none' went untested"


# --- Known truth -----------------------------------------------------------------------------


def test_simulate__a_a_sequential__false_winners_within_alpha_over_two():
    """A/A (no effect), SEQUENTIAL, looked at daily for 28 days at 50 learners a day: every
    arm is best, so power is the false-winner rate, and the always-valid analysis keeps it
    ≤ α/2 + 2 SE (SE of the target rate α/2 over the runs; an observed 0 has SE 0). Seed 0:
    fixed split 0.0 % (0 of 400 runs, SE 0.8 %), THOMPSON 1.5 % ± 0.9 % (200 runs); target
    2.5 %."""
    fixed = ds.simulate(_scenario(0.0, runs=400), [FIXED])[0]
    thompson = ds.simulate(_scenario(0.0, runs=200), [THOMPSON])[0]
    target = 0.05 / 2
    for result in (fixed, thompson):
        rate, runs = result.power.value, result.winners.size
        assert rate is not None
        se = np.sqrt(target * (1 - target) / runs)
        assert rate <= target + 2 * se, (
            f"{result.design.label}: {rate:.2%} ± {result.power.standard_error:.2%}, "
            f"limit {target + 2 * se:.2%}"
        )
        assert result.false_winner_rate.value == 0.0  # no arm is worse than another
        assert result.expected_regret.value == 0.0


def test_simulate__a_a_fixed_horizon_looked_at_daily__false_winners_inflate():
    """The same A/A runs under FIXED: 28 daily looks at a fixed-horizon test name a winner
    far more often than α/2 (seed 0: 17.0 % ± 1.9 % of 400 runs), which is what the
    simulation should show staff before they pick FIXED."""
    result = ds.simulate(_scenario(0.0, runs=400), [_spec(analysis="FIXED")])[0]
    rate, se = result.power.value, result.power.standard_error
    assert rate is not None
    assert se is not None
    assert rate > 0.05 / 2 + 3 * se, f"{rate:.2%} ± {se:.2%}"


def test_simulate__large_effect__power_near_one():
    """+30 % over 0.5 (δ = 0.15 = 0.75 sd), 50 learners a day for 28 days: the fixed split
    finds it in every run (seed 0: 200 of 200, by day 4 at the median), and never names a
    wrong winner."""
    result = ds.simulate(_scenario(0.3), [FIXED])[0]
    assert result.power.value is not None
    assert result.power.value >= 0.95, result.power
    assert result.false_winner_rate.value == 0.0
    assert result.winner_median is not None
    assert result.winner_median < 14


def test_simulate__one_clearly_better__thompson_regret_below_the_fixed_split():
    """+20 %: THOMPSON moves learners to the better arm, so its expected regret is below the
    equal split's by many standard errors (seed 0, 200 runs: 5.4 ± 0.15 against
    68.8 ± 0.17, 96 % of learners on the treatment)."""
    fixed, thompson = ds.simulate(_scenario(0.2), [FIXED, THOMPSON])
    (fixed_regret, fixed_se), (thompson_regret, thompson_se) = (
        (r.expected_regret.value or 0.0, r.expected_regret.standard_error or 0.0)
        for r in (fixed, thompson)
    )
    gap = fixed_regret - thompson_regret
    se = np.hypot(fixed_se, thompson_se)
    assert gap > 10 * se, f"fixed {fixed.expected_regret}, THOMPSON {thompson.expected_regret}"
    assert thompson.allocation["treatment"] > 0.8


def test_simulate__regret__hand_computed_for_a_fixed_split():
    """Regret = Σ learners × (best truth − their arm's truth): with equal weights about half
    the learners pay the gap, so the mean over runs is ≈ gap × learners / 2."""
    result = ds.simulate(_scenario(0.2, runs=300), [FIXED])[0]
    scenario = _scenario(0.2)
    gap = float(scenario.truth[1] - scenario.truth[0])
    expected = gap * 50 * 28 / 2
    assert result.expected_regret.value == pytest.approx(expected, rel=0.03)


def test_simulate__control_alone_best__power_undefined_and_any_winner_false():
    result = ds.simulate(_scenario(-0.3), [FIXED])[0]
    assert result.power == ds.Figure(None, None)
    assert result.false_winner_rate.value == 0.0  # the rule never names a worse treatment


def test_simulate__same_seed__same_figures_and_threads_change_nothing():
    scenario = _scenario(0.1, runs=30, days=20, seed=7)
    first = ds.simulate(scenario, [FIXED, THOMPSON], workers=2)
    second = ds.simulate(scenario, [FIXED, THOMPSON], workers=1)
    for a, b in zip(first, second, strict=True):
        assert np.array_equal(a.regret, b.regret)
        assert np.array_equal(a.winners, b.winners)
        assert (a.power, a.readiness_median, a.winner_median) == (
            b.power,
            b.readiness_median,
            b.winner_median,
        )
    other = ds.simulate(_scenario(0.1, runs=30, days=20, seed=8), [FIXED])[0]
    assert not np.array_equal(first[0].regret, other.regret)


def test_simulate__readiness__min_days_or_never():
    """Ready once participants ≥ min_participants (20) and days ≥ min_duration_days (14):
    at 50 a day that is day 14; at 0.5 a day 20 learners take about 40 days, so within 28
    days almost no run is ready and both quantiles are None."""
    busy = ds.simulate(_scenario(0.0, runs=50), [FIXED])[0]
    assert (busy.readiness_median, busy.readiness_p90) == (14.0, 14.0)
    quiet = ds.simulate(_scenario(0.0, runs=50, per_day=0.5), [FIXED])[0]
    assert (quiet.readiness_median, quiet.readiness_p90) == (None, None)
    assert quiet.winner_median is None


def test_detectable_mde__the_planner_needs_just_the_learners_available():
    mde = ds.detectable_mde(
        baseline_mean=0.5,
        sd=0.2,
        learners_per_variant=700,
        variants=2,
        alpha=0.05,
        analysis_kind="SEQUENTIAL",
        tuning=5000.0,
    )
    assert mde is not None
    assert planning.plan(baseline_mean=0.5, sd=0.2, mde=mde).per_variant <= 700
    assert planning.plan(baseline_mean=0.5, sd=0.2, mde=mde * 0.999).per_variant > 700


def test_simulate__at_the_planners_mde__power_about_the_plans():
    """Known truth for the default effect: at the planner's MDE for the learners the horizon
    brings (SEQUENTIAL, power 0.8 at the last look), the simulated SEQUENTIAL split declares
    the winner in about 80 % of runs — a little more from the earlier looks, a little less
    from Poisson traffic (seed 0: 83.0 % ± 2.2 % of 300 runs)."""
    mde = ds.detectable_mde(
        baseline_mean=0.5,
        sd=0.2,
        learners_per_variant=50 * 28 / 2,
        variants=2,
        alpha=0.05,
        analysis_kind="SEQUENTIAL",
        tuning=5000.0,
    )
    assert mde is not None
    power = ds.simulate(_scenario(mde, runs=300), [FIXED])[0].power
    assert power.value is not None
    assert power.standard_error is not None
    assert abs(power.value - 0.8) <= 3 * power.standard_error, power


# --- The API ---------------------------------------------------------------------------------


def _url(experiment_id: int) -> str:
    return f"/api/v1/experiments/{experiment_id}/simulate/"


def _traffic(context="MISSION", learners=28):
    for index in range(learners):
        user = UserFactory()
        decision_make(user=user, context=context)
        outcome_record_many(
            user=user,
            items=[
                {
                    "event_id": f"simulate-{context}-{index}",
                    "context": context,
                    "outcome_type": "MISSION_COMPLETED",
                    "occurred_at": timezone.now() - datetime.timedelta(days=2),
                    "retention_score": 0.3 + (index % 5) / 10,
                }
            ],
        )


QUICK = {"baseline_mean": 0.5, "sd": 0.2, "runs": 20, "days": 20}


def test_simulate_api__fixed_split__design_beside_thompson(staff_client, strategy_catalog):
    _traffic()
    experiment = make_experiment(start=False)
    response = staff_client.post(
        _url(experiment.pk), {**QUICK, "effects": {"treatment": 0.1}}, format="json"
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["experiment"] == experiment.pk
    assumptions = body["assumptions"]
    assert assumptions["effects"] == {"control": 0.0, "treatment": 0.1}
    assert assumptions["learners_per_day"] == pytest.approx(1.0)
    assert (assumptions["days"], assumptions["runs"], assumptions["seed"]) == (20, 20, 0)
    assert assumptions["measured"] == {"baseline_mean": False, "sd": False}
    assert [d["design"] for d in body["designs"]] == ["as configured", "THOMPSON"]
    configured, thompson = body["designs"]
    assert (configured["experiment_type"], configured["algorithm"]) == ("AB_TEST", None)
    assert (thompson["experiment_type"], thompson["algorithm"]) == (
        "MULTI_ARMED_BANDIT",
        "THOMPSON",
    )
    for design in body["designs"]:
        assert set(design["power"]) == {"value", "standard_error"}
        assert set(design["days_to_readiness"]) == {"median", "p90"}
        assert set(design["days_to_winner"]) == {"median"}
        assert design["expected_regret"]["value"] > 0
    # About 20 learners in 20 days: too few for most runs to find a winner, so the median
    # day is null (undefined numbers are null, never NaN: the body parsed as strict JSON).
    assert configured["days_to_winner"]["median"] is None


def test_simulate_api__thompson_bandit__beside_a_fixed_equal_split(staff_client, strategy_catalog):
    _traffic()
    experiment = make_experiment(
        start=False, experiment_type=Experiment.Type.MULTI_ARMED_BANDIT, algorithm="THOMPSON"
    )
    body = staff_client.post(_url(experiment.pk), QUICK | {"mde": 0.2}, format="json").json()
    assert [(d["design"], d["algorithm"]) for d in body["designs"]] == [
        ("as configured", "THOMPSON"),
        ("fixed split", None),
    ]
    assert body["designs"][1]["weights"] == [1.0, 1.0]
    assert body["assumptions"]["effects"]["treatment"] == 0.2


def test_simulate_api__ucb1_bandit__beside_a_fixed_split_and_thompson(
    staff_client, strategy_catalog
):
    _traffic()
    experiment = make_experiment(
        start=False, experiment_type=Experiment.Type.MULTI_ARMED_BANDIT, algorithm="UCB1"
    )
    body = staff_client.post(_url(experiment.pk), QUICK | {"mde": 0.2}, format="json").json()
    assert [(d["design"], d["algorithm"]) for d in body["designs"]] == [
        ("as configured", "UCB1"),
        ("fixed split", None),
        ("THOMPSON", "THOMPSON"),
    ]


def test_simulate_api__defaults__measured_and_the_planners_mde(staff_client, strategy_catalog):
    _traffic()
    experiment = make_experiment(start=False)
    body = staff_client.post(_url(experiment.pk), {"runs": 10}, format="json").json()
    assumptions = body["assumptions"]
    rewards = np.array([0.3 + (i % 5) / 10 for i in range(28)])
    assert assumptions["measured"] == {"baseline_mean": True, "sd": True}
    assert assumptions["baseline_mean"] == pytest.approx(rewards.mean())
    assert assumptions["sd"] == pytest.approx(rewards.std(ddof=1))
    assert assumptions["days"] == 28
    mde = ds.detectable_mde(
        baseline_mean=rewards.mean(),
        sd=rewards.std(ddof=1),
        learners_per_variant=28 / 2,
        variants=2,
        alpha=0.05,
        analysis_kind="SEQUENTIAL",
        tuning=5000.0,
    )
    assert assumptions["mde"] == pytest.approx(mde)
    assert assumptions["effects"]["treatment"] == pytest.approx(mde)


def test_simulate_api__same_seed__same_answer(staff_client, strategy_catalog):
    _traffic()
    experiment = make_experiment(start=False)
    payload = {**QUICK, "mde": 0.2, "seed": 5}
    first = staff_client.post(_url(experiment.pk), payload, format="json").json()
    second = staff_client.post(_url(experiment.pk), payload, format="json").json()
    assert first == second


def test_simulate_api__staff_only(user_client, service_client, strategy_catalog):
    experiment = make_experiment(start=False)
    for client in (user_client, service_client):
        assert_error_shape(client.post(_url(experiment.pk), QUICK, format="json"), 403)


def test_simulate_api__not_draft__409(staff_client, strategy_catalog):
    _traffic(learners=3)
    experiment = make_experiment(start=True)
    response = staff_client.post(_url(experiment.pk), {**QUICK, "mde": 0.1}, format="json")
    assert_error_shape(response, 409, code="experiment_not_draft")


@pytest.mark.parametrize(
    "effects",
    [{"nope": 0.1}, {"control": 0.1}, {"treatment": "a lot"}, {"treatment": -2}, ["treatment"]],
)
def test_simulate_api__bad_effects__400_naming_effects(staff_client, strategy_catalog, effects):
    _traffic(learners=3)
    experiment = make_experiment(start=False)
    response = staff_client.post(_url(experiment.pk), {**QUICK, "effects": effects}, format="json")
    body = assert_error_shape(response, 400)
    assert any((e["attr"] or "").startswith("effects") for e in body["errors"]), body


def test_simulate_api__unknown_field__400(staff_client, strategy_catalog):
    experiment = make_experiment(start=False)
    response = staff_client.post(_url(experiment.pk), {**QUICK, "horizon": 10}, format="json")
    assert_error_shape(response, 400, attr="horizon", code="unknown_field")


def test_simulate_api__no_traffic__400_says_why(staff_client, strategy_catalog):
    experiment = make_experiment(context="SESSION", start=False)
    response = staff_client.post(_url(experiment.pk), {**QUICK, "mde": 0.1}, format="json")
    body = assert_error_shape(response, 400, attr="context", code="no_traffic")
    assert "No learner was decided for in SESSION" in body["errors"][0]["detail"]


def test_simulate_api__nothing_to_measure__400(staff_client, strategy_catalog):
    experiment = make_experiment(context="ASSESSMENT", start=False)
    response = staff_client.post(_url(experiment.pk), {"mde": 0.1}, format="json")
    assert_error_shape(response, 400, attr="baseline_mean", code="not_measurable")


def test_simulate_api__too_many_runs__400(staff_client, strategy_catalog):
    experiment = make_experiment(start=False)
    response = staff_client.post(_url(experiment.pk), {**QUICK, "runs": 1001}, format="json")
    assert_error_shape(response, 400, attr="runs")


def test_simulate_api__unknown_experiment__404(staff_client, db):
    assert_error_shape(staff_client.post(_url(999_999), QUICK, format="json"), 404)
