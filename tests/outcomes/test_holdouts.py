"""Holdout evaluation (DESIGN.md §3): held-out learners' mean reward against everyone else's,
learner-level, with an always-valid interval; A/A and known-effect simulations."""

import datetime

import numpy as np
import pytest
from django.utils import timezone

from experiments.assignment import bucket
from experiments.models import Holdout
from outcomes.analysis import holdout_lift
from outcomes.services.holdouts import holdout_evaluate, holdouts_evaluate_active
from outcomes.services.ingest import outcome_record_many
from tests.personalization.factories import UserFactory


def test_lift__known_effect__interval_holds_it():
    rng = np.random.default_rng(1)
    held = rng.normal(0.45, 0.1, 400)
    others = rng.normal(0.50, 0.1, 4000)
    result = holdout_lift(held, others)
    assert result["difference"] == pytest.approx(others.mean() - held.mean())
    assert result["ci_lower"] < 0.05 < result["ci_upper"]
    assert result["significant"] is True
    assert result["relative_lift"] == pytest.approx((others.mean() - held.mean()) / held.mean())
    assert (result["holdout"]["learners"], result["everyone_else"]["learners"]) == (400, 4000)


def test_lift__too_few_learners__undefined_is_none_not_significant():
    result = holdout_lift(np.array([0.5]), np.array([0.4, 0.6]))
    assert result["difference"] is not None
    assert result["ci_lower"] is None
    assert result["p_value"] is None
    assert result["significant"] is False


def test_lift__a_a_simulation__false_positive_rate_within_alpha():
    """500 A/A holdouts (seed 3) of 100 vs 1,900 learners: 'significant' at most α = 5% of the
    time plus two standard errors (the always-valid interval is conservative at one look)."""
    rng = np.random.default_rng(3)
    runs = 500
    hits = sum(
        holdout_lift(rng.normal(0.5, 0.15, 100), rng.normal(0.5, 0.15, 1900))["significant"]
        for _ in range(runs)
    )
    rate = hits / runs
    assert rate <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / runs)


def test_evaluate__held_out_learners_by_bucket__stored_on_the_holdout(strategy_catalog):
    holdout = Holdout.objects.create(
        name="Everything",
        percent=20,
        salt="s1",
        started_at=timezone.now() - datetime.timedelta(days=1),
    )
    users = UserFactory.create_batch(30)
    rng = np.random.default_rng(4)
    held = [u for u in users if bucket("s1", u.pk) < 0.2]
    for user in users:
        value = 0.3 if user in held else 0.6
        outcome_record_many(
            user=user,
            items=[
                {
                    "event_id": f"o{i}",
                    "context": "MISSION",
                    "outcome_type": "MISSION_COMPLETED",
                    "retention_score": float(np.clip(value + rng.normal(0, 0.02), 0, 1)),
                }
                for i in range(2)
            ],
        )
    assert held, "the seed puts someone in the holdout"
    result = holdout_evaluate(holdout=holdout)
    holdout.refresh_from_db()
    assert holdout.results["holdout"]["learners"] == len(held)
    assert holdout.results["everyone_else"]["learners"] == 30 - len(held)
    assert holdout.results["difference"] == pytest.approx(0.3, abs=0.03)
    assert holdout.evaluated_at is not None
    assert result == holdout.results


def test_evaluate_active__one_failing_holdout_does_not_stop_the_others(
    strategy_catalog, monkeypatch
):
    Holdout.objects.create(name="A", percent=5)
    Holdout.objects.create(name="B", percent=5)
    Holdout.objects.create(name="Off", percent=5, is_active=False)
    from outcomes.services import holdouts as service

    real = service.holdout_evaluate

    def flaky(*, holdout, now=None):
        if holdout.name == "A":
            raise RuntimeError("boom")
        return real(holdout=holdout, now=now)

    monkeypatch.setattr(service, "holdout_evaluate", flaky)
    assert holdouts_evaluate_active() == 1
    assert Holdout.objects.get(name="B").evaluated_at is not None


def test_holdouts_api__returns_the_stored_results_with_their_interval(
    staff_client, strategy_catalog
):
    holdout = Holdout.objects.create(
        name="Measured",
        percent=20,
        salt="s2",
        started_at=timezone.now() - datetime.timedelta(days=1),
    )
    rng = np.random.default_rng(5)
    users, held = [], 0
    while held < 3 or len(users) < 30:  # ids decide who is held out: enough on both sides
        user = UserFactory()
        users.append(user)
        held += bucket("s2", user.pk) < 0.2
        outcome_record_many(
            user=user,
            items=[
                {
                    "event_id": "o",
                    "context": "MISSION",
                    "outcome_type": "MISSION_COMPLETED",
                    "retention_score": float(rng.uniform(0.2, 0.8)),
                }
            ],
        )
    stored = holdout_evaluate(holdout=holdout)
    assert stored["ci_lower"] is not None
    assert stored["ci_lower"] < stored["difference"] < stored["ci_upper"]

    listed = staff_client.get("/api/v1/holdouts/")
    one = staff_client.get(f"/api/v1/holdouts/{holdout.pk}/")

    assert listed.status_code == one.status_code == 200
    (row,) = listed.json()["results"]
    assert row == one.json()
    assert row["results"]["ci_lower"] == pytest.approx(stored["ci_lower"])
    assert row["results"]["ci_upper"] == pytest.approx(stored["ci_upper"])
    assert row["results"]["difference"] == pytest.approx(stored["difference"])
    assert row["results"]["holdout"]["learners"] == held
    assert row["results"]["everyone_else"]["learners"] == len(users) - held
    assert row["evaluated_at"] is not None
