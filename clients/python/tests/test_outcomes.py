"""Outcome batching: generated idempotency keys, flushes, duplicates (DESIGN.md §3, §7)."""

import datetime
import uuid
from collections.abc import Callable

import pytest
from faulty_proxy import FaultyProxy

from attune_client import Attune, AttuneError, Learner, OutcomeFields

CountOutcomes = Callable[[Learner], int]
MakeClient = Callable[..., Attune]


def engaged(score: float = 0.5) -> OutcomeFields:
    return {"context": "CONTENT", "outcome_type": "CONTENT_ENGAGED", "engagement_score": score}


def test_track__no_event_id__a_generated_uuid4_each(client: Attune, learner: Learner) -> None:
    for_learner = client.for_learner(id=learner["id"])

    event_ids = [for_learner.track(**engaged()) for _ in range(5)]

    assert len(set(event_ids)) == 5
    assert all(uuid.UUID(event_id).version == 4 for event_id in event_ids)
    assert for_learner.pending() == 5


def test_flush__generated_event_ids__each_outcome_stored(
    client: Attune, learner: Learner, count_outcomes: CountOutcomes
) -> None:
    for_learner = client.for_learner(id=learner["id"])
    decision = for_learner.decide("CONTENT")
    event_ids = [
        for_learner.track(decision=decision, outcome_type="CONTENT_ENGAGED", engagement_score=s)
        for s in (0.2, 0.4, 0.6, 0.8)
    ]

    result = for_learner.flush()

    assert (result.created, result.duplicates) == (4, 0)
    assert [outcome["event_id"] for outcome in result.outcomes] == event_ids
    assert len(set(result.ids)) == 4
    assert for_learner.pending() == 0
    assert count_outcomes(learner) == 4


def test_flush__same_batch_sent_again__duplicates_not_new_rows(
    client: Attune, learner: Learner, count_outcomes: CountOutcomes
) -> None:
    for_learner = client.for_learner(id=learner["id"])
    for score in (0.1, 0.5, 0.9):
        for_learner.track(**engaged(score))
    first = for_learner.flush()

    again = for_learner.record_outcomes(first.outcomes)

    assert (first.created, first.duplicates) == (3, 0)
    assert (again.created, again.duplicates) == (0, 3)
    assert again.ids == first.ids
    assert count_outcomes(learner) == 3


def test_flush__nothing_queued__nothing_sent(make_client: MakeClient, proxy: FaultyProxy) -> None:
    result = make_client(proxy.url).flush()

    assert (result.created, result.duplicates, result.outcomes) == (0, 0, [])
    assert proxy.requests == []


def test_track__flush_at_reached__queue_sent_by_itself(
    make_client: MakeClient, learner: Learner, count_outcomes: CountOutcomes
) -> None:
    for_learner = make_client(flush_at=3).for_learner(id=learner["id"])
    for _ in range(3):
        for_learner.track(**engaged())
    assert for_learner.pending() == 0
    assert count_outcomes(learner) == 3

    for_learner.track(**engaged())
    assert for_learner.pending() == 1


def test_client_context_manager__exit__queued_outcomes_flushed(
    attune_url: str, attune_token: str, learner: Learner, count_outcomes: CountOutcomes
) -> None:
    with Attune(attune_url, attune_token) as attune:
        for_learner = attune.for_learner(id=learner["id"])
        for_learner.track(**engaged())
        for_learner.track(**engaged())
        assert count_outcomes(learner) == 0

    assert count_outcomes(learner) == 2


def test_learner_context_manager__exit__its_outcomes_flushed(
    client: Attune, learner: Learner, count_outcomes: CountOutcomes
) -> None:
    with client.for_learner(id=learner["id"]) as for_learner:
        for_learner.track(**engaged())

    assert client.pending() == 0
    assert count_outcomes(learner) == 1


