"""Column-wise reads and writes between the database and numpy (config.arrays, config.pgbinary)
and the key matching of the effectiveness computation; on SQLite and on PostgreSQL."""

import datetime
import struct

import numpy as np
import pytest
from django.db.models import F
from django.utils import timezone

from config import pgbinary
from config.arrays import AnyOf, Codes, Labels, insert_arrays, query_arrays
from experiments.models import Strategy
from outcomes.grouping import combine, joint_codes, lookup, take
from outcomes.models import SCORE_FIELDS, Effectiveness
from outcomes.samples import learner_samples
from tests.personalization.factories import UserFactory

# --- pgbinary (pure) -------------------------------------------------------------------------


def test_copy_stream__one_row_byte_for_byte():
    moment = np.array(["2000-01-01T00:00:01"], dtype="datetime64[us]")
    stream = b"".join(
        pgbinary.copy_stream(
            [np.array([True]), np.array([7], dtype=np.int64), np.array([1.5]), moment]
        )
    )
    expected = (
        b"PGCOPY\n\xff\r\n\x00"
        + struct.pack(">ii", 0, 0)
        + struct.pack(">h", 4)
        + struct.pack(">i?", 1, True)
        + struct.pack(">iq", 8, 7)
        + struct.pack(">id", 8, 1.5)
        + struct.pack(">iq", 8, 1_000_000)  # µs after 2000-01-01
        + struct.pack(">h", -1)
    )
    assert stream == expected


def test_copy_stream__chunks_hold_every_row():
    values = np.arange(10, dtype=np.int64)
    chunks = list(pgbinary.copy_stream([values], rows_per_chunk=4))
    assert len(chunks) == 2 + 3  # header, 4 + 4 + 2 rows, trailer
    body = b"".join(chunks[1:-1])
    assert len(body) == 10 * (2 + 4 + 8)


def test_unpack__binary_forms():
    assert pgbinary.unpack(struct.pack(">dd", 0.25, -3.0), "float8").tolist() == [0.25, -3.0]
    assert pgbinary.unpack(struct.pack(">ii", 5, -1), "int4").tolist() == [5, -1]
    assert pgbinary.unpack(None, "int8").size == 0
    moment = pgbinary.unpack(struct.pack(">q", 86_400_000_000), "timestamptz")
    assert moment[0] == np.datetime64("2000-01-02T00:00:00", "us")


def test_kind_of__refuses_text():
    with pytest.raises(TypeError, match="no fixed-width binary type"):
        pgbinary.kind_of(np.array(["a"]))


# --- Key matching (pure) ---------------------------------------------------------------------


def test_joint_codes__equal_exactly_when_keys_are_equal_and_ordered_like_tuples():
    left = [np.array([1, 1, 2, 5]), np.array([-3, 4, -3, 0])]
    right = [np.array([2, 1, 9]), np.array([-3, 4, 4])]
    a, b = joint_codes(left, right)
    assert a[2] == b[0]
    assert a[1] == b[1]
    assert b[2] not in set(a.tolist())
    pairs = list(zip(*left, strict=True))
    assert np.argsort(a).tolist() == sorted(range(4), key=lambda i: pairs[i])


def test_joint_codes__too_wide_keys_refused():
    huge = np.array([0, 2**40])
    with pytest.raises(OverflowError):
        joint_codes([huge, huge])


def _measures(*groups: list[float]) -> np.ndarray:
    """Measure rows as the GROUP BY gives them: n, Σ, Σ(x − x̄)², then Σ and n per score
    (every value reported as the first score)."""
    rows = []
    for values in groups:
        x = np.asarray(values, dtype=float)
        scores = [x.sum(), x.size] + [0.0, 0.0] * (len(SCORE_FIELDS) - 1)
        rows.append([x.size, x.sum(), ((x - x.mean()) ** 2).sum(), *scores])
    return np.array(rows)


def test_combine__chan_merge_equals_the_pooled_values_and_take():
    groups = [[1.0, 2.0], [5.0], [1e9 + 1, 1e9 + 2, 1e9 + 4], [3.0, 9.0]]
    codes = np.array([3, 1, 3, 7])
    keys, first, merged = combine(codes, _measures(*groups))
    assert keys.tolist() == [1, 3, 7]
    assert codes[first].tolist() == [1, 3, 7]
    pooled = np.array(groups[0] + groups[2])
    assert merged[1, 0] == 5
    assert merged[1, 1] == pytest.approx(pooled.sum())
    assert merged[1, 2] == pytest.approx(((pooled - pooled.mean()) ** 2).sum(), rel=1e-9)
    assert take(keys, merged, np.array([7, 2, 1]))[:, 0].tolist() == [2.0, 0.0, 1.0]
    _, found = lookup(np.array([], dtype=np.int64), np.array([1]))
    assert found.tolist() == [False]


def test_learner_samples__each_learner_one_value():
    # sample 1: learners with 2 outcomes (mean 1.5) and 1 outcome (mean 5); sample 2: one
    # learner with 3 outcomes far from zero
    keys, _, samples = learner_samples(
        np.array([1, 2, 1]), _measures([1.0, 2.0], [1e9 + 1, 1e9 + 2, 1e9 + 6], [5.0])
    )
    assert keys.tolist() == [1, 2]
    assert samples.reward.n.tolist() == [2.0, 1.0]
    assert samples.outcomes.tolist() == [3.0, 3.0]
    assert samples.reward.mean[0] == pytest.approx(3.25)
    assert samples.reward.variance[0] == pytest.approx(np.var([1.5, 5.0], ddof=1))
    assert np.isnan(samples.reward.variance[1])  # one learner: no variance
    assert samples.means[SCORE_FIELDS[0]][1] == pytest.approx(1e9 + 3)


