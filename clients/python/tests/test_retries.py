"""Retries: 5xx, 429 with Retry-After and lost connections are retried, other 4xx are not;
outcome batches are re-sent with the same event ids (attune_client.retries).

The live tests put a local HTTP server (tests/faulty_proxy.py) between the client and Attune:
it answers as scripted the first times, then forwards to the server."""

import datetime
import socket
from collections.abc import Callable

import httpx
import pytest
from faulty_proxy import Answer, Drop, FaultyProxy, ForwardThenAnswer, error_body

from attune_client import (
    Attune,
    AttuneConnectionError,
    AttuneError,
    Learner,
    OutcomeFields,
    RetryEvent,
    RetryPolicy,
)
from attune_client.retries import retry_after_seconds

MakeClient = Callable[..., Attune]
CountOutcomes = Callable[[Learner], int]
DECISIONS = "/api/v1/decisions/"
OUTCOMES = "/api/v1/outcomes/"
NOW = datetime.datetime(2026, 1, 5, 12, 0, 0, tzinfo=datetime.UTC)


def engaged(score: float) -> OutcomeFields:
    return {"context": "CONTENT", "outcome_type": "CONTENT_ENGAGED", "engagement_score": score}


@pytest.fixture
def retries_seen() -> list[RetryEvent]:
    return []


@pytest.fixture
def proxied(make_client: MakeClient, proxy: FaultyProxy, retries_seen: list[RetryEvent]) -> Attune:
    """A client of the proxy that records every retry."""
    return make_client(proxy.url, on_retry=retries_seen.append)


