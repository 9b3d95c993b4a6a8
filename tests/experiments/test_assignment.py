"""The assignment hash, pinned to fixed vectors (DESIGN.md §4 step 2)."""

import hashlib

import numpy as np
import pytest

from experiments.assignment import bucket, index_by_bucket, is_eligible, normalized

# bucket("s1", i) = int(sha256("s1:i").hexdigest()[:15], 16) / 16**15
PINNED = {
    1: 0xEA4CB38773DBEB6 / 16**15,  # 0.9152328687376748
    2: 0x31A342AF068784A / 16**15,  # 0.19389740727504373
    3: 0xF7491FA3EBD1849 / 16**15,  # 0.9659595275114211
    4: 0x3F0A402D90A3FB5 / 16**15,  # 0.24625016319681942
    5: 0x918D42F565EF026 / 16**15,  # 0.5685617303005834
}


@pytest.mark.parametrize(("user_id", "expected"), PINNED.items())
def test_bucket__pinned_vectors(user_id, expected):
    assert bucket("s1", user_id) == expected


def test_bucket__pinned_decimals():
    assert bucket("s1", 1) == pytest.approx(0.9152328687376748, abs=1e-15)
    assert bucket("s1", 2) == pytest.approx(0.19389740727504373, abs=1e-15)


def test_bucket__matches_formula_for_other_salts():
    for salt, user_id in [("exp-7", 42), ("", 0), ("ünï", "ext-9")]:
        digest = hashlib.sha256(f"{salt}:{user_id}".encode()).hexdigest()
        assert bucket(salt, user_id) == int(digest[:15], 16) / 16**15


def test_bucket__50_50_split_of_100000_ids_within_one_percent():
    buckets = np.array([bucket("split-salt", user_id) for user_id in range(1, 100_001)])
    share = float((buckets < 0.5).mean())
    assert abs(share - 0.5) < 0.01
    assert buckets.min() >= 0.0
    assert buckets.max() < 1.0


def test_eligibility__traffic_percent():
    assert is_eligible("s1", 2, 20.0)  # 0.1939 < 0.20
    assert not is_eligible("s1", 4, 20.0)  # 0.2463 ≥ 0.20
    assert not is_eligible("s1", 2, 0.0)
    assert is_eligible("s1", 3, 100.0)


def test_index_by_bucket__first_cumulative_weight_above_u():
    weights = [1.0, 1.0, 2.0]  # cumulative 0.25, 0.5, 1.0
    assert index_by_bucket(weights, 0.0) == 0
    assert index_by_bucket(weights, 0.2499) == 0
    assert index_by_bucket(weights, 0.25) == 1
    assert index_by_bucket(weights, 0.74) == 2
    assert index_by_bucket(weights, 0.999999) == 2


def test_index_by_bucket__zero_weight_never_chosen():
    assert {index_by_bucket([0.0, 1.0], u) for u in np.linspace(0, 0.999, 50)} == {1}


@pytest.mark.parametrize("weights", [[], [-1.0, 2.0], [0.0, 0.0]])
def test_normalized__invalid_weights__refused(weights):
    with pytest.raises(ValueError, match="non-negative"):
        normalized(weights)
