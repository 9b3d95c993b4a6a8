"""What a failed call raises: the server's error shape (DESIGN.md §7), parsed.

Every error Attune answers has one JSON body,
`{"type": "validation_error" | "client_error" | "server_error", "errors": [{"code", "detail",
"attr"}]}`; `AttuneError` carries the status and that body. A body in another shape (a proxy's
HTML page, an empty 502) still gives an `AttuneError` with the status, and its text as the
message."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True)
class ErrorItem:
    """One entry of the error body's `errors`: `attr` names the field (`"0.event_id"` is the
    first item of a list), or is None for an error about the whole request."""

    code: str
    detail: str
    attr: str | None = None


class AttuneError(Exception):
    """A request Attune refused or could not answer.

    `status` is the HTTP status (None when no answer came), `type` and `errors` the parsed
    error body, `attempts` how many times the request was sent. For a refused outcome batch,
    `outcomes` holds the outcomes that were not stored, so the caller can correct or drop
    them."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        type: str | None = None,
        errors: tuple[ErrorItem, ...] = (),
        method: str | None = None,
        url: str | None = None,
        attempts: int = 1,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.type = type
        self.errors = errors
        self.method = method
        self.url = url
        self.attempts = attempts
        self.retry_after = retry_after
        self.outcomes: list[dict[str, Any]] = []

    @property
    def code(self) -> str | None:
        """The first error's code (`not_found`, `conflict`, `invalid_choice`…), if any."""
        return self.errors[0].code if self.errors else None

    @property
    def attr(self) -> str | None:
        """The first error's attribute, if any."""
        return self.errors[0].attr if self.errors else None

    def __str__(self) -> str:
        where = f" ({self.method} {self.url})" if self.method and self.url else ""
        status = f"{self.status} " if self.status is not None else ""
        return f"{status}{self.message}{where}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status!r}, code={self.code!r}, "
            f"message={self.message!r})"
        )


class AttuneConnectionError(AttuneError):
    """No answer: the connection failed or timed out on every attempt. `__cause__` is the
    transport's own exception."""


def error_from_response(
    response: httpx.Response, *, attempts: int, retry_after: float | None = None
) -> AttuneError:
    """The AttuneError for an answer that is not a success, its body parsed when it has the
    error shape."""
    request = response.request
    body = _json_or_none(response)
    errors: tuple[ErrorItem, ...] = ()
    error_type: str | None = None
    if isinstance(body, dict) and isinstance(body.get("errors"), list):
        error_type = body.get("type") if isinstance(body.get("type"), str) else None
        errors = tuple(_error_item(entry) for entry in body["errors"] if isinstance(entry, dict))
    if errors:
        first = errors[0]
        message = f"{first.code}: {first.detail}"
        if first.attr:
            message += f" [{first.attr}]"
        if len(errors) > 1:
            message += f" (and {len(errors) - 1} more)"
    else:
        text = response.text.strip()
        message = text[:200] if text else response.reason_phrase or "error"
    return AttuneError(
        message,
        status=response.status_code,
        type=error_type,
        errors=errors,
        method=request.method,
        url=str(request.url),
        attempts=attempts,
        retry_after=retry_after,
    )


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def _error_item(entry: dict[str, Any]) -> ErrorItem:
    attr = entry.get("attr")
    return ErrorItem(
        code=str(entry.get("code", "")),
        detail=str(entry.get("detail", "")),
        attr=None if attr is None else str(attr),
    )
