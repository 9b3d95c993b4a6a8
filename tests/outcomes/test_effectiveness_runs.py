"""Effectiveness runs: the hourly (incremental) run against a whole recomputation, consent
withdrawal, and a config's latest window when an older one is recomputed."""

import datetime

import numpy as np
import pytest
from django.db.models import F
from django.utils import timezone

from experiments.models import StrategyConfig
from experiments.services.decisions import decision_make
from outcomes.models import Effectiveness, Outcome
from outcomes.services.effectiveness import effectiveness_windows_compute
from outcomes.services.ingest import outcome_record_many
from outcomes.windows import window_bounds, window_index
from tests.personalization.factories import UserFactory

DAYS = 14
CURRENT = window_index(timezone.now(), DAYS)
PREVIOUS = CURRENT - 1
STRATEGIES = ["pattern_heavy", "prediction_heavy", "balanced"]
COMPARED = [
    "n_personalized",
    "n_baseline",
    "mean_personalized",
    "mean_baseline",
    "difference",
    "standard_error",
    "ci_lower",
    "ci_upper",
    "correlation",
    "p_value",
    "composite_score",
    "retention_improvement",
    "engagement_change",
    "is_statistically_significant",
]


def _moment(window: int, rng: np.random.Generator) -> datetime.datetime:
    start, end = window_bounds(window, DAYS)
    end = min(end, timezone.now() - datetime.timedelta(minutes=1))
    return start + (end - start) * float(rng.uniform(0.0, 1.0))


def _outcomes(user, rng, *, count: int, windows: list[int], prefix: str) -> None:
    """Random personalized (non-baseline strategies) and baseline outcomes of `user`."""
    items = []
    for i in range(count):
        applied = bool(rng.uniform() < 0.6)
        item = {
            "event_id": f"{prefix}{i}",
            "context": "MISSION",
            "personalization_applied": applied,
            "outcome_type": "MISSION_COMPLETED",
            "occurred_at": _moment(int(rng.choice(windows)), rng),
            "retention_score": float(rng.uniform(0.2, 0.9)),
        }
        if rng.uniform() < 0.5:
            item["engagement_score"] = float(rng.uniform(0.1, 1.0))
        if applied:
            item["strategy"] = str(rng.choice(STRATEGIES))
        items.append(item)
    outcome_record_many(user=user, items=items)


def _rows() -> dict[tuple, dict]:
    return {
        (row["scope"], row["strategy_id"], row["user_id"], row["window_start"]): row
        for row in Effectiveness.objects.values(
            "scope", "strategy_id", "user_id", "window_start", *COMPARED
        )
    }


def _an_hour_passes() -> None:
    """What is stored so far moves an hour into the past, as if the last run was an hour ago."""
    hour = datetime.timedelta(hours=1)
    Outcome.objects.update(created_at=F("created_at") - 2 * hour)
    Effectiveness.objects.update(calculated_at=F("calculated_at") - hour)


@pytest.fixture
def learners(strategy_catalog):
    users = UserFactory.create_batch(4)
    for user in users:
        decision_make(user=user, context="MISSION")  # creates the user's MISSION configs
    return users


def test_hourly_run__recomputes_only_users_with_new_outcomes_and_matches_a_whole_run(learners):
    rng = np.random.default_rng(11)
    for n, user in enumerate(learners):
        _outcomes(user, rng, count=40, windows=[PREVIOUS, CURRENT], prefix=f"old{n}-")
    first = effectiveness_windows_compute()  # the first run: every window, every user
    assert first["windows"] == 2
    _an_hour_passes()
    # An untouched user's row keeps a marker through the hourly run.
    untouched = learners[3]
    marked = Effectiveness.objects.filter(
        user=untouched, window_start=window_bounds(CURRENT, DAYS)[0]
    )
    assert marked.exists()
    marked.update(difference=123.0)
    _outcomes(learners[0], rng, count=15, windows=[CURRENT], prefix="new0-")
    _outcomes(learners[1], rng, count=15, windows=[PREVIOUS], prefix="new1-")

    hourly = effectiveness_windows_compute()

    assert hourly["windows"] == 2
    rewritten = Effectiveness.objects.filter(
        scope="USER", calculated_at__gt=timezone.now() - datetime.timedelta(minutes=5)
    )
    assert set(rewritten.values_list("user_id", flat=True)) == {learners[0].pk, learners[1].pk}
    assert set(marked.values_list("difference", flat=True)) == {123.0}
    incremental = _rows()
    marked.update(difference=None)
    effectiveness_windows_compute(windows={PREVIOUS, CURRENT})
    whole = _rows()
    assert set(incremental) == set(whole)
    for key, row in whole.items():
        if key[2] == untouched.pk:
            continue  # the marker
        for field in COMPARED:
            expected = row[field]
            if isinstance(expected, float):
                assert incremental[key][field] == pytest.approx(expected, rel=1e-9), (key, field)
            else:
                assert incremental[key][field] == expected, (key, field)


