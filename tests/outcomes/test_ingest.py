"""The ingest's pure parts: the payload fingerprint stays what stored outcomes carry, and the
batch reward is stats.reward's float for float."""

import datetime

import numpy as np

from outcomes import stats
from outcomes.models import SCORE_FIELDS
from outcomes.services.ingest import payload_hash, rewards

WEIGHTS = {
    "retention_score": 0.3,
    "performance_score": 0.3,
    "completion_rate": 0.2,
    "engagement_score": 0.2,
}


def test_payload_hash__unchanged_for_stored_outcomes():
    # Values computed by the first implementation (json.dumps(sort_keys=True) of the sorted
    # reported fields): a retry of an outcome stored before must still match.
    plus_two = datetime.timezone(datetime.timedelta(hours=2))
    moment = datetime.datetime(2026, 3, 1, 12, 30, tzinfo=plus_two)
    first = {
        "event_id": "e1",
        "context": "MISSION",
        "outcome_type": "MISSION_COMPLETED",
        "retention_score": 0.8,
        "completion_rate": 0.5,
        "occurred_at": moment,
        "personalization_applied": None,
        "strategy": "balanced",
        "difficulty_level": 3,
        "content_type": "",
        "decision": None,
    }
    second = {
        "event_id": 'é"x',
        "context": "MISSION",
        "outcome_type": "MISSION_COMPLETED",
        "engagement_score": 1.0,
        "session_duration_minutes": 12.5,
        "personalization_applied": True,
    }
    assert payload_hash(first) == (
        "094f6ab5ece9b59368f5df69149856cb64783c471f14e405e5f1f185754aecd7"
    )
    assert payload_hash(second) == (
        "b4fda40e27b2721775a66a7a8e803b26a413d68ef0d1be94ab3d812c89067ca0"
    )


def test_payload_hash__none_and_unreported_fields_ignored():
    base = {"event_id": "e1", "outcome_type": "MISSION_COMPLETED", "retention_score": 0.5}
    assert payload_hash(base) == payload_hash({**base, "decision": None, "user": 7})


def test_rewards__the_same_floats_as_stats_reward():
    rng = np.random.default_rng(5)
    count = 2000
    columns = {}
    for name in SCORE_FIELDS:
        places = rng.integers(1, 12, count).tolist()
        values = [round(v, p) for v, p in zip(rng.random(count).tolist(), places, strict=True)]
        missing = rng.random(count) < 0.5
        columns[name] = [None if m else v for v, m in zip(values, missing, strict=True)]
    columns["retention_score"] = [
        0.25 if all(columns[n][i] is None for n in SCORE_FIELDS) else v
        for i, v in enumerate(columns["retention_score"])
    ]
    expected = [
        stats.reward({name: columns[name][i] for name in SCORE_FIELDS}, WEIGHTS)
        for i in range(count)
    ]
    assert rewards(columns, WEIGHTS) == expected  # exact, not approximate