def test_client_flush__several_learners__each_batch_sent_as_its_learner(
    client: Attune,
    learner: Learner,
    new_external_id: Callable[[], str],
    count_outcomes: CountOutcomes,
) -> None:
    other = client.create_learner(new_external_id())
    for _ in range(2):
        client.for_learner(id=learner["id"]).track(**engaged())
    assert other["external_id"] is not None
    client.for_learner(other["external_id"]).track(**engaged())

    result = client.flush()

    assert (result.created, result.duplicates) == (3, 0)
    assert (count_outcomes(learner), count_outcomes(other)) == (2, 1)


def test_record_outcomes__more_than_one_batch__split_in_requests_of_1000(
    make_client: MakeClient, learner: Learner, proxy: FaultyProxy, count_outcomes: CountOutcomes
) -> None:
    proxied = make_client(proxy.url).for_learner(id=learner["id"])

    result = proxied.record_outcomes([engaged() for _ in range(1001)])

    sizes = [len(seen.json()) for seen in proxy.seen("POST", "/api/v1/outcomes/")]
    assert sizes == [1000, 1]
    assert (result.created, result.duplicates) == (1001, 0)
    assert count_outcomes(learner) == 1001


def test_flush__batch_refused__error_holds_the_outcomes_and_queue_is_empty(
    client: Attune, learner: Learner, count_outcomes: CountOutcomes
) -> None:
    for_learner = client.for_learner(id=learner["id"])
    for_learner.track(**engaged())
    refused = engaged()
    refused["content_type"] = "NOT_A_CONTENT_TYPE"
    for_learner.track(**refused)

    with pytest.raises(AttuneError) as raised:
        for_learner.flush()

    error = raised.value
    assert error.status == 400
    assert error.type == "validation_error"
    assert error.attr == "1.content_type"
    assert len(error.outcomes) == 2
    assert for_learner.pending() == 0
    assert count_outcomes(learner) == 0


def test_flush__event_id_reused_with_another_payload__422_nothing_stored(
    client: Attune, learner: Learner, count_outcomes: CountOutcomes
) -> None:
    for_learner = client.for_learner(id=learner["id"])
    first, second = engaged(0.3), engaged(0.7)
    first["event_id"] = second["event_id"] = f"reused-{uuid.uuid4().hex}"
    for_learner.track(**first)
    for_learner.flush()
    for_learner.track(**second)

    with pytest.raises(AttuneError) as raised:
        for_learner.flush()

    assert raised.value.status == 422
    assert raised.value.code == "event_id_reused"
    assert raised.value.attr == "0.event_id"
    assert count_outcomes(learner) == 1


def test_track__event_id_and_time_given__sent_as_given(client: Attune, learner: Learner) -> None:
    for_learner = client.for_learner(id=learner["id"])
    occurred_at = datetime.datetime(2025, 3, 1, 12, 0, tzinfo=datetime.UTC)

    event_id = for_learner.track(
        event_id="lesson-42-done",
        occurred_at=occurred_at,
        context="MISSION",
        outcome_type="MISSION_COMPLETED",
        completion_rate=1.0,
    )
    result = for_learner.flush()

    stored = for_learner.request("GET", "outcomes/")["results"]
    assert event_id == "lesson-42-done"
    assert result.outcomes[0]["occurred_at"] == "2025-03-01T12:00:00+00:00"
    assert [(row["event_id"], row["occurred_at"]) for row in stored] == [
        ("lesson-42-done", "2025-03-01T12:00:00Z")
    ]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"context": "CONTENT", "engagement_score": 0.5}, "outcome_type"),
        ({"context": "CONTENT", "outcome_type": "CONTENT_ENGAGED"}, "score"),
        ({"outcome_type": "CONTENT_ENGAGED", "engagement_score": 0.5}, "context"),
        (
            {**engaged(), "occurred_at": datetime.datetime(2025, 1, 1)},  # noqa: DTZ001
            "aware",
        ),
        ({**engaged(), "event_id": "x" * 65}, "64"),
    ],
)
def test_track__outcome_the_server_would_refuse__value_error_nothing_queued(
    client: Attune, fields: OutcomeFields, message: str
) -> None:
    for_learner = client.for_learner("anyone")

    with pytest.raises(ValueError, match=message):
        for_learner.track(**fields)

    assert client.pending() == 0
