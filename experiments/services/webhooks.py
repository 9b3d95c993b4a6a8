"""Webhooks (DESIGN.md §3, §6): endpoints, the events services emit, and their delivery.

An event becomes one PENDING WebhookDelivery per active endpoint subscribed to it, written in
the transaction of the change that caused it, and one `experiments.deliver_webhooks` task per
delivery once that transaction commits. Each delivery is its own short unit — claim, POST,
record — so a failing or slow receiver holds up only its own delivery (DESIGN.md §10,
Isolation). The claim is a lease: in a short transaction the delivery is picked with
`SELECT … FOR UPDATE SKIP LOCKED` (PostgreSQL; SQLite has no row locks and relies on the
compare-and-set that follows), its attempt counted and its next attempt moved past the time
the POST may take; the POST runs outside any transaction; its result is written only if no
other worker has claimed the delivery since. A worker that dies mid-attempt leaves the
delivery to be retried when the lease ends: delivery is at least once, and receivers
deduplicate by the `Attune-Delivery` id.

Retries follow experiments.webhooks.retry_delay_seconds (1 min, 2, 4, … at most 6 h apart);
the tenth failed attempt is final (FAILED).
"""

import datetime
import logging
import secrets
import socket
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from config.errors import ConflictError
from config.tasks import enqueue_on_commit
from experiments import webhooks
from experiments.models import Experiment, WebhookDelivery, WebhookEndpoint, WebhookEvent
from logs.models import AuditEvent
from logs.services import audit_event_record, changes_between, model_snapshot

logger = logging.getLogger(__name__)

Status = WebhookDelivery.Status

ENDPOINT_FIELDS = ("name", "url", "events", "is_active", "secret")
MIN_SECRET_LENGTH = 16
# Keys that name personal data. Payloads carry ids and names only (DESIGN.md §3); a payload
# holding one of these keys anywhere is a programming error.
PERSONAL_KEYS = frozenset(
    {
        "email",
        "username",
        "external_id",
        "display_name",
        "first_name",
        "last_name",
        "password",
        "attributes",
        "ip",
        "ip_address",
    }
)
# How much of a refusing receiver's answer is kept as the delivery's last error.
ERROR_EXCERPT_BYTES = 500


def webhook_secret_new() -> str:
    return secrets.token_urlsafe(32)


# --- URLs -------------------------------------------------------------------------------


def _addresses(host: str, port: int | None) -> set[str]:
    infos = socket.getaddrinfo(host, port or 443, type=socket.SOCK_STREAM)
    return {str(info[4][0]) for info in infos}


