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

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from config.errors import PayloadTooLargeError, UnprocessableError
from config.tasks import enqueue_on_commit
from experiments.catalog import context_catalog
from experiments.models import Decision, StrategyConfig
from outcomes import stats
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


def payload_hash(item: dict[str, Any]) -> str:
    canonical = {
        name: (
            value.astimezone(datetime.UTC).isoformat() if hasattr(value, "astimezone") else value
        )
        for name, value in sorted(item.items())
        if name in REPORTED_FIELDS and value is not None
    }
    return hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()


def _field_error(index: int | None, field: str, message: str) -> ValidationError:
    return ValidationError({field if index is None else f"{index}.{field}": [message]})


def reserved_event_id(event_id: str) -> bool:
    return event_id.casefold().startswith(RESERVED_EVENT_ID_PREFIX)


def _attributions(*, user: Any, items: list[dict[str, Any]], single: bool) -> list[dict[str, Any]]:
    """Per item: context, strategy, config, experiment, variant, personalization_applied and
    strategy_variant, copied from the item's decision (which must be the user's) or taken
    from the item itself."""
    decision_ids = {item["decision"] for item in items if item.get("decision") is not None}
    decisions = {
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
    explicit_strategies: dict[tuple[str, str], Any] = {}
    for item in items:
        if item.get("decision") is None and item.get("strategy"):
            catalog = context_catalog(item["context"])
            explicit_strategies[(item["context"], item["strategy"])] = next(
                (s for s in catalog.strategies if s.key == item["strategy"]), None
            )
    configs = {
        c.strategy_id: c.pk
        for c in StrategyConfig.objects.filter(
            user=user,
            strategy_id__in=[s.id for s in explicit_strategies.values() if s is not None],
        )
    }
    result = []
    for index, item in enumerate(items):
        position = None if single else index
        decision_id = item.get("decision")
        if decision_id is not None:
            decision = decisions.get(decision_id)
            if decision is None or decision["user_id"] != user.pk:
                raise _field_error(position, "decision", "No decision of this user has this id.")
            result.append(
                {
                    "decision_id": decision_id,
                    "context": decision["context"],
                    "strategy_id": decision["strategy_id"],
                    "config_id": decision["config_id"],
                    "experiment_id": decision["experiment_id"],
                    "variant_id": decision["variant_id"],
                    "personalization_applied": decision["personalization_applied"],
                    "strategy_variant": decision["strategy__key"],
                }
            )
            continue
        if not item.get("context"):
            raise _field_error(position, "context", "Give the decision, or at least the context.")
        strategy = explicit_strategies.get((item["context"], item.get("strategy") or ""))
        if item.get("strategy") and strategy is None:
            raise _field_error(
                position,
                "strategy",
                f"No active strategy {item['strategy']!r} in {item['context']}.",
            )
        applied = item.get("personalization_applied")
        if applied is None:
            applied = strategy is not None and not strategy.is_baseline
        result.append(
            {
                "decision_id": None,
                "context": item["context"],
                "strategy_id": strategy.id if strategy else None,
                "config_id": configs.get(strategy.id) if strategy else None,
                "experiment_id": None,
                "variant_id": None,
                "personalization_applied": applied,
                "strategy_variant": strategy.key if strategy else "",
            }
        )
    return result


@transaction.atomic
def outcome_record_many(
    *, user: Any, items: list[dict[str, Any]], single: bool = False, internal: bool = False
) -> IngestResult:
    """Store outcomes idempotently by (user, event_id) with one INSERT … ON CONFLICT DO
    NOTHING RETURNING, which names exactly the new rows even under concurrent retries. A
    repeated event_id whose payload differs is 422 and the whole request changes nothing.
    Only `internal` callers (Attune's own services) may use reserved event ids."""
    if len(items) > MAX_BATCH:
        raise PayloadTooLargeError(
            f"{len(items)} outcomes in one request; send at most {MAX_BATCH} per request."
        )
    if not internal:
        for index, item in enumerate(items):
            if reserved_event_id(item["event_id"]):
                raise _field_error(
                    None if single else index,
                    "event_id",
                    f"Event ids starting with {RESERVED_EVENT_ID_PREFIX!r} are reserved for "
                    "outcomes Attune records itself; choose another id.",
                )
    hashes = [payload_hash(item) for item in items]
    first_hash: dict[str, str] = {}
    for index, item in enumerate(items):
        known = first_hash.setdefault(item["event_id"], hashes[index])
        if known != hashes[index]:
            raise UnprocessableError(
                f"event_id {item['event_id']!r} appears twice in the request with different "
                "payloads.",
                attr="event_id" if single else f"{index}.event_id",
            )
    attributions = _attributions(user=user, items=items, single=single)
    now = timezone.now()
    weights = settings.OUTCOME_REWARD_WEIGHTS
    rows = []
    for item, attribution, digest in zip(items, attributions, hashes, strict=True):
        rows.append(
            {
                "user": user.pk,
                "event_id": item["event_id"],
                "payload_hash": digest,
                **{k.removesuffix("_id"): v for k, v in attribution.items()},
                "outcome_type": item["outcome_type"],
                "occurred_at": item.get("occurred_at") or now,
                **{name: item.get(name) for name in SCORE_FIELDS},
                "reward": stats.reward({name: item.get(name) for name in SCORE_FIELDS}, weights),
                "session_duration_minutes": item.get("session_duration_minutes"),
                "content_type": item.get("content_type") or "",
                "difficulty_level": item.get("difficulty_level"),
                "created_at": now,
                "updated_at": now,
            }
        )
    inserted = dict(
        insert_ignoring_conflicts(
            Outcome,
            rows,
            conflict_fields=("user", "event_id"),
            returning=("event_id", "id"),
        )
    )
    repeated = {item["event_id"]: digest for item, digest in zip(items, hashes, strict=True)}
    repeated = {e: h for e, h in repeated.items() if e not in inserted}
    stored = {
        event_id: (digest, pk)
        for event_id, digest, pk in Outcome.objects.filter(
            user=user, event_id__in=list(repeated)
        ).values_list("event_id", "payload_hash", "id")
    }
    for event_id, digest in repeated.items():
        if stored[event_id][0] != digest:
            index = next(i for i, item in enumerate(items) if item["event_id"] == event_id)
            raise UnprocessableError(
                f"event_id {event_id!r} was already reported with a different payload; "
                "nothing was stored. Use a new event_id for a new outcome.",
                code="event_id_reused",
                attr="event_id" if single else f"{index}.event_id",
            )
    seen: set[str] = set()
    created, duplicates, ids = [], [], []
    for item in items:
        event_id = item["event_id"]
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
