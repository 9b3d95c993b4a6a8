"""Effectiveness runs after an identity change (DESIGN.md §5.2, §10): a merge moves outcomes to
another learner and an erasure deletes them, neither of which the outcomes watermark sees as
new rows; the next hourly run must still leave the rows a whole recomputation would."""

import datetime

import numpy as np
import pytest
from django.utils import timezone

from experiments.services.decisions import decision_make
from outcomes.models import Effectiveness, Outcome
from outcomes.services.effectiveness import effectiveness_windows_compute
from outcomes.services.ingest import outcome_record_many
from outcomes.windows import window_bounds, window_index
from tests.conftest import token_client
from tests.personalization.factories import UserFactory

DAYS = 14
CURRENT = window_index(timezone.now(), DAYS)
PREVIOUS = CURRENT - 1
COMPARED = (
    "n_personalized",
    "n_baseline",
    "sample_size",
    "mean_personalized",
    "mean_baseline",
    "difference",
    "ci_lower",
    "ci_upper",
    "p_value",
    "composite_score",
    "retention_improvement",
    "is_statistically_significant",
)


def _moment(window: int, rng: np.random.Generator) -> datetime.datetime:
    start, end = window_bounds(window, DAYS)
    end = min(end, timezone.now() - datetime.timedelta(minutes=1))
    return start + (end - start) * float(rng.uniform(0.0, 1.0))


def _outcomes(user, rng, *, count, prefix, strategies=("pattern_heavy", "balanced")) -> None:
    """Personalized outcomes of `strategies` and baseline ones, over both windows."""
    items = []
    for i in range(count):
        applied = i % 3 != 0
        item = {
            "event_id": f"{prefix}{i}",
            "context": "MISSION",
            "personalization_applied": applied,
            "outcome_type": "MISSION_COMPLETED",
            "occurred_at": _moment((PREVIOUS, CURRENT)[(i // 3) % 2], rng),
            "retention_score": float(rng.uniform(0.2, 0.9)),
        }
        if applied:
            item["strategy"] = strategies[i % len(strategies)]
        items.append(item)
    outcome_record_many(user=user, items=items)


def _rows() -> dict[tuple, dict]:
    return {
        (row["scope"], row["strategy_id"], row["user_id"], row["window_start"]): row
        for row in Effectiveness.objects.values(
            "scope", "strategy_id", "user_id", "window_start", *COMPARED
        )
    }


def _assert_hourly_equals_a_rebuild() -> None:
    hourly = _rows()
    effectiveness_windows_compute(windows={PREVIOUS, CURRENT})
    whole = _rows()
    assert set(hourly) == set(whole)
    for key, row in whole.items():
        for field in COMPARED:
            expected = row[field]
            if isinstance(expected, float):
                assert hourly[key][field] == pytest.approx(expected, rel=1e-9), (key, field)
            else:
                assert hourly[key][field] == expected, (key, field)


@pytest.fixture
def learners(strategy_catalog):
    users = [UserFactory(external_id=f"learner-{n}") for n in range(4)]
    for user in users:
        decision_make(user=user, context="MISSION")  # creates the user's MISSION configs
    return users


def test_hourly_run__after_a_merge__survivor_rows_equal_a_rebuild(learners, service_client):
    """A merge moved outcomes with an UPDATE, which the watermark does not see: the hourly
    run never recomputed the survivor's USER rows (nor the GLOBAL rows, whose unit is the
    learner) from the moved outcomes."""
    rng = np.random.default_rng(15)
    for n, user in enumerate(learners):
        _outcomes(user, rng, count=24, prefix=f"u{n}-")
    effectiveness_windows_compute()
    anonymous, survivor = learners[0], learners[1]
    before = _rows()

    response = service_client.post(
        f"/api/v1/users/{survivor.pk}/merge/", {"from": anonymous.external_id}, format="json"
    )
    assert response.status_code == 200, response.content
    assert Outcome.objects.filter(user=survivor).count() == 48
    assert effectiveness_windows_compute()["windows"] == 2

    assert not Effectiveness.objects.filter(user=anonymous).exists()
    mine = {key: row for key, row in _rows().items() if key[2] == survivor.pk}
    assert mine
    assert all(row["sample_size"] > before[key]["sample_size"] for key, row in mine.items())
    _assert_hourly_equals_a_rebuild()
    # What the merge asked for is done: the run after does nothing.
    assert effectiveness_windows_compute(now=timezone.now())["windows"] == 0


def test_hourly_run__after_an_erasure__global_rows_stop_counting_the_learner(learners):
    """Erasure deletes the learner's outcomes, which the watermark cannot see either: the
    GLOBAL rows of their windows kept counting them, and a strategy only they had kept its
    row."""
    rng = np.random.default_rng(16)
    leaving = learners[0]
    _outcomes(leaving, rng, count=24, prefix="l-", strategies=("pattern_heavy", "prediction_heavy"))
    for n, user in enumerate(learners[1:]):
        _outcomes(user, rng, count=24, prefix=f"u{n}-")
    effectiveness_windows_compute()
    only_theirs = Effectiveness.objects.filter(scope="GLOBAL", strategy__key="prediction_heavy")
    assert only_theirs.count() == 2

    assert token_client(leaving).delete("/api/v1/me/").status_code == 204
    assert effectiveness_windows_compute()["windows"] == 2

    assert not only_theirs.exists()
    counted = Effectiveness.objects.filter(scope="GLOBAL", strategy__key="balanced")
    assert set(counted.values_list("n_personalized", flat=True)) == {3}
    _assert_hourly_equals_a_rebuild()