# --- the policy, without a server ---------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("3", 3.0),
        (" 0 ", 0.0),
        ("Mon, 05 Jan 2026 12:00:30 GMT", 30.0),
        ("Mon, 05 Jan 2026 11:00:00 GMT", 0.0),  # in the past: at once
        ("soon", None),
        ("-1", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_seconds__header__seconds_from_now(
    header: str | None, seconds: float | None
) -> None:
    assert retry_after_seconds(header, now=NOW) == seconds


def test_backoff_delay__each_retry__within_half_and_whole_of_the_doubled_ceiling() -> None:
    policy = RetryPolicy(retries=8, backoff=0.5, max_backoff=4.0)

    for attempt, ceiling in enumerate([0.5, 1.0, 2.0, 4.0, 4.0, 4.0]):
        delays = [policy.backoff_delay(attempt) for _ in range(200)]
        assert all(ceiling / 2 <= delay <= ceiling for delay in delays), (attempt, delays)
        assert len(set(delays)) > 1, "no jitter"


@pytest.mark.parametrize("status", [400, 401, 403, 404, 405, 409, 413, 415, 422])
def test_delay_after_status__other_4xx__not_retried(status: int) -> None:
    assert RetryPolicy().delay_after_status(0, status, None) is None


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_delay_after_status__429_and_5xx__retried_until_retries_used_up(status: int) -> None:
    policy = RetryPolicy(retries=2, backoff=0.1)

    assert policy.delay_after_status(0, status, None) is not None
    assert policy.delay_after_status(1, status, 7.0) == 7.0
    assert policy.delay_after_status(2, status, None) is None


def test_delay_after_status__retry_after_beyond_the_maximum__not_waited_for() -> None:
    policy = RetryPolicy(max_retry_after=60)

    assert policy.delay_after_status(0, 429, 60.0) == 60.0
    assert policy.delay_after_status(0, 429, 61.0) is None


# --- against the live server through the faulty proxy -----------------------------------


def test_decide__503_twice__retried_then_decided(
    proxied: Attune, proxy: FaultyProxy, learner: Learner, retries_seen: list[RetryEvent]
) -> None:
    unavailable = error_body(503, "unavailable", "Down for a moment.")
    proxy.script(Answer(503, unavailable), Answer(503, unavailable))

    decision = proxied.for_learner(id=learner["id"]).decide("CONTENT")

    assert decision["context"] == "CONTENT"
    assert len(proxy.seen("POST", DECISIONS)) == 3
    assert [(event.retry, event.status) for event in retries_seen] == [(1, 503), (2, 503)]


def test_decide__429_with_retry_after__waits_as_told_then_decided(
    proxied: Attune, proxy: FaultyProxy, learner: Learner, retries_seen: list[RetryEvent]
) -> None:
    throttled = error_body(429, "throttled", "Request was throttled.")
    proxy.script(Answer(429, throttled, {"Retry-After": "1"}))

    decision = proxied.for_learner(id=learner["id"]).decide("MISSION")

    assert decision["context"] == "MISSION"
    assert len(proxy.seen("POST", DECISIONS)) == 2
    assert [(event.status, event.delay) for event in retries_seen] == [(429, 1.0)]


def test_decide__retry_after_beyond_max_retry_after__raised_at_once(
    make_client: MakeClient, proxy: FaultyProxy, learner: Learner
) -> None:
    throttled = error_body(429, "throttled", "Request was throttled.")
    proxy.script(Answer(429, throttled, {"Retry-After": "3600"}))
    proxied = make_client(proxy.url, max_retry_after=60)

    with pytest.raises(AttuneError) as raised:
        proxied.for_learner(id=learner["id"]).decide("MISSION")

    assert (raised.value.status, raised.value.code, raised.value.retry_after) == (
        429,
        "throttled",
        3600.0,
    )
    assert raised.value.attempts == 1
    assert len(proxy.seen("POST", DECISIONS)) == 1


def test_decide__400__not_retried(
    proxied: Attune, proxy: FaultyProxy, learner: Learner, retries_seen: list[RetryEvent]
) -> None:
    refusal = {
        "type": "validation_error",
        "errors": [{"code": "invalid_choice", "detail": "Not a context.", "attr": "context"}],
    }
    proxy.script(Answer(400, refusal))

    with pytest.raises(AttuneError) as raised:
        proxied.for_learner(id=learner["id"]).decide("CONTENT")

    assert (raised.value.status, raised.value.code, raised.value.attr) == (
        400,
        "invalid_choice",
        "context",
    )
    assert raised.value.attempts == 1
    assert len(proxy.seen("POST", DECISIONS)) == 1
    assert retries_seen == []


def test_decide__server_answers_404__not_retried(
    proxied: Attune, proxy: FaultyProxy, new_external_id: Callable[[], str]
) -> None:
    with pytest.raises(AttuneError) as raised:
        proxied.for_learner(new_external_id()).decide("CONTENT")

    assert (raised.value.status, raised.value.attempts) == (404, 1)
    assert len(proxy.seen("POST", DECISIONS)) == 1


def test_decide__connection_dropped__retried_then_decided(
    proxied: Attune, proxy: FaultyProxy, learner: Learner, retries_seen: list[RetryEvent]
) -> None:
    proxy.script(Drop())

    decision = proxied.for_learner(id=learner["id"]).decide("ASSESSMENT")

    assert decision["context"] == "ASSESSMENT"
    assert len(proxy.seen("POST", DECISIONS)) == 2
    assert [event.status for event in retries_seen] == [None]
    assert isinstance(retries_seen[0].error, httpx.TransportError)


def test_request__nothing_listening__connection_error_after_every_retry(
    make_client: MakeClient, retries_seen: list[RetryEvent]
) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    closed = make_client(f"http://127.0.0.1:{port}", retries=2, on_retry=retries_seen.append)

    with pytest.raises(AttuneConnectionError) as raised:
        closed.find_learner("anyone")

    assert (raised.value.status, raised.value.attempts) == (None, 3)
    assert isinstance(raised.value.__cause__, httpx.ConnectError)
    assert len(retries_seen) == 2


def test_flush__503_then_forwarded__same_event_ids_sent_again(
    proxied: Attune, proxy: FaultyProxy, learner: Learner, count_outcomes: CountOutcomes
) -> None:
    for_learner = proxied.for_learner(id=learner["id"])
    for score in (0.25, 0.5, 0.75):
        for_learner.track(**engaged(score))
    proxy.script(Answer(503, error_body(503, "unavailable", "Down for a moment.")))

    result = for_learner.flush()

    first, second = proxy.seen("POST", OUTCOMES)
    assert first.body == second.body
    assert (result.created, result.duplicates) == (3, 0)
    assert count_outcomes(learner) == 3


def test_flush__answer_lost_after_storing__retry_counts_duplicates_not_new_rows(
    proxied: Attune, proxy: FaultyProxy, learner: Learner, count_outcomes: CountOutcomes
) -> None:
    for_learner = proxied.for_learner(id=learner["id"])
    for score in (0.3, 0.6):
        for_learner.track(**engaged(score))
    proxy.script(ForwardThenAnswer(502))

    result = for_learner.flush()

    first, second = proxy.seen("POST", OUTCOMES)
    assert first.body == second.body
    assert (result.created, result.duplicates) == (0, 2)
    assert count_outcomes(learner) == 2


def test_flush__retries_used_up__outcomes_stay_queued_for_the_next_flush(
    make_client: MakeClient, proxy: FaultyProxy, learner: Learner, count_outcomes: CountOutcomes
) -> None:
    for_learner = make_client(proxy.url, retries=1).for_learner(id=learner["id"])
    event_ids = [for_learner.track(**engaged(score)) for score in (0.2, 0.4)]
    unavailable = error_body(503, "unavailable", "Down for a moment.")
    proxy.script(Answer(503, unavailable), Answer(503, unavailable))

    with pytest.raises(AttuneError) as raised:
        for_learner.flush()
    assert (raised.value.status, raised.value.attempts) == (503, 2)
    assert for_learner.pending() == 2

    result = for_learner.flush()

    assert [outcome["event_id"] for outcome in result.outcomes] == event_ids
    assert (result.created, result.duplicates) == (2, 0)
    assert len({seen.body for seen in proxy.seen("POST", OUTCOMES)}) == 1
    assert count_outcomes(learner) == 2


def test_create_learner__answer_lost_after_creating__retry_answers_the_learner(
    proxied: Attune, proxy: FaultyProxy, client: Attune, new_external_id: Callable[[], str]
) -> None:
    external_id = new_external_id()
    proxy.script(ForwardThenAnswer(502))

    created = proxied.create_learner(external_id)

    assert len(proxy.seen("POST", "/api/v1/users/")) == 2
    assert created["external_id"] == external_id
    assert client.find_learner(external_id) == created
