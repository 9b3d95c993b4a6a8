"""AsyncAttune: the same calls, awaited."""

import asyncio
from collections.abc import Callable

import pytest
from faulty_proxy import Answer, FaultyProxy, error_body

from attune_client import AsyncAttune, AttuneError, Learner, RetryEvent


def test_async_decide_and_flush__learner__decided_and_stored_once(
    attune_url: str,
    attune_token: str,
    learner: Learner,
    count_outcomes: Callable[[Learner], int],
) -> None:
    async def scenario() -> tuple[str, int, int, int, int]:
        async with AsyncAttune(attune_url, attune_token) as attune:
            for_learner = attune.for_learner(id=learner["id"])
            decision = await for_learner.decide("CONTENT")
            for score in (0.4, 0.8):
                await for_learner.track(
                    decision=decision, outcome_type="CONTENT_ENGAGED", engagement_score=score
                )
            first = await for_learner.flush()
            again = await for_learner.record_outcomes(first.outcomes)
            return (
                decision["context"],
                first.created,
                first.duplicates,
                again.created,
                again.duplicates,
            )

    assert asyncio.run(scenario()) == ("CONTENT", 2, 0, 0, 2)
    assert count_outcomes(learner) == 2


def test_async_context_manager__exit__queued_outcomes_flushed(
    attune_url: str,
    attune_token: str,
    learner: Learner,
    count_outcomes: Callable[[Learner], int],
) -> None:
    async def scenario() -> None:
        async with AsyncAttune(attune_url, attune_token) as attune:
            await attune.for_learner(id=learner["id"]).track(
                context="SESSION", outcome_type="SESSION_COMPLETED", completion_rate=0.9
            )

    asyncio.run(scenario())

    assert count_outcomes(learner) == 1


def test_async_decide__503_then_forwarded__retried(
    attune_token: str, proxy: FaultyProxy, learner: Learner
) -> None:
    retries: list[RetryEvent] = []
    proxy.script(Answer(503, error_body(503, "unavailable", "Down for a moment.")))

    async def scenario() -> str:
        async with AsyncAttune(
            proxy.url, attune_token, backoff=0.01, on_retry=retries.append
        ) as attune:
            decision = await attune.for_learner(id=learner["id"]).decide("SESSION")
            return decision["context"]

    assert asyncio.run(scenario()) == "SESSION"
    assert [event.status for event in retries] == [503]
    assert len(proxy.seen("POST", "/api/v1/decisions/")) == 2


def test_async_decide__unknown_learner__404_not_retried(
    attune_token: str, proxy: FaultyProxy, new_external_id: Callable[[], str]
) -> None:
    async def scenario() -> None:
        async with AsyncAttune(proxy.url, attune_token) as attune:
            await attune.for_learner(new_external_id()).decide("CONTENT")

    with pytest.raises(AttuneError) as raised:
        asyncio.run(scenario())

    assert (raised.value.status, raised.value.code, raised.value.attempts) == (404, "not_found", 1)
    assert len(proxy.seen("POST", "/api/v1/decisions/")) == 1
