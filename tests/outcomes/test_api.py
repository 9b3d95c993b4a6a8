import datetime
import json
import threading

import pytest
from django.db import connection, connections
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from experiments.models import Decision
from experiments.services.decisions import decision_make
from outcomes.models import Outcome
from tests.conftest import assert_error_shape

URL = "/api/v1/outcomes/"


def item(event_id, **fields):
    base = {
        "event_id": event_id,
        "context": "MISSION",
        "outcome_type": "MISSION_COMPLETED",
        "retention_score": 0.8,
        "completion_rate": 0.5,
    }
    base.update(fields)
    return base


# --- One object and lists -------------------------------------------------------------------


def test_one__201_new_200_existing(user_client, user):
    first = user_client.post(URL, item("e1"), format="json")
    assert first.status_code == 201, first.content
    # reward = (0.3·0.8 + 0.2·0.5) / 0.5 = 0.68
    assert first.json()["reward"] == pytest.approx(0.68)
    again = user_client.post(URL, item("e1"), format="json")
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert Outcome.objects.count() == 1


def test_list__201_created_and_duplicates(user_client, user):
    user_client.post(URL, [item("a"), item("b")], format="json")
    response = user_client.post(URL, [item("b"), item("c"), item("c")], format="json")
    assert response.status_code == 201
    assert response.json()["created"] == 1
    assert response.json()["duplicates"] == 2
    assert sorted(Outcome.objects.values_list("event_id", flat=True)) == ["a", "b", "c"]


def test_list__1000_accepted_1001_413(user_client):
    assert (
        user_client.post(URL, [item(f"e{i}") for i in range(1000)], format="json").status_code
        == 201
    )
    response = user_client.post(URL, [item(f"x{i}") for i in range(1001)], format="json")
    assert_error_shape(response, 413)
    assert Outcome.objects.count() == 1000


def test_repeat_with_different_payload__422_nothing_changed(user_client, user):
    user_client.post(URL, item("e1", retention_score=0.8), format="json")
    response = user_client.post(URL, [item("new"), item("e1", retention_score=0.1)], format="json")
    body = assert_error_shape(response, 422)
    assert "e1" in body["errors"][0]["detail"]
    assert body["errors"][0]["code"] == "event_id_reused"
    assert body["errors"][0]["attr"] == "1.event_id"  # the item of the list that repeats
    assert list(Outcome.objects.values_list("event_id", "retention_score")) == [("e1", 0.8)]
    single = user_client.post(URL, item("e1", retention_score=0.2), format="json")
    assert assert_error_shape(single, 422)["errors"][0]["attr"] == "event_id"


def test_same_event_twice_in_one_list_with_different_payloads__422(user_client):
    response = user_client.post(URL, [item("e1"), item("e1", retention_score=0.1)], format="json")
    assert assert_error_shape(response, 422)["errors"][0]["attr"] == "1.event_id"
    assert not Outcome.objects.exists()


