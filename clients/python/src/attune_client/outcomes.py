"""Outcome batching: the queue behind `track()` and `flush()`.

Each tracked outcome gets its idempotency key (`event_id`, a uuid4) and its time when it is
queued, not when it is sent, so every send of it — the first, a retry, a flush repeated after
an error — carries the same payload and the server stores it once (DESIGN.md §3, §10)."""

from __future__ import annotations

import datetime
import threading
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

# The server takes at most this many outcomes in one request (DESIGN.md §7).
MAX_BATCH = 1000
SCORE_FIELDS = ("retention_score", "performance_score", "completion_rate", "engagement_score")
MAX_EVENT_ID_LENGTH = 64


@dataclass
class FlushResult:
    """What the server answered for the outcomes sent: `created` new rows, `duplicates`
    already stored (sent before), `ids` of the rows in the order of `outcomes`, the payloads
    as they were sent."""

    created: int = 0
    duplicates: int = 0
    ids: list[int] = field(default_factory=list)
    outcomes: list[dict[str, Any]] = field(default_factory=list)

    def add(self, answer: Mapping[str, Any], outcomes: list[dict[str, Any]]) -> None:
        self.created += int(answer.get("created", 0))
        self.duplicates += int(answer.get("duplicates", 0))
        self.ids.extend(int(i) for i in answer.get("ids", []))
        self.outcomes.extend(outcomes)


def outcome_prepare(
    fields: Mapping[str, Any], *, now: datetime.datetime | None = None
) -> dict[str, Any]:
    """The JSON payload of one outcome: a generated `event_id` when none is given, the
    decision's id when the Decision itself is given, `occurred_at` as ISO 8601 (now when
    absent; omitted when None). Refuses, with ValueError, what the server would refuse for
    any payload: no outcome_type, no score, neither decision nor context, naive times."""
    payload = dict(fields)
    event_id = payload.get("event_id")
    if event_id is None:
        payload["event_id"] = str(uuid.uuid4())
    elif not isinstance(event_id, str) or not event_id.strip():
        raise ValueError("event_id must be a non-empty string")
    elif len(event_id) > MAX_EVENT_ID_LENGTH:
        raise ValueError(f"event_id may have at most {MAX_EVENT_ID_LENGTH} characters")
    decision = payload.get("decision")
    if isinstance(decision, Mapping):
        payload["decision"] = decision["id"]
    if not payload.get("outcome_type"):
        raise ValueError("an outcome needs its outcome_type")
    if all(payload.get(name) is None for name in SCORE_FIELDS):
        raise ValueError("an outcome needs at least one score: " + ", ".join(SCORE_FIELDS))
    if payload.get("decision") is None and not payload.get("context"):
        raise ValueError("an outcome needs its decision, or at least its context")
    if "occurred_at" not in payload:
        payload["occurred_at"] = now or datetime.datetime.now(datetime.UTC)
    occurred_at = payload["occurred_at"]
    if occurred_at is None:
        del payload["occurred_at"]
    elif isinstance(occurred_at, datetime.datetime):
        if occurred_at.tzinfo is None:
            raise ValueError("occurred_at must be an aware datetime (with its UTC offset)")
        payload["occurred_at"] = occurred_at.isoformat()
    return payload


class OutcomeQueue:
    """Outcomes waiting to be sent, one queue per learner reference (the X-On-Behalf-Of
    value, or "" for the token's own user), safe to use from several threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queues: dict[str, list[dict[str, Any]]] = {}

    def add(self, reference: str, payload: dict[str, Any]) -> int:
        """Queues one outcome; answers how many now wait for this reference."""
        with self._lock:
            queue = self._queues.setdefault(reference, [])
            queue.append(payload)
            return len(queue)

    def take(self, reference: str, limit: int = MAX_BATCH) -> list[dict[str, Any]]:
        """Removes and answers the oldest `limit` outcomes of this reference."""
        with self._lock:
            queue = self._queues.get(reference, [])
            batch, rest = queue[:limit], queue[limit:]
            if rest:
                self._queues[reference] = rest
            else:
                self._queues.pop(reference, None)
            return batch

    def put_back(self, reference: str, batch: Iterable[dict[str, Any]]) -> None:
        """Returns outcomes that could not be sent to the front of their queue, in order."""
        with self._lock:
            self._queues[reference] = [*batch, *self._queues.get(reference, [])]

    def pending(self, reference: str | None = None) -> int:
        """How many outcomes wait: for one reference, or for all."""
        with self._lock:
            if reference is not None:
                return len(self._queues.get(reference, []))
            return sum(len(queue) for queue in self._queues.values())

    def references(self) -> list[str]:
        with self._lock:
            return list(self._queues)
