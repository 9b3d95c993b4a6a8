"""The synchronous client: `Attune`, and `LearnerClient`, the view of it that acts for one
learner (DESIGN.md §4, §7)."""

from __future__ import annotations

import time
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


class _Calls:
    """The calls a learner makes, sent as the learner `_reference` names ("" for the
    token's own user)."""

    _attune: Attune
    _reference: str

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
    ) -> Any:
        """Any API call, with authentication, retries and errors as for the named methods:
        `path` is relative to `/api/v1/` (`"decisions/"`). Answers the parsed JSON."""
        return self._attune._send(method, path, reference=self._reference, params=params, json=json)

    def decide(self, context: str) -> Decision:
        """Which strategy to use now in `context` (MISSION, CONTENT, ASSESSMENT or SESSION):
        `POST decisions/`, DESIGN.md §4. The decision is logged on the server; pass it (or
        its id) as `decision=` when tracking what came of it."""
        return cast(Decision, self.request("POST", "decisions/", json={"context": context}))

    def prompt_context(self, context: str) -> PromptContext:
        """What a content generator needs to adapt text to the learner in `context`, with a
        fresh decision: `GET me/prompt-context/`, DESIGN.md §7.1."""
        return cast(
            PromptContext, self.request("GET", "me/prompt-context/", params={"context": context})
        )

    def track(self, **outcome: Unpack[OutcomeFields]) -> str:
        """Queues one outcome and answers its `event_id` (a generated uuid4 unless given).
        The queue is sent by `flush()`, and on its own once `flush_at` outcomes wait; an
        error of that automatic flush is raised here, and the outcomes stay queued when the
        failure is transient."""
        payload = outcome_prepare(outcome)
        if self._attune._queue.add(self._reference, payload) >= self._attune._flush_at:
            self.flush()
        return str(payload["event_id"])

    def flush(self) -> FlushResult:
        """Sends the outcomes queued for this learner, up to 1,000 a request."""
        return self._attune._flush_reference(self._reference)

    def record_outcomes(self, outcomes: Iterable[OutcomeFields | Mapping[str, Any]]) -> FlushResult:
        """Sends these outcomes now, bypassing the queue (event ids generated where missing).
        Sending outcomes that were sent before stores nothing new: the server counts them as
        duplicates."""
        payloads = [outcome_prepare(outcome) for outcome in outcomes]
        result = FlushResult()
        for start in range(0, len(payloads), MAX_BATCH):
            batch = payloads[start : start + MAX_BATCH]
            try:
                answer = self.request("POST", "outcomes/", json=batch)
            except AttuneError as error:
                error.outcomes = payloads[start:]
                raise
            result.add(answer, batch)
        return result

    def pending(self) -> int:
        """How many outcomes are queued for this learner."""
        return self._attune._queue.pending(self._reference)


class Attune(_Calls):
    """A client of one Attune server, authenticated by an API token.

    With a service account's token, act for learners through `for_learner()` and manage them
    with `create_learner()` / `find_learner()`; with a learner's own token, call `decide()`,
    `track()`… on the client itself. Failed requests are retried (see attune_client.retries);
    use it as a context manager, or call `close()`, so queued outcomes are flushed."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        retries: int = 4,
        backoff: float = 0.25,
        timeout: float | httpx.Timeout = 10,
        transport: httpx.BaseTransport | None = None,
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
        self._http = httpx.Client(
            base_url=api.api_root(base_url),
            headers=api.default_headers(token),
            timeout=timeout,
            transport=transport,
        )

    def for_learner(
        self, external_id: str | None = None, *, id: int | None = None
    ) -> LearnerClient:
        """The calls of `decide()`, `track()`… made for one learner (`X-On-Behalf-Of`): named
        by the client application's external id, or by Attune's id as `id=`."""
        return LearnerClient(self, api.learner_reference(external_id, id))

    def create_learner(self, external_id: str, **fields: Unpack[LearnerFields]) -> Learner:
        """Creates a learner (`POST users/`). A taken external id is AttuneError 409, unless
        the create was retried: then the first attempt may have created it, and the learner
        found is answered."""
        try:
            answer = self.request("POST", "users/", json={"external_id": external_id, **fields})
        except AttuneError as error:
            if error.status == httpx.codes.CONFLICT and error.attempts > 1:
                found = self.find_learner(external_id)
                if found is not None:
                    return found
            raise
        return cast(Learner, answer)

    def find_learner(self, external_id: str) -> Learner | None:
        """The learner with this external id, or None (`GET users/?external_id=`)."""
        page = self.request("GET", "users/", params={"external_id": external_id})
        return cast(Learner | None, api.first_result(page))

    def ensure_learner(self, external_id: str, **fields: Unpack[LearnerFields]) -> Learner:
        """The learner with this external id, created with `fields` when there is none."""
        found = self.find_learner(external_id)
        if found is not None:
            return found
        try:
            return self.create_learner(external_id, **fields)
        except AttuneError as error:
            found = self.find_learner(external_id) if error.status == 409 else None
            if found is None:
                raise
            return found

    def get_learner(self, id: int) -> Learner:
        """The learner with this Attune id (`GET users/{id}/`)."""
        return cast(Learner, self.request("GET", f"users/{int(id)}/"))

    def flush(self) -> FlushResult:
        """Sends every queued outcome, of every learner. When a batch fails, the error is
        raised after the other learners' batches were sent."""
        result = FlushResult()
        failure: AttuneError | None = None
        for reference in self._queue.references():
            try:
                sent = self._flush_reference(reference)
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

    def close(self) -> None:
        """Flushes the queued outcomes, then closes the connections."""
        try:
            if self._queue.pending():
                self.flush()
        finally:
            self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _flush_reference(self, reference: str) -> FlushResult:
        result = FlushResult()
        while batch := self._queue.take(reference, MAX_BATCH):
            try:
                answer = self._send("POST", "outcomes/", reference=reference, json=batch)
            except AttuneError as error:
                if api.is_transient(error):
                    self._queue.put_back(reference, batch)  # the same event ids next time
                else:
                    error.outcomes = batch
                raise
            result.add(answer, batch)
        return result

    def _send(
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
                response = self._http.send(request)
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
            time.sleep(step)


class LearnerClient(_Calls):
    """An `Attune` client acting for one learner: every request carries `X-On-Behalf-Of`.
    Its outcomes queue in the client, so `Attune.flush()` sends them too; as a context
    manager it flushes this learner's outcomes on exit."""

    def __init__(self, attune: Attune, reference: str) -> None:
        self._attune = attune
        self._reference = reference

    @property
    def reference(self) -> str:
        """The X-On-Behalf-Of value: the external id, or `id:<attune id>`."""
        return self._reference

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.flush()

    def __repr__(self) -> str:
        return f"LearnerClient({self._reference!r})"