# --- Validation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "attr"),
    [
        ({"retention_score": 1.2}, "retention_score"),
        ({"engagement_score": -0.1}, "engagement_score"),
        ({"outcome_type": "MISSION_FAILED"}, "outcome_type"),
        ({"occurred_at": "2999-01-01T00:00:00Z"}, "occurred_at"),
        ({"event_id": "x" * 65}, "event_id"),
        ({"event_id": ""}, "event_id"),
        ({"context": "LIBRARY"}, "context"),
        ({"difficulty_level": 6}, "difficulty_level"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_validation__400_names_field(user_client, change, attr):
    assert_error_shape(
        user_client.post(URL, {**item("e1"), **change}, format="json"), 400, attr=attr
    )
    assert not Outcome.objects.exists()


def test_validation__no_score__400(user_client):
    payload = item("e1", retention_score=None, completion_rate=None)
    body = assert_error_shape(user_client.post(URL, payload, format="json"), 400)
    assert "at least one score" in body["errors"][0]["detail"]


def test_validation__occurred_at_four_minutes_ahead_accepted(user_client):
    soon = (timezone.now() + datetime.timedelta(minutes=4)).isoformat()
    assert user_client.post(URL, item("e1", occurred_at=soon), format="json").status_code == 201


def test_validation__bad_item_rejects_list_and_names_index(user_client):
    payload = [item("a"), item("b"), item("c", retention_score=2)]
    assert_error_shape(user_client.post(URL, payload, format="json"), 400, attr="2.retention_score")
    assert not Outcome.objects.exists()


# --- Attribution ----------------------------------------------------------------------------


def test_attribution__copied_from_the_decision(user_client, user, strategy_catalog):
    decision = decision_make(user=user, context="SESSION").decision
    payload = item("e1", decision=decision.pk, outcome_type="SESSION_COMPLETED")
    del payload["context"]  # taken from the decision
    response = user_client.post(URL, payload, format="json")
    assert response.status_code == 201, response.content
    outcome = Outcome.objects.get()
    assert outcome.context == "SESSION"
    assert outcome.strategy_id == decision.strategy_id
    assert outcome.config_id == decision.config_id
    assert outcome.personalization_applied == decision.personalization_applied
    assert outcome.strategy_variant == Decision.objects.get(pk=decision.pk).strategy.key


def test_attribution__another_users_decision__400(user_client, other_user, strategy_catalog):
    decision = decision_make(user=other_user, context="SESSION").decision
    assert_error_shape(
        user_client.post(URL, item("e1", decision=decision.pk), format="json"), 400, attr="decision"
    )
    payload = [item("ok"), item("e2", decision=decision.pk)]
    assert_error_shape(user_client.post(URL, payload, format="json"), 400, attr="1.decision")
    assert not Outcome.objects.exists()


def test_attribution__explicit_strategy(user_client, user, strategy_catalog):
    response = user_client.post(URL, item("e1", strategy="balanced"), format="json")
    assert response.status_code == 201
    outcome = Outcome.objects.get()
    assert outcome.strategy.key == "balanced"
    assert outcome.personalization_applied is True


# --- Visibility -----------------------------------------------------------------------------


def test_list__own_only_other_404(user_client, other_client, user):
    created = user_client.post(URL, item("e1"), format="json").json()
    assert other_client.get(URL).json()["count"] == 0
    assert_error_shape(other_client.get(f"{URL}{created['id']}/"), 404)
    assert user_client.get(URL, {"context": "MISSION"}).json()["count"] == 1


def test_effectiveness__global_for_all_user_rows_own(
    user_client, other_client, user, other_user, strategy_catalog
):
    from outcomes.models import Effectiveness
    from outcomes.windows import window_bounds

    strategy = strategy_catalog[("MISSION", "balanced")]
    start, end = window_bounds(40, 14)
    common = {
        "context": "MISSION",
        "strategy": strategy,
        "window_start": start,
        "window_end": end,
        "n_personalized": 1,
        "n_baseline": 1,
        "sample_size": 2,
        "calculated_at": timezone.now(),
    }
    Effectiveness.objects.create(scope="GLOBAL", **common)
    Effectiveness.objects.create(scope="USER", user=user, **common)
    assert user_client.get("/api/v1/effectiveness/").json()["count"] == 2
    assert other_client.get("/api/v1/effectiveness/").json()["count"] == 1
    assert user_client.get("/api/v1/effectiveness/", {"scope": "USER"}).json()["count"] == 1
    assert user_client.get("/api/v1/effectiveness/", {"significant": "true"}).json()["count"] == 0


# --- Concurrency (PostgreSQL) ---------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_concurrent_overlapping_batches__each_event_stored_once(user):
    if connection.vendor != "postgresql":
        pytest.skip("concurrent inserts are exercised on PostgreSQL")
    token = Token.objects.create(user=user).key
    batches = [[item(f"e{(t * 37 + i) % 150}") for i in range(100)] for t in range(8)]
    distinct = {entry["event_id"] for batch in batches for entry in batch}
    barrier = threading.Barrier(8)
    statuses: list[int] = []
    created: list[int] = []

    def post(batch):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        try:
            barrier.wait(timeout=10)
            response = client.post(URL, json.dumps(batch), content_type="application/json")
            statuses.append(response.status_code)
            created.append(response.json().get("created", 0))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=post, args=(batch,)) for batch in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert statuses == [201] * 8
    assert Outcome.objects.filter(user=user).count() == len(distinct)
    assert sum(created) == len(distinct)


# --- The compiled fast path and the serializer agree ---------------------------------------


@pytest.mark.parametrize(
    ("canonical", "lenient"),
    [
        # Numbers as strings, an integer as a float, a boolean as a string and a padded id
        # are what only the serializer reads; both spellings are one payload.
        ({"retention_score": 0.8}, {"retention_score": "0.8"}),
        ({"difficulty_level": 3}, {"difficulty_level": 3.0}),
        ({"personalization_applied": False}, {"personalization_applied": "false"}),
        ({"event_id": "e1"}, {"event_id": "  e1 "}),
        ({"retention_score": 0.1234567891}, {"retention_score": "0.1234567891"}),
        (
            {"occurred_at": "2026-03-01T12:30:00+02:00"},
            {"occurred_at": "2026-03-01 10:30:00Z"},
        ),
    ],
)
def test_spellings__canonical_and_lenient__one_payload(user_client, canonical, lenient):
    first = user_client.post(URL, [{**item("e1"), **canonical}], format="json")
    assert first.status_code == 201, first.content
    again = user_client.post(URL, [{**item("e1"), **lenient}], format="json")
    assert again.status_code == 201, again.content  # a duplicate, not a reuse (422)
    assert again.json()["duplicates"] == 1
    assert Outcome.objects.count() == 1


def test_scores__rounded_to_nine_places_on_both_paths(user_client):
    user_client.post(URL, [item("a", retention_score=0.1234567891)], format="json")
    user_client.post(URL, [item("b", retention_score="0.1234567891")], format="json")
    stored = dict(Outcome.objects.values_list("event_id", "retention_score"))
    assert stored == {"a": 0.123456789, "b": 0.123456789}


@pytest.mark.parametrize(
    ("change", "attr"),
    [
        ({"occurred_at": "2026-02-30T10:00:00Z"}, "1.occurred_at"),
        ({"occurred_at": "2026-01-01T10:00:00+15:00"}, "1.occurred_at"),
        ({"event_id": "a\u0000b"}, None),  # the parser refuses NUL characters
        ({"decision": 0}, "1.decision"),
        ({"strategy": "no spaces"}, "1.strategy"),
        ({"content_type": "PODCAST"}, "1.content_type"),
        ({"session_duration_minutes": 1441}, "1.session_duration_minutes"),
    ],
)
def test_validation__list_item__400_names_index_and_field(user_client, change, attr):
    payload = [item("ok"), {**item("bad"), **change}]
    assert_error_shape(user_client.post(URL, payload, format="json"), 400, attr=attr)
    assert not Outcome.objects.exists()


def test_occurred_at__offset_kept_as_the_same_moment(user_client):
    moment = "2026-03-01T12:30:00.250000+02:00"
    assert user_client.post(URL, [item("e1", occurred_at=moment)], format="json").status_code == 201
    stored = Outcome.objects.get().occurred_at
    assert stored == datetime.datetime(2026, 3, 1, 10, 30, 0, 250000, tzinfo=datetime.UTC)


def test_event_ids__quotes_backslashes_braces_and_null__stored_as_sent(user_client):
    ids = ['q"uote', "back\\slash", "{brace},", "NULL", "", "ünï cødé", 'tail\\"']
    ids[4] = "sp ace"
    response = user_client.post(URL, [item(e) for e in ids], format="json")
    assert response.status_code == 201, response.content
    assert response.json()["created"] == len(ids)
    assert sorted(Outcome.objects.values_list("event_id", flat=True)) == sorted(ids)
    again = user_client.post(URL, [item(e) for e in ids], format="json")
    assert again.json()["duplicates"] == len(ids)


def test_list__empty__201_nothing(user_client):
    response = user_client.post(URL, [], format="json")
    assert response.status_code == 201
    assert response.json() == {"created": 0, "duplicates": 0, "ids": []}


def test_list__1000__queries_do_not_grow_with_the_batch(user_client, django_assert_max_num_queries):
    # Token, the insert, and the transaction's savepoints: none per item.
    with django_assert_max_num_queries(8):
        response = user_client.post(URL, [item(f"e{i}") for i in range(1000)], format="json")
    assert response.status_code == 201
