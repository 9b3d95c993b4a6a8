"""The asynchronous twin of attune_client.client: `AsyncAttune` and `AsyncLearnerClient`,
the same calls awaited, over httpx.AsyncClient."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any, Self, Unpack, cast

import httpx

from attune_client import api
from attune_client.errors import AttuneError
from attune_client.outcomes import MAX_BATCH, FlushResult, OutcomeQueue, outcome_prepare
from attune_client.payloads import (
    Decision,
    Learner,
    LearnerFields,
    OutcomeFields,
    PromptContext,
)
from attune_client.retries import RETRYABLE_TRANSPORT_ERRORS, RetryPolicy


class _AsyncCalls:
    """The calls a learner makes, sent as the learner `_reference` names ("" for the
    token's own user)."""

    _attune: AsyncAttune
    _reference: str

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
    ) -> Any:
        """Any API call (`path` relative to `/api/v1/`), as `Attune.request`."""
        return await self._attune._send(
            method, path, reference=self._reference, params=params, json=json
        )

    async def decide(self, context: str) -> Decision:
        """`POST decisions/` (DESIGN.md §4), as `Attune.decide`."""
        return cast(Decision, await self.request("POST", "decisions/", json={"context": context}))

    async def prompt_context(self, context: str) -> PromptContext:
        """`GET me/prompt-context/` (DESIGN.md §7.1), as `Attune.prompt_context`."""
        answer = await self.request("GET", "me/prompt-context/", params={"context": context})
        return cast(PromptContext, answer)

    async def track(self, **outcome: Unpack[OutcomeFields]) -> str:
        """Queues one outcome and answers its `event_id`; sends the queue once `flush_at`
        outcomes wait. As `Attune.track`."""
        payload = outcome_prepare(outcome)
        if self._attune._queue.add(self._reference, payload) >= self._attune._flush_at:
            await self.flush()
        return str(payload["event_id"])

    async def flush(self) -> FlushResult:
        """Sends the outcomes queued for this learner, up to 1,000 a request."""
        return await self._attune._flush_reference(self._reference)

    async def record_outcomes(
        self, outcomes: Iterable[OutcomeFields | Mapping[str, Any]]
    ) -> FlushResult:
        """Sends these outcomes now, bypassing the queue. As `Attune.record_outcomes`."""
        payloads = [outcome_prepare(outcome) for outcome in outcomes]
        result = FlushResult()
        for start in range(0, len(payloads), MAX_BATCH):
            batch = payloads[start : start + MAX_BATCH]
            try:
                answer = await self.request("POST", "outcomes/", json=batch)
            except AttuneError as error:
                error.outcomes = payloads[start:]
                raise
            result.add(answer, batch)
        return result

    def pending(self) -> int:
        """How many outcomes are queued for this learner."""
        return self._attune._queue.pending(self._reference)


