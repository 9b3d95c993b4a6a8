"""Idempotent outcome ingest (DESIGN.md §7 outcomes/, §10).

Event ids are the client's idempotency keys, unique per user. Outcomes that Attune records
itself (e.g. on completing a recommendation) take their ids from a reserved space: ids that
start with RESERVED_EVENT_ID_PREFIX ("attune:", in any case) are refused from clients with a
400 naming the item's `event_id`, so Attune's own ids can never collide with a client's.
"""

import datetime
import hashlib
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from config.errors import PayloadTooLargeError, UnprocessableError
from config.tasks import enqueue_on_commit
from experiments.catalog import context_catalog
from experiments.models import Decision, StrategyConfig
from outcomes.models import SCORE_FIELDS, Outcome
from outcomes.sql import insert_ignoring_conflicts

MAX_BATCH = 1000
RESERVED_EVENT_ID_PREFIX = "attune:"
RECOMPUTE_PENDING_KEY = "outcomes:recompute-enqueued"
RECOMPUTE_DEBOUNCE_SECONDS = 20
# Fields the client reports; their canonical JSON is the payload's fingerprint.
REPORTED_FIELDS = (
    "event_id",
    "decision",
    "context",
    "strategy",
    "personalization_applied",
    "outcome_type",
    "occurred_at",
    *SCORE_FIELDS,
    "session_duration_minutes",
    "content_type",
    "difficulty_level",
)


@dataclass(frozen=True)
class IngestResult:
    created: list[int]
    duplicates: list[int]
    outcome_ids: list[int]


_REPORTED = frozenset(REPORTED_FIELDS)
# json.dumps(…, sort_keys=True) builds an encoder per call; one shared encoder writes the
# same text.
_CANONICAL_JSON = json.JSONEncoder(sort_keys=True)


def _canonical(item: dict[str, Any]) -> dict[str, Any]:
    canonical = {
        name: value for name, value in item.items() if value is not None and name in _REPORTED
    }
    occurred_at = canonical.get("occurred_at")
    if isinstance(occurred_at, datetime.datetime):  # the one reported field that is a moment
        canonical["occurred_at"] = occurred_at.astimezone(datetime.UTC).isoformat()
    return canonical