# --- Database round trips (SQLite by default, PostgreSQL in CI) -------------------------------


@pytest.fixture
def strategies(strategy_catalog):
    return list(Strategy.objects.filter(context="MISSION").order_by("id")[:2])


def _columns(strategies, users, *, difference):
    start = np.datetime64("2026-01-05T00:00:00", "us")
    return {
        "scope": "USER",
        "context": Labels(np.array([0, 3]), ["MISSION", "CONTENT", "ASSESSMENT", "SESSION"]),
        "strategy": np.array([s.pk for s in strategies], dtype=np.int64),
        "user": np.array([u.pk for u in users], dtype=np.int64),
        "config": np.array([0, 0], dtype=np.int64),  # 0: NULL
        "window_start": np.array([start, start]),
        "window_end": np.array([start, start]) + np.timedelta64(14, "D"),
        "n_personalized": np.array([3, 0]),
        "n_baseline": np.array([2, 1]),
        "sample_size": np.array([5, 1]),
        "difference": np.array(difference),  # NaN: NULL
        "is_statistically_significant": np.array([True, False]),
        "calculated_at": timezone.now(),
    }


def test_insert_arrays__values_nulls_labels_and_times(strategies):
    users = UserFactory.create_batch(2)
    assert insert_arrays(Effectiveness, _columns(strategies, users, difference=[0.25, np.nan])) == 2
    first, second = Effectiveness.objects.order_by("user_id")
    assert (first.context, second.context) == ("MISSION", "SESSION")
    assert (first.difference, second.difference) == (0.25, None)
    assert first.config_id is None
    assert first.window_start == datetime.datetime(2026, 1, 5, tzinfo=datetime.UTC)
    assert first.window_end == datetime.datetime(2026, 1, 19, tzinfo=datetime.UTC)
    assert first.is_statistically_significant is True
    assert (first.n_personalized, second.n_baseline) == (3, 1)


def test_insert_arrays__replace_updates_by_the_unique_constraint_and_keeps_created_at(strategies):
    users = UserFactory.create_batch(2)
    insert_arrays(Effectiveness, _columns(strategies, users, difference=[0.25, 0.5]))
    created = dict(Effectiveness.objects.values_list("user_id", "created_at"))
    again = _columns(strategies, users, difference=[0.75, np.nan]) | {
        "created_at": timezone.now() + datetime.timedelta(days=1)
    }
    insert_arrays(Effectiveness, again, replace="outcomes_effectiveness_user_window_unique")
    assert Effectiveness.objects.count() == 2
    rows = {row.user_id: row for row in Effectiveness.objects.all()}
    assert rows[users[0].pk].difference == 0.75
    assert rows[users[1].pk].difference is None
    assert {pk: row.created_at for pk, row in rows.items()} == created


def test_insert_arrays__unknown_constraint_named():
    with pytest.raises(ValueError, match="no unique constraint named 'nope'"):
        insert_arrays(Effectiveness, {"n_baseline": np.array([1])}, replace="nope")


def test_query_arrays__reads_back_with_nulls_as_nan_and_codes(strategies):
    users = UserFactory.create_batch(2)
    insert_arrays(Effectiveness, _columns(strategies, users, difference=[0.25, np.nan]))
    columns = query_arrays(
        Effectiveness.objects.order_by("user_id").annotate(
            k_user=F("user_id"), k_difference=F("difference"), k_config=F("config_id")
        ),
        {
            "k_user": "int8",
            "k_difference": "float8",
            "k_config": "int8",
            "context": Codes(["SESSION", "MISSION"]),
            "window_start": "timestamptz",
            "is_statistically_significant": "bool",
        },
    )
    order = np.argsort(columns["k_user"])
    assert columns["k_user"][order].tolist() == sorted(u.pk for u in users)
    assert np.isnan(columns["k_difference"][order][1])
    assert columns["k_difference"][order][0] == 0.25
    assert columns["k_config"].tolist() == [0, 0]
    assert columns["context"][order].tolist() == [1, 0]
    assert (columns["window_start"] == np.datetime64("2026-01-05T00:00:00", "us")).all()
    assert columns["is_statistically_significant"][order].tolist() == [True, False]


def test_query_arrays__no_rows_gives_empty_arrays(db):
    columns = query_arrays(Effectiveness.objects.annotate(k_user=F("user_id")), {"k_user": "int8"})
    assert columns["k_user"].size == 0


def test_any_of__matches_like_in(strategies):
    users = UserFactory.create_batch(3)
    wanted = [users[0].pk, users[2].pk, 10**12]
    found = type(users[0]).objects.filter(AnyOf(F("id"), wanted))
    assert sorted(found.values_list("id", flat=True)) == sorted(wanted[:2])
    assert not type(users[0]).objects.filter(AnyOf(F("id"), [])).exists()


@pytest.mark.django_db(transaction=True)
def test_insert_arrays__outside_a_transaction(strategy_catalog):
    strategies = list(Strategy.objects.filter(context="MISSION").order_by("id")[:2])
    users = UserFactory.create_batch(2)
    assert insert_arrays(Effectiveness, _columns(strategies, users, difference=[0.1, 0.2])) == 2
    assert Effectiveness.objects.count() == 2