class AsyncAttune(_AsyncCalls):
    """The asynchronous `Attune`: the same arguments, every call awaited. Use it as an async
    context manager, or await `close()`, so queued outcomes are flushed."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        retries: int = 4,
        backoff: float = 0.25,
        timeout: float | httpx.Timeout = 10,
        transport: httpx.AsyncBaseTransport | None = None,
        flush_at: int = 100,
        max_backoff: float = 30.0,
        max_retry_after: float = 120.0,
        on_retry: api.RetryHook | None = None,
    ) -> None:
        self._attune = self
        self._reference = ""
        self._policy = RetryPolicy(
            retries=retries,
            backoff=backoff,
            max_backoff=max_backoff,
            max_retry_after=max_retry_after,
        )
        self._flush_at = api.checked_flush_at(flush_at)
        self._on_retry = on_retry
        self._queue = OutcomeQueue()
        self._http = httpx.AsyncClient(
            base_url=api.api_root(base_url),
            headers=api.default_headers(token),
            timeout=timeout,
            transport=transport,
        )

    def for_learner(
        self, external_id: str | None = None, *, id: int | None = None
    ) -> AsyncLearnerClient:
        """Calls made for one learner (`X-On-Behalf-Of`), as `Attune.for_learner`."""
        return AsyncLearnerClient(self, api.learner_reference(external_id, id))

    async def create_learner(self, external_id: str, **fields: Unpack[LearnerFields]) -> Learner:
        """`POST users/`, as `Attune.create_learner`."""
        try:
            answer = await self.request(
                "POST", "users/", json={"external_id": external_id, **fields}
            )
        except AttuneError as error:
            if error.status == httpx.codes.CONFLICT and error.attempts > 1:
                found = await self.find_learner(external_id)
                if found is not None:
                    return found
            raise
        return cast(Learner, answer)

    async def find_learner(self, external_id: str) -> Learner | None:
        """`GET users/?external_id=`, as `Attune.find_learner`."""
        page = await self.request("GET", "users/", params={"external_id": external_id})
        return cast(Learner | None, api.first_result(page))

    async def ensure_learner(self, external_id: str, **fields: Unpack[LearnerFields]) -> Learner:
        """The learner with this external id, created when there is none."""
        found = await self.find_learner(external_id)
        if found is not None:
            return found
        try:
            return await self.create_learner(external_id, **fields)
        except AttuneError as error:
            found = await self.find_learner(external_id) if error.status == 409 else None
            if found is None:
                raise
            return found

    async def get_learner(self, id: int) -> Learner:
        """`GET users/{id}/`."""
        return cast(Learner, await self.request("GET", f"users/{int(id)}/"))

    async def flush(self) -> FlushResult:
        """Sends every queued outcome, of every learner; as `Attune.flush`."""
        result = FlushResult()
        failure: AttuneError | None = None
        for reference in self._queue.references():
            try:
                sent = await self._flush_reference(reference)
            except AttuneError as error:
                failure = failure or error
                continue
            result.created += sent.created
            result.duplicates += sent.duplicates
            result.ids.extend(sent.ids)
            result.outcomes.extend(sent.outcomes)
        if failure is not None:
            raise failure
        return result

    def pending(self) -> int:
        """How many outcomes are queued, for every learner."""
        return self._queue.pending()

    async def close(self) -> None:
        """Flushes the queued outcomes, then closes the connections."""
        try:
            if self._queue.pending():
                await self.flush()
        finally:
            await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def _flush_reference(self, reference: str) -> FlushResult:
        result = FlushResult()
        while batch := self._queue.take(reference, MAX_BATCH):
            try:
                answer = await self._send("POST", "outcomes/", reference=reference, json=batch)
            except AttuneError as error:
                if api.is_transient(error):
                    self._queue.put_back(reference, batch)
                else:
                    error.outcomes = batch
                raise
            result.add(answer, batch)
        return result

    async def _send(
        self,
        method: str,
        path: str,
        *,
        reference: str,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
    ) -> Any:
        request = self._http.build_request(
            method, path, params=params, json=json, headers=api.request_headers(reference)
        )
        attempt = 0
        while True:
            status: int | None = None
            failure: httpx.TransportError | None = None
            try:
                response = await self._http.send(request)
            except RETRYABLE_TRANSPORT_ERRORS as exc:
                failure = exc
                step = api.transport_delay_or_error(self._policy, attempt, request, exc)
            else:
                if response.is_success:
                    return api.answer_body(response, attempts=attempt + 1)
                status = response.status_code
                step = api.delay_or_error(self._policy, attempt, response)
            if isinstance(step, AttuneError):
                raise step from failure
            attempt += 1
            api.retry_announce(
                self._on_retry, request, retry=attempt, delay=step, status=status, error=failure
            )
            await asyncio.sleep(step)


class AsyncLearnerClient(_AsyncCalls):
    """An `AsyncAttune` client acting for one learner (`X-On-Behalf-Of`); as an async context
    manager it flushes this learner's outcomes on exit."""

    def __init__(self, attune: AsyncAttune, reference: str) -> None:
        self._attune = attune
        self._reference = reference

    @property
    def reference(self) -> str:
        """The X-On-Behalf-Of value: the external id, or `id:<attune id>`."""
        return self._reference

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.flush()

    def __repr__(self) -> str:
        return f"AsyncLearnerClient({self._reference!r})"
