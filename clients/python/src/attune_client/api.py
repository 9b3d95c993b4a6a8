"""What the synchronous and the asynchronous client share: the API's address and headers,
how a learner is named (DESIGN.md §7), and what an answer means — a body, a retry after a
delay, or an AttuneError."""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable
from typing import Any

import httpx

from attune_client.errors import AttuneConnectionError, AttuneError, error_from_response
from attune_client.outcomes import MAX_BATCH
from attune_client.retries import RetryEvent, RetryPolicy, is_retryable_status, retry_after_seconds

__version__ = "0.1.0"

logger = logging.getLogger("attune_client")

API_PREFIX = "/api/v1/"
ON_BEHALF_OF = "X-On-Behalf-Of"
ID_PREFIX = "id:"
# How far a reference may grow before the server stops looking it up.
MAX_REFERENCE_LENGTH = 255

RetryHook = Callable[[RetryEvent], None]


def api_root(base_url: str) -> str:
    """The API's root URL for a server's address. `http://host:8000` and
    `http://host:8000/api/v1/` name the same API."""
    url = base_url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"base_url must be an http:// or https:// URL, not {base_url!r}")
    if url.endswith(API_PREFIX.rstrip("/")):
        url = url[: -len(API_PREFIX.rstrip("/"))]
    return url + API_PREFIX


def default_headers(token: str) -> dict[str, str]:
    if not token or not token.strip():
        raise ValueError("token must be the key of an API token")
    return {
        "Authorization": f"Token {token.strip()}",
        "Accept": "application/json",
        "User-Agent": f"attune-client/{__version__}",
    }


def learner_reference(external_id: str | None, attune_id: int | None) -> str:
    """The X-On-Behalf-Of value naming a learner: the external id as it is, or `id:<n>` for
    Attune's own id. The server reads `id:<n>` as Attune's id and any other value as an
    external id, so an external id that itself starts with `id:` would name another learner;
    it is refused here, as is one that cannot travel in an HTTP header (name such a learner
    by its Attune id instead)."""
    if external_id is None:
        if attune_id is None:
            raise TypeError("name the learner by external_id or by id=")
        if isinstance(attune_id, bool) or not isinstance(attune_id, int) or attune_id < 1:
            raise ValueError(f"id must be a positive integer, not {attune_id!r}")
        return f"{ID_PREFIX}{attune_id}"
    if attune_id is not None:
        raise TypeError("name the learner by external_id or by id=, not by both")
    reference = external_id.strip()
    if not reference:
        raise ValueError("external_id must not be empty")
    if reference.startswith(ID_PREFIX):
        raise ValueError(
            f"external_id {external_id!r} starts with {ID_PREFIX!r}, which the server reads as "
            "an Attune id; name this learner with for_learner(id=<its Attune id>)"
        )
    if not (reference.isascii() and reference.isprintable()):
        raise ValueError(
            f"external_id {external_id!r} cannot be sent in the {ON_BEHALF_OF} header (only "
            "printable ASCII can); name this learner with for_learner(id=<its Attune id>)"
        )
    if len(reference) > MAX_REFERENCE_LENGTH:
        raise ValueError(f"external_id may have at most {MAX_REFERENCE_LENGTH} characters")
    return reference


def request_headers(reference: str) -> dict[str, str]:
    return {ON_BEHALF_OF: reference} if reference else {}


def answer_body(response: httpx.Response, *, attempts: int) -> Any:
    """The JSON of a successful answer (None for an empty one)."""
    if response.status_code == httpx.codes.NO_CONTENT or not response.content:
        return None
    try:
        return response.json()
    except ValueError as exc:
        error = error_from_response(response, attempts=attempts)
        error.message = f"the answer is not JSON: {response.text[:200]!r}"
        raise error from exc


def delay_or_error(
    policy: RetryPolicy, attempt: int, response: httpx.Response
) -> float | AttuneError:
    """After a failed answer to attempt `attempt` (0-based): the seconds to wait before the
    next one, or the error to raise."""
    retry_after = retry_after_seconds(
        response.headers.get("Retry-After"), now=datetime.datetime.now(datetime.UTC)
    )
    delay = policy.delay_after_status(attempt, response.status_code, retry_after)
    if delay is not None:
        return delay
    error = error_from_response(response, attempts=attempt + 1, retry_after=retry_after)
    if (
        is_retryable_status(response.status_code)
        and retry_after is not None
        and retry_after > policy.max_retry_after
        and attempt < policy.retries
    ):
        error.message += f" (Retry-After {retry_after:g} s is longer than max_retry_after)"
    return error


def transport_delay_or_error(
    policy: RetryPolicy, attempt: int, request: httpx.Request, exc: httpx.TransportError
) -> float | AttuneError:
    """After attempt `attempt` got no answer: the seconds to wait, or the error to raise."""
    delay = policy.delay_after_transport_error(attempt)
    if delay is not None:
        return delay
    return AttuneConnectionError(
        f"no answer after {attempt + 1} attempt(s): {type(exc).__name__}: {exc}",
        method=request.method,
        url=str(request.url),
        attempts=attempt + 1,
    )


def retry_announce(
    hook: RetryHook | None,
    request: httpx.Request,
    *,
    retry: int,
    delay: float,
    status: int | None,
    error: Exception | None,
) -> None:
    reason = f"answer {status}" if status is not None else f"{type(error).__name__}: {error}"
    logger.info(
        "Attune %s %s: %s; retry %d in %.2f s", request.method, request.url, reason, retry, delay
    )
    if hook is not None:
        hook(
            RetryEvent(
                method=request.method,
                url=str(request.url),
                retry=retry,
                delay=delay,
                status=status,
                error=error,
            )
        )


def is_transient(error: AttuneError) -> bool:
    """Whether sending the same request later may succeed (no answer, 429 or 5xx)."""
    return error.status is None or is_retryable_status(error.status)


def first_result(page: Any) -> Any:
    """The first object of a paginated list answer, or None."""
    results = page.get("results") if isinstance(page, dict) else None
    return results[0] if results else None


def checked_flush_at(flush_at: int) -> int:
    if not 1 <= flush_at <= MAX_BATCH:
        raise ValueError(f"flush_at must be between 1 and {MAX_BATCH}")
    return flush_at