def webhook_url_problem(url: str) -> str | None:
    """Why Attune will not POST to `url`, or None. Hosts resolving to a loopback, private,
    link-local or otherwise non-public address are refused unless WEBHOOK_ALLOW_PRIVATE (a
    receiver inside the network would let whoever configures a webhook reach it)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "Enter a valid http or https URL."
    host = parts.hostname
    if parts.scheme not in ("http", "https") or not host:
        return "Enter an http or https URL with a host."
    if settings.WEBHOOK_ALLOW_PRIVATE:
        return None
    try:
        addresses = _addresses(host, port)
    except (OSError, UnicodeError, ValueError):
        return f"The host {host!r} does not resolve."
    refused = sorted(address for address in addresses if not webhooks.address_is_public(address))
    if refused:
        return (
            f"The host {host!r} resolves to a loopback or private address "
            f"({', '.join(refused)}); such receivers are refused (WEBHOOK_ALLOW_PRIVATE)."
        )
    return None


# --- Endpoints --------------------------------------------------------------------------


def _validate(endpoint: WebhookEndpoint) -> None:
    try:
        endpoint.full_clean()
    except ValidationError as exc:
        errors = exc.message_dict
    else:
        errors = {}
    if "secret" not in errors and len(endpoint.secret) < MIN_SECRET_LENGTH:
        errors["secret"] = [f"A secret has at least {MIN_SECRET_LENGTH} characters."]
    if "url" not in errors:
        problem = webhook_url_problem(endpoint.url)
        if problem:
            errors["url"] = [problem]
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def webhook_endpoint_create(*, actor: Any, data: dict[str, Any]) -> WebhookEndpoint:
    """A new endpoint. Without a `secret` one is generated; the caller shows it once."""
    fields = {name: data[name] for name in ENDPOINT_FIELDS if name in data}
    if not fields.get("secret"):
        fields["secret"] = webhook_secret_new()
    endpoint = WebhookEndpoint(**fields)
    _validate(endpoint)
    endpoint.save()
    audit_event_record(
        actor=actor,
        action=AuditEvent.Action.WEBHOOK_CHANGED,
        target=endpoint,
        changes=changes_between({}, model_snapshot(endpoint)),
    )
    return endpoint


@transaction.atomic
def webhook_endpoint_update(
    *, actor: Any, endpoint: WebhookEndpoint, data: dict[str, Any]
) -> WebhookEndpoint:
    """Change an endpoint; a given `secret` replaces the stored one (rotation)."""
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    before = model_snapshot(endpoint)
    for name in ENDPOINT_FIELDS:
        if name in data and not (name == "secret" and not data[name]):
            setattr(endpoint, name, data[name])
    _validate(endpoint)
    endpoint.save()
    changes = changes_between(before, model_snapshot(endpoint))
    if "secret" in data and data["secret"] and data["secret"] != before.get("secret"):
        # Both sides are masked in a snapshot; the event still says the secret changed.
        changes["secret"] = {"old": None, "new": "rotated"}
    if changes:
        audit_event_record(
            actor=actor, action=AuditEvent.Action.WEBHOOK_CHANGED, target=endpoint, changes=changes
        )
    return endpoint


@transaction.atomic
def webhook_endpoint_delete(*, actor: Any, endpoint: WebhookEndpoint) -> None:
    """Delete an endpoint with its deliveries."""
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    audit_event_record(
        actor=actor,
        action=AuditEvent.Action.WEBHOOK_CHANGED,
        target=endpoint,
        changes=changes_between(model_snapshot(endpoint), {}),
    )
    endpoint.delete()


# --- Events -----------------------------------------------------------------------------


def payload_personal_keys(payload: Any) -> list[str]:
    """The keys anywhere in `payload` that name personal data (PERSONAL_KEYS)."""
    found: list[str] = []
    stack = [payload]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            found.extend(str(key) for key in item if str(key).lower() in PERSONAL_KEYS)
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return sorted(found)


def _enqueue(delivery_ids: list[int]) -> None:
    from experiments.tasks import deliver_webhooks

    for delivery_id in delivery_ids:
        enqueue_on_commit(deliver_webhooks, delivery_id=delivery_id)


def webhook_event_emit(
    *, event: str, payload: dict[str, Any], now: datetime.datetime | None = None
) -> list[int]:
    """One PENDING delivery of `event` per active endpoint subscribed to it, in the caller's
    transaction, each delivered by its own task once that transaction commits. Returns the
    deliveries' ids (none when nobody subscribes)."""
    if event not in WebhookEvent.values or event == WebhookEvent.PING:
        raise ValueError(f"Unknown webhook event {event!r}.")
    personal = payload_personal_keys(payload)
    if personal:
        raise ValueError(f"Webhook payloads carry no personal data; found {personal}.")
    # Endpoints are few: filtering their event lists here works on every database.
    endpoints = [
        endpoint
        for endpoint in WebhookEndpoint.objects.filter(is_active=True).only("id", "events")
        if isinstance(endpoint.events, list) and event in endpoint.events
    ]
    if not endpoints:
        return []
    due = now or timezone.now()
    created = WebhookDelivery.objects.bulk_create(
        [
            WebhookDelivery(endpoint=endpoint, event=event, payload=payload, next_attempt_at=due)
            for endpoint in endpoints
        ]
    )
    ids = [delivery.pk for delivery in created]
    _enqueue(ids)
    return ids


