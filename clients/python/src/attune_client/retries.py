"""When a request is sent again, and after how long.

Retried: answers 429 and 5xx, and requests that got no answer (connection refused or reset,
timeouts). Not retried: any other 4xx, whose answer does not change by asking again.
Every request is retried, outcome batches too: ingest is idempotent by `event_id`
(DESIGN.md §3, §10), and a retry re-sends the same event ids, so an outcome is never stored
twice however often its batch is sent.

The delay before retry n (0-based) is the server's `Retry-After` when it gives one, otherwise
exponential backoff with jitter: with b = min(max_backoff, backoff · 2ⁿ), a delay drawn
uniformly from [b/2, b] ("equal jitter": it keeps growing, yet clients that failed together do
not come back together)."""

from __future__ import annotations

import datetime
import email.utils
import random
from dataclasses import dataclass

import httpx

TOO_MANY_REQUESTS = 429

# Failures after which the request may never have reached the server, or its answer was lost.
RETRYABLE_TRANSPORT_ERRORS: tuple[type[httpx.TransportError], ...] = (
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
)


@dataclass(frozen=True)
class RetryPolicy:
    """`retries` is the number of retries after the first attempt (0 disables them);
    `backoff` the first delay's upper bound in seconds; `max_backoff` caps the computed delay;
    a `Retry-After` above `max_retry_after` is not waited for: the error is raised at once."""

    retries: int = 4
    backoff: float = 0.25
    max_backoff: float = 30.0
    max_retry_after: float = 120.0

    def __post_init__(self) -> None:
        if self.retries < 0:
            raise ValueError("retries must be 0 or more")
        if self.backoff < 0 or self.max_backoff < 0 or self.max_retry_after < 0:
            raise ValueError("backoff, max_backoff and max_retry_after must be 0 or more")

    def backoff_delay(self, attempt: int) -> float:
        """The delay before retry `attempt` (0-based) when the server named none."""
        ceiling = min(self.max_backoff, self.backoff * 2**attempt)
        # Jitter spreads retrying clients apart; it is not a secret.
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311

    def delay_after_status(
        self, attempt: int, status: int, retry_after: float | None
    ) -> float | None:
        """Seconds to wait before retrying an answer with this status, or None when it is not
        retried (a status that asking again does not change, retries used up, or a
        `Retry-After` longer than `max_retry_after`)."""
        if not is_retryable_status(status) or attempt >= self.retries:
            return None
        if retry_after is not None:
            return retry_after if retry_after <= self.max_retry_after else None
        return self.backoff_delay(attempt)

    def delay_after_transport_error(self, attempt: int) -> float | None:
        """Seconds to wait before retrying a request that got no answer, or None."""
        if attempt >= self.retries:
            return None
        return self.backoff_delay(attempt)


def is_retryable_status(status: int) -> bool:
    return status == TOO_MANY_REQUESTS or 500 <= status <= 599


def retry_after_seconds(value: str | None, *, now: datetime.datetime) -> float | None:
    """A `Retry-After` header as seconds from `now` (an aware datetime): delta-seconds
    (`"3"`) or an HTTP date (`"Wed, 21 Oct 2015 07:28:00 GMT"`), never negative; None when
    absent or unreadable (the caller then backs off on its own)."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.isascii() and text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT
        when = when.replace(tzinfo=datetime.UTC)
    return max(0.0, (when - now).total_seconds())


@dataclass(frozen=True)
class RetryEvent:
    """Told to `on_retry` before each retry: which request, the retry's number (1 for the
    first retry), the delay about to be waited, and what failed — the answer's status, or
    the transport's exception when no answer came."""

    method: str
    url: str
    retry: int
    delay: float
    status: int | None
    error: Exception | None