def payload_hash(item: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of the reported fields that are not None (date-times in
    UTC), keys sorted: stored with the outcome, so a retry with the same payload is told from
    a reuse."""
    return hashlib.sha256(_CANONICAL_JSON.encode(_canonical(item)).encode()).hexdigest()


def rewards(scores: dict[str, list[Any]], weights: dict[str, float]) -> list[float]:
    """stats.reward (DESIGN.md §5.1) of every row at once: Σ w_m·s_m / Σ w_m over the scores
    present. `scores` maps each metric to its column (None: no score). The sums run over the
    metrics in the columns' order, as stats.reward's do, and an absent score adds 0.0, which
    changes no sum: every reward is the very float stats.reward gives."""
    count = len(next(iter(scores.values()), []))
    numerator, total = np.zeros(count), np.zeros(count)
    for name, column in scores.items():
        if name not in weights:
            continue
        values = np.array(column, dtype=float)  # None → NaN
        present = ~np.isnan(values)
        numerator = numerator + np.where(present, weights[name] * values, 0.0)
        total = total + np.where(present, weights[name], 0.0)
    if not total.all():
        raise ValueError("a reward needs at least one score")
    return (numerator / total).tolist()


def _field_error(index: int | None, field: str, message: str) -> ValidationError:
    return ValidationError({field if index is None else f"{index}.{field}": [message]})


def reserved_event_id(event_id: str) -> bool:
    return event_id.casefold().startswith(RESERVED_EVENT_ID_PREFIX)


# The attribution columns, in this order, of _attributions' tuples.
ATTRIBUTION_FIELDS = (
    "decision",
    "context",
    "strategy",
    "config",
    "experiment",
    "variant",
    "personalization_applied",
    "strategy_variant",
)


def _attributions(*, user: Any, items: list[dict[str, Any]], single: bool) -> list[tuple[Any, ...]]:
    """Per item, the ATTRIBUTION_FIELDS (ids for relations): copied from the item's decision
    (which must be the user's) or taken from the item itself. Worked out once per distinct
    decision or (context, strategy), not once per item."""
    decision_ids = {item["decision"] for item in items if item.get("decision") is not None}
    decisions: dict[int, Any] = (
        {
            row["id"]: row
            for row in Decision.objects.filter(pk__in=decision_ids).values(
                "id",
                "user_id",
                "context",
                "strategy_id",
                "strategy__key",
                "config_id",
                "experiment_id",
                "variant_id",
                "personalization_applied",
            )
        }
        if decision_ids
        else {}
    )
    explicit_strategies: dict[tuple[str, str], Any] = {}
    for item in items:
        if item.get("decision") is None and item.get("strategy"):
            key = (item["context"], item["strategy"])
            if key not in explicit_strategies:
                catalog = context_catalog(item["context"])
                explicit_strategies[key] = next(
                    (s for s in catalog.strategies if s.key == item["strategy"]), None
                )
    configs = (
        {
            c.strategy_id: c.pk
            for c in StrategyConfig.objects.filter(
                user=user,
                strategy_id__in=[s.id for s in explicit_strategies.values() if s is not None],
            )
        }
        if explicit_strategies
        else {}
    )
    known: dict[Any, tuple[Any, ...]] = {}
    result = []
    for index, item in enumerate(items):
        decision_id = item.get("decision")
        memo = (decision_id, item.get("context"), item.get("strategy"))
        attribution = known.get(memo)
        if attribution is None:
            attribution = known[memo] = _attribution(
                user=user,
                item=item,
                position=None if single else index,
                decisions=decisions,
                strategies=explicit_strategies,
                configs=configs,
            )
        applied = item.get("personalization_applied")
        if decision_id is None and applied is not None and applied != attribution[6]:
            attribution = (*attribution[:6], applied, attribution[7])
        result.append(attribution)
    return result


def _attribution(
    *,
    user: Any,
    item: dict[str, Any],
    position: int | None,
    decisions: dict[int, Any],
    strategies: dict[tuple[str, str], Any],
    configs: dict[int, int],
) -> tuple[Any, ...]:
    """One item's ATTRIBUTION_FIELDS; personalization_applied as the item's strategy implies
    (the caller applies an explicit one)."""
    decision_id = item.get("decision")
    if decision_id is not None:
        decision = decisions.get(decision_id)
        if decision is None or decision["user_id"] != user.pk:
            raise _field_error(position, "decision", "No decision of this user has this id.")
        return (
            decision_id,
            decision["context"],
            decision["strategy_id"],
            decision["config_id"],
            decision["experiment_id"],
            decision["variant_id"],
            decision["personalization_applied"],
            decision["strategy__key"],
        )
    if not item.get("context"):
        raise _field_error(position, "context", "Give the decision, or at least the context.")
    strategy = strategies.get((item["context"], item.get("strategy") or ""))
    if item.get("strategy") and strategy is None:
        raise _field_error(
            position,
            "strategy",
            f"No active strategy {item['strategy']!r} in {item['context']}.",
        )
    return (
        None,
        item["context"],
        strategy.id if strategy else None,
        configs.get(strategy.id) if strategy else None,
        None,
        None,
        strategy is not None and not strategy.is_baseline,
        strategy.key if strategy else "",
    )


@transaction.atomic
def outcome_record_many(
    *, user: Any, items: list[dict[str, Any]], single: bool = False, internal: bool = False
) -> IngestResult:
    """Store outcomes idempotently by (user, event_id) with one INSERT … ON CONFLICT DO
    NOTHING RETURNING, which names exactly the new rows even under concurrent retries. A
    repeated event_id whose payload differs is 422 and the whole request changes nothing.
    Only `internal` callers (Attune's own services) may use reserved event ids.

    Column-wise: each column of the insert is one list comprehension over the items, and
    the insert sends one array per column (outcomes.sql.insert_ignoring_conflicts)."""
    if len(items) > MAX_BATCH:
        raise PayloadTooLargeError(
            f"{len(items)} outcomes in one request; send at most {MAX_BATCH} per request."
        )
    if not items:
        return IngestResult(created=[], duplicates=[], outcome_ids=[])
    event_ids = [item["event_id"] for item in items]
    if not internal:
        for index, event_id in enumerate(event_ids):
            if reserved_event_id(event_id):
                raise _field_error(
                    None if single else index,
                    "event_id",
                    f"Event ids starting with {RESERVED_EVENT_ID_PREFIX!r} are reserved for "
                    "outcomes Attune records itself; choose another id.",
                )
    hashes = [payload_hash(item) for item in items]
    first_hash = dict(zip(reversed(event_ids), reversed(hashes), strict=True))
    if len(first_hash) != len(set(zip(event_ids, hashes, strict=True))):
        for index, (event_id, digest) in enumerate(zip(event_ids, hashes, strict=True)):
            if first_hash[event_id] != digest:
                raise UnprocessableError(
                    f"event_id {event_id!r} appears twice in the request with different payloads.",
                    attr="event_id" if single else f"{index}.event_id",
                )
    attributions = _attributions(user=user, items=items, single=single)
    now = timezone.now()
    scores = {name: [item.get(name) for item in items] for name in SCORE_FIELDS}
    columns: dict[str, list[Any]] = {
        "event_id": event_ids,
        "user": [user.pk] * len(items),
        "payload_hash": hashes,
        **dict(zip(ATTRIBUTION_FIELDS, map(list, zip(*attributions, strict=True)), strict=True)),
        "outcome_type": [item["outcome_type"] for item in items],
        "occurred_at": [item.get("occurred_at") or now for item in items],
        **scores,
        "reward": rewards(scores, settings.OUTCOME_REWARD_WEIGHTS),
        "session_duration_minutes": [item.get("session_duration_minutes") for item in items],
        "content_type": [item.get("content_type") or "" for item in items],
        "difficulty_level": [item.get("difficulty_level") for item in items],
        "created_at": [now] * len(items),
        "updated_at": [now] * len(items),
    }
    inserted = dict(
        insert_ignoring_conflicts(
            Outcome,
            columns,
            conflict_fields=("user", "event_id"),
            returning=("event_id", "id"),
        )
    )
    repeated = {e: first_hash[e] for e in event_ids if e not in inserted}  # in request order
    stored = {
        event_id: (digest, pk)
        for event_id, digest, pk in Outcome.objects.filter(
            user=user, event_id__in=list(repeated)
        ).values_list("event_id", "payload_hash", "id")
    }
    for event_id, digest in repeated.items():
        if stored[event_id][0] != digest:
            index = event_ids.index(event_id)
            raise UnprocessableError(
                f"event_id {event_id!r} was already reported with a different payload; "
                "nothing was stored. Use a new event_id for a new outcome.",
                code="event_id_reused",
                attr="event_id" if single else f"{index}.event_id",
            )
    created: list[int] = []
    duplicates: list[int] = []
    if len(inserted) == len(items):  # every item new (and so every event_id distinct)
        created = [inserted[event_id] for event_id in event_ids]
        ids = list(created)
    else:
        seen: set[str] = set()
        ids = []
        for event_id in event_ids:
            if event_id in inserted and event_id not in seen:
                created.append(inserted[event_id])
                ids.append(inserted[event_id])
            else:
                duplicates.append(inserted.get(event_id) or stored[event_id][1])
                ids.append(duplicates[-1])
            seen.add(event_id)
    if created and cache.add(RECOMPUTE_PENDING_KEY, True, RECOMPUTE_DEBOUNCE_SECONDS):
        # Learn from new outcomes soon, without one recompute per request; beat runs it
        # every minute anyway.
        from outcomes.tasks import recompute_bandit_rewards

        enqueue_on_commit(recompute_bandit_rewards)
    return IngestResult(created=created, duplicates=duplicates, outcome_ids=ids)