def experiment_webhook_payload(
    experiment: Experiment, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """What every experiment.* event carries: ids, names and states, never a learner."""
    variant = experiment.winning_variant if experiment.winning_variant_id else None
    winner = variant.key if variant is not None else None
    return {
        "experiment": {
            "id": experiment.pk,
            "name": experiment.name,
            "context": experiment.context,
            "type": experiment.experiment_type,
            "status": experiment.status,
            "winner": winner,
        },
        **(extra or {}),
    }


def experiment_event_emit(
    *, event: str, experiment: Experiment, extra: dict[str, Any] | None = None
) -> list[int]:
    """Emit an experiment.* event (started, completed, cancelled, shipped, srm_detected,
    winner_found); `extra` adds event-specific fields, e.g. {"srm_p_value": 0.0002} or
    {"rollout": {"id": 3, "strategy": "balanced"}}."""
    return webhook_event_emit(event=event, payload=experiment_webhook_payload(experiment, extra))


def holdout_event_emit(*, holdout: Any) -> list[int]:
    """Emit holdout.changed for a Holdout (DESIGN.md §3): its id, name, contexts, percent and
    whether it is active."""
    return webhook_event_emit(
        event=WebhookEvent.HOLDOUT_CHANGED,
        payload={
            "holdout": {
                "id": holdout.pk,
                "name": holdout.name,
                "contexts": list(holdout.contexts or []),
                "percent": holdout.percent,
                "is_active": holdout.is_active,
            }
        },
    )


def user_erased_event_emit(*, user_id: int) -> list[int]:
    """Emit user.erased with the erased user's Attune id only (the row itself is gone)."""
    return webhook_event_emit(event=WebhookEvent.USER_ERASED, payload={"user": {"id": user_id}})


# --- Delivery ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ClaimedAttempt:
    delivery_id: int
    number: int  # the attempt being made, 1 for the first
    max_attempts: int
    url: str
    secret: str
    event: str
    body: bytes


@dataclass(frozen=True)
class AttemptResult:
    response_code: int | None
    error: str

    @property
    def delivered(self) -> bool:
        return self.response_code is not None and 200 <= self.response_code < 300


def delivery_body(delivery: WebhookDelivery) -> bytes:
    """The JSON document POSTed: the delivery's id, event and time, and the event's data."""
    return webhooks.body_encode(
        {
            "id": delivery.pk,
            "event": delivery.event,
            "created_at": delivery.created_at.isoformat(),
            "data": delivery.payload,
        }
    )


def _lease(timeout: float) -> datetime.timedelta:
    # Connecting, sending and answering may each take the timeout; a minute to spare.
    return datetime.timedelta(seconds=3 * timeout + 60)


def webhook_delivery_claim(
    *, now: datetime.datetime, delivery_id: int | None = None
) -> ClaimedAttempt | None:
    """Claim a due delivery (`delivery_id`, or the longest-due one) for one attempt, or None
    when it is not due, done, or claimed by another worker."""
    due = (
        Q(status=Status.PENDING, next_attempt_at__lte=now)
        & (Q(endpoint__is_active=True) | Q(event=WebhookEvent.PING))
        & (Q(pk=delivery_id) if delivery_id is not None else Q())
    )
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("endpoint")
            .filter(due)
            .order_by("next_attempt_at", "id")
            .first()
        )
        if delivery is None:
            return None
        number = delivery.attempts + 1
        # Compare-and-set: only one claimant counts this attempt (SQLite has no row locks).
        claimed = WebhookDelivery.objects.filter(
            pk=delivery.pk, status=Status.PENDING, attempts=delivery.attempts
        ).update(
            attempts=F("attempts") + 1,
            next_attempt_at=now + _lease(settings.WEBHOOK_TIMEOUT_SECONDS),
            updated_at=timezone.now(),
        )
    if not claimed:
        return None
    return ClaimedAttempt(
        delivery_id=delivery.pk,
        number=number,
        max_attempts=1 if delivery.event == WebhookEvent.PING else webhooks.MAX_ATTEMPTS,
        url=delivery.endpoint.url,
        secret=delivery.endpoint.secret,
        event=delivery.event,
        body=delivery_body(delivery),
    )


def _excerpt(response: httpx.Response) -> str:
    received = b""
    for chunk in response.iter_raw():
        received += chunk
        if len(received) >= ERROR_EXCERPT_BYTES:
            break
    return received[:ERROR_EXCERPT_BYTES].decode("utf-8", errors="replace")


def webhook_request_send(attempt: ClaimedAttempt) -> AttemptResult:
    """POST one attempt, signed now; no database access. Redirects are not followed (a 3xx
    is an answer that did not accept the event) and the answer's body is read only as far
    as the error excerpt."""
    problem = webhook_url_problem(attempt.url)  # again: DNS may have changed since
    if problem:
        return AttemptResult(None, problem)
    timeout = settings.WEBHOOK_TIMEOUT_SECONDS
    headers = webhooks.request_headers(
        secret=attempt.secret,
        event=attempt.event,
        delivery_id=attempt.delivery_id,
        body=attempt.body,
        timestamp=int(time.time()),
    )
    try:
        with (
            httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client,
            client.stream("POST", attempt.url, content=attempt.body, headers=headers) as response,
        ):
            code = response.status_code
            excerpt = "" if 200 <= code < 300 else _excerpt(response)
    except httpx.TimeoutException:
        return AttemptResult(None, f"No answer within {timeout:g} s.")
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        return AttemptResult(None, f"{type(exc).__name__}: {exc}"[:ERROR_EXCERPT_BYTES])
    error = "" if 200 <= code < 300 else f"HTTP {code}: {excerpt}".strip()
    return AttemptResult(code, error)