def test_hourly_run__without_new_outcomes_does_nothing(learners):
    _outcomes(learners[0], np.random.default_rng(3), count=30, windows=[CURRENT], prefix="a")
    effectiveness_windows_compute()
    _an_hour_passes()
    assert effectiveness_windows_compute() == {
        "windows": 0,
        "global": 0,
        "user": 0,
        "configs": 0,
        "withdrawn": 0,
    }


def test_withdrawn_consent__user_rows_deleted_by_the_next_run(learners):
    rng = np.random.default_rng(5)
    for n, user in enumerate(learners[:2]):
        _outcomes(user, rng, count=30, windows=[CURRENT], prefix=f"u{n}-")
    effectiveness_windows_compute()
    leaving = learners[0]
    before = Effectiveness.objects.filter(scope="USER", user=leaving).count()
    assert before > 0
    leaving.behavioral_analysis_enabled = False
    leaving.save()
    _an_hour_passes()

    result = effectiveness_windows_compute()

    assert result["withdrawn"] == before
    assert not Effectiveness.objects.filter(scope="USER", user=leaving).exists()
    assert Effectiveness.objects.filter(scope="USER", user=learners[1]).exists()


def test_config_scores__an_older_window_recomputed_keeps_the_latest_windows_composite(learners):
    user = learners[0]
    _outcomes(user, np.random.default_rng(8), count=60, windows=[PREVIOUS, CURRENT], prefix="x")
    effectiveness_windows_compute()
    latest = {
        row.config_id: row.composite_score
        for row in Effectiveness.objects.filter(
            scope="USER", user=user, window_start=window_bounds(CURRENT, DAYS)[0]
        )
    }
    assert latest
    StrategyConfig.objects.filter(pk__in=latest).update(effectiveness_score=None)

    effectiveness_windows_compute(windows={PREVIOUS})

    for config in StrategyConfig.objects.filter(pk__in=latest):
        assert config.effectiveness_score == pytest.approx(latest[config.pk])


def test_global_row__scores_missing_for_some_users_from_scratch(learners):
    rng = np.random.default_rng(21)
    for n, user in enumerate(learners):
        _outcomes(user, rng, count=40, windows=[CURRENT], prefix=f"s{n}-")
    # One user never reports engagement: their groups' engagement sums are NULL in SQL.
    Outcome.objects.filter(user=learners[2]).update(engagement_score=None)
    effectiveness_windows_compute()
    start, end = window_bounds(CURRENT, DAYS)
    outcomes = Outcome.objects.filter(occurred_at__gte=start, occurred_at__lt=end)
    personal = outcomes.filter(personalization_applied=True, strategy__key="balanced")
    baseline = outcomes.filter(personalization_applied=False)

    def mean(queryset, field):
        """The mean over learners of each learner's mean (learners without the field skipped)."""
        by_user: dict[int, list[float]] = {}
        for user_id, value in queryset.values_list("user_id", field):
            if value is not None:
                by_user.setdefault(user_id, []).append(value)
        return float(np.mean([np.mean(values) for values in by_user.values()]))

    row = Effectiveness.objects.get(scope="GLOBAL", strategy__key="balanced", window_start=start)
    improvement = {
        field: (mean(personal, field) - mean(baseline, field)) / mean(baseline, field) * 100
        for field in ("retention_score", "engagement_score")
    }
    assert row.mean_personalized == pytest.approx(mean(personal, "reward"))
    assert row.retention_improvement == pytest.approx(improvement["retention_score"])
    assert row.engagement_change == pytest.approx(improvement["engagement_score"])
    composite = (
        50
        + 50
        * (0.3 * improvement["retention_score"] + 0.2 * improvement["engagement_score"])
        / 0.5
        / 100
    )
    assert row.composite_score == pytest.approx(min(100.0, max(0.0, composite)))


def test_window_run__leaves_the_watermark__the_hourly_run_still_sees_other_windows(learners):
    """A run restricted to some windows once moved the watermark, and the next hourly run
    silently skipped the other windows' new outcomes (n_baseline 3 instead of 4)."""
    rng = np.random.default_rng(21)
    for n, user in enumerate(learners):
        _outcomes(user, rng, count=20, windows=[PREVIOUS, CURRENT], prefix=f"old{n}-")
    effectiveness_windows_compute()
    _outcomes(learners[0], rng, count=10, windows=[PREVIOUS], prefix="late-previous-")
    _outcomes(learners[1], rng, count=10, windows=[CURRENT], prefix="late-current-")
    assert effectiveness_windows_compute(windows={CURRENT})["windows"] == 1

    assert effectiveness_windows_compute()["windows"] == 2
    hourly = _rows()
    effectiveness_windows_compute(windows={PREVIOUS, CURRENT})
    for key, row in _rows().items():
        for field in COMPARED:
            expected = row[field]
            if isinstance(expected, float):
                assert hourly[key][field] == pytest.approx(expected, rel=1e-9), (key, field)
            else:
                assert hourly[key][field] == expected, (key, field)