def webhook_attempt_record(
    *, attempt: ClaimedAttempt, result: AttemptResult, now: datetime.datetime
) -> str | None:
    """Store how an attempt went: DELIVERED on a 2xx, else the next attempt after the
    backoff, or FAILED after the last. Returns the new status, or None when another worker
    has claimed the delivery since (its attempt is the one that counts)."""
    fields: dict[str, Any] = {
        "response_code": result.response_code,
        "last_error": result.error,
        "updated_at": timezone.now(),
    }
    if result.delivered:
        fields |= {"status": Status.DELIVERED, "delivered_at": now, "next_attempt_at": None}
    elif attempt.number >= attempt.max_attempts:
        fields |= {"status": Status.FAILED, "next_attempt_at": None}
    else:
        delay = webhooks.retry_delay_seconds(attempt.number)
        fields |= {"next_attempt_at": now + datetime.timedelta(seconds=delay)}
    with transaction.atomic():
        updated = WebhookDelivery.objects.filter(
            pk=attempt.delivery_id, status=Status.PENDING, attempts=attempt.number
        ).update(**fields)
    if not updated:
        return None
    if not result.delivered:
        logger.info(
            "webhook delivery %s attempt %s failed: %s",
            attempt.delivery_id,
            attempt.number,
            result.error,
        )
    return str(fields.get("status", Status.PENDING))


def webhook_delivery_attempt(
    *, delivery_id: int | None = None, now: datetime.datetime | None = None
) -> str | None:
    """One attempt at one due delivery (`delivery_id`, or the longest-due): claim, POST,
    record. Returns the delivery's status afterwards, or None when nothing was claimed.
    Runs no transaction across the POST; call it outside one."""
    attempt = webhook_delivery_claim(now=now or timezone.now(), delivery_id=delivery_id)
    if attempt is None:
        return None
    result = webhook_request_send(attempt)
    return webhook_attempt_record(attempt=attempt, result=result, now=now or timezone.now())


def webhook_deliveries_dispatch(
    *, now: datetime.datetime | None = None, limit: int | None = None
) -> dict[str, int]:
    """The periodic run: hand every due delivery (retries, and those whose enqueueing was
    lost) to a task of its own. A delivery handed out twice is attempted once: the claim
    decides."""
    from experiments.selectors import webhook_delivery_due_ids
    from experiments.tasks import deliver_webhooks

    ids = webhook_delivery_due_ids(
        now=now or timezone.now(), limit=limit or settings.WEBHOOK_DISPATCH_BATCH
    )
    for delivery_id in ids:
        deliver_webhooks.delay(delivery_id=delivery_id)
    return {"dispatched": len(ids)}


def webhook_deliveries_deliver_due(
    *, now: datetime.datetime | None = None, limit: int | None = None
) -> dict[str, int]:
    """Attempt due deliveries in this process, one after another, each its own unit (the
    operator's `manage.py deliver_webhooks`; safe beside running workers)."""
    counts = {"delivered": 0, "retrying": 0, "failed": 0}
    for _ in range(limit or settings.WEBHOOK_DISPATCH_BATCH):
        status = webhook_delivery_attempt(now=now)
        if status is None:
            break
        outcome = {"DELIVERED": "delivered", "FAILED": "failed"}
        key = outcome.get(status, "retrying")
        counts[key] += 1
    return counts


@transaction.atomic
def webhook_delivery_retry(
    *, actor: Any, delivery: WebhookDelivery, now: datetime.datetime | None = None
) -> WebhookDelivery:
    """Attempt a PENDING or FAILED delivery now (a FAILED one gets one more attempt)."""
    delivery = WebhookDelivery.objects.select_for_update().get(pk=delivery.pk)
    if delivery.status == Status.DELIVERED:
        raise ConflictError(
            f"Delivery {delivery.pk} was delivered at {delivery.delivered_at:%Y-%m-%d %H:%M}.",
            code="already_delivered",
        )
    before = model_snapshot(delivery)
    delivery.status = Status.PENDING
    delivery.next_attempt_at = now or timezone.now()
    delivery.save(update_fields=["status", "next_attempt_at", "updated_at"])
    audit_event_record(
        actor=actor,
        action=AuditEvent.Action.WEBHOOK_RETRIED,
        target=delivery,
        changes=changes_between(before, model_snapshot(delivery)),
    )
    _enqueue([delivery.pk])
    return delivery


def webhook_endpoint_ping(*, actor: Any, endpoint: WebhookEndpoint) -> WebhookDelivery:
    """Send a `ping` delivery to `endpoint` now and return it with its outcome: one attempt,
    DELIVERED or FAILED, never retried. Must not run inside a transaction (it POSTs)."""
    with transaction.atomic():
        delivery = WebhookDelivery.objects.create(
            endpoint=endpoint,
            event=WebhookEvent.PING,
            payload={
                "endpoint": {"id": endpoint.pk, "name": str(endpoint)},
                "message": "A test delivery from Attune.",
            },
            next_attempt_at=timezone.now(),
        )
    status = webhook_delivery_attempt(delivery_id=delivery.pk)
    logger.info(
        "webhook ping %s to endpoint %s by %s: %s",
        delivery.pk,
        endpoint.pk,
        getattr(actor, "pk", None),
        status,
    )
    delivery.refresh_from_db()
    return delivery
