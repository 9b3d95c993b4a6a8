"""Signed webhooks (DESIGN.md §3, §6, §7, §10), against a real HTTP receiver on 127.0.0.1.

Time is driven by passing `now` (the retry schedule) and by a short receiver timeout; no test
sleeps and none asserts how fast anything was."""

import datetime
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from config.celery_app import app, beat_schedule
from config.errors import ConflictError
from experiments import tasks, webhooks
from experiments.models import WebhookDelivery, WebhookEndpoint, WebhookEvent
from experiments.services import webhooks as service
from experiments.services.experiments import (
    experiment_cancel,
    experiment_complete,
    experiment_start,
)
from logs.models import AuditEvent
from logs.services import MASK
from tests.conftest import assert_error_shape, token_client
from tests.experiments.factories import make_experiment
from tests.personalization.factories import ServiceAccountFactory, StaffFactory, UserFactory

Status = WebhookDelivery.Status
T0 = datetime.datetime(2025, 3, 2, 12, 0, tzinfo=datetime.UTC)
WEBHOOKS = "/api/v1/webhooks/"


# --- The receiver -----------------------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """An HTTP server on 127.0.0.1 (an ephemeral port) that records every request and
    answers `status`, or, while `hang` is set, holds the request until `release` is set."""

    status: int = 200
    hang: bool = False
    requests: list[Received] = field(default_factory=list)
    hanging: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def start(self) -> "Receiver":
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.requests.append(Received(self.path, dict(self.headers.items()), body))
                if receiver.hang:
                    receiver.hanging.set()
                    receiver.release.wait(timeout=10)
                try:
                    self.send_response(receiver.status)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"no" if receiver.status >= 300 else b"ok")
                except OSError:  # the client gave up waiting
                    pass

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        server = self.server
        threading.Thread(
            target=lambda: server.serve_forever(poll_interval=0.05), daemon=True
        ).start()
        return self

    def stop(self) -> None:
        self.release.set()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver().start()
    yield running
    running.stop()


@pytest.fixture
def other_receiver() -> Iterator[Receiver]:
    running = Receiver().start()
    yield running
    running.stop()


def endpoint_for(
    receiver: Receiver, events: list[str] | None = None, **data: Any
) -> WebhookEndpoint:
    return service.webhook_endpoint_create(
        actor=None,
        data={
            "name": data.pop("name", "Receiver"),
            "url": receiver.url,
            "events": events or [WebhookEvent.EXPERIMENT_STARTED],
            **data,
        },
    )


def emit_one(endpoint: WebhookEndpoint, **payload: Any) -> WebhookDelivery:
    """A PENDING delivery to `endpoint` alone, due at T0."""
    return WebhookDelivery.objects.create(
        endpoint=endpoint,
        event=WebhookEvent.EXPERIMENT_STARTED,
        payload=payload or {"experiment": {"id": 7, "name": "Checkout"}},
        next_attempt_at=T0,
    )


# --- The signature (pure) ---------------------------------------------------------------


def test_verify_signature__genuine_and_fresh__accepted():
    body = webhooks.body_encode({"id": 1, "event": "ping"})
    header = webhooks.signature_header("s3cret-s3cret-s3cret", body, timestamp=1_000_000)
    assert verify(header, body, now=1_000_000)
    assert verify(header, body.decode(), now=1_000_000 + 300)  # at the edge of tolerance
    assert verify(header, body, now=1_000_000 - 300)


def verify(header: str | None, body: bytes | str, now: float, **kwargs: Any) -> bool:
    return webhooks.verify_signature("s3cret-s3cret-s3cret", header, body, now, **kwargs)


def test_verify_signature__forged_tampered_stale_or_malformed__rejected():
    body = b'{"id":1}'
    header = webhooks.signature_header("s3cret-s3cret-s3cret", body, timestamp=1_000_000)
    assert not webhooks.verify_signature("another-secret-entirely", header, body, 1_000_000)
    assert not verify(header, b'{"id":2}', now=1_000_000)
    assert not verify(header, body, now=1_000_000 + 301)  # older than 5 minutes
    assert not verify(header, body, now=1_000_000 - 301)  # from the future
    assert not verify(header, body, now=1_000_000 + 60, tolerance=30)
    for malformed in [None, "", "v1=abc", "t=1000000", "t=soon,v1=abc", "garbage"]:
        assert not verify(malformed, body, now=1_000_000), malformed


def test_signature__is_hmac_sha256_of_timestamp_dot_body():
    import hashlib
    import hmac

    body = b'{"a":1}'
    expected = hmac.new(b"key-key-key-key-key", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert webhooks.signature_header("key-key-key-key-key", body, 1_700_000_000) == (
        f"t=1700000000,v1={expected}"
    )


def test_retry_delay__doubles_from_one_minute__capped_at_six_hours():
    delays = [webhooks.retry_delay_seconds(n) for n in range(1, 10)]
    assert delays == [60, 120, 240, 480, 960, 1920, 3840, 7680, 15360]
    assert webhooks.retry_delay_seconds(10) == 21600
    assert webhooks.retry_delay_seconds(60) == 21600


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.5.4", False),
        ("192.168.0.10", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),  # noqa: S104
        ("::1", False),
        ("fd00::1", False),
        ("::ffff:127.0.0.1", False),
        ("224.0.0.1", False),
        ("not-an-address", False),
        ("93.184.216.34", True),
        ("2606:4700:4700::1111", True),
    ],
)
def test_address_is_public(address, public):
    assert webhooks.address_is_public(address) is public


# --- Delivery ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_delivery__2xx__delivered_signed_with_the_headers(receiver):
    endpoint = endpoint_for(receiver)
    delivery = emit_one(endpoint)

    assert service.webhook_delivery_attempt(delivery_id=delivery.pk, now=T0) == Status.DELIVERED

    [request] = receiver.requests
    headers = {name.lower(): value for name, value in request.headers.items()}
    assert headers["attune-event"] == "experiment.started"
    assert headers["attune-delivery"] == str(delivery.pk)
    assert headers["content-type"] == "application/json"
    assert webhooks.verify_signature(endpoint.secret, headers["attune-signature"], request.body)
    assert not webhooks.verify_signature(
        "wrong-secret-wrong", headers["attune-signature"], request.body
    )
    document = json.loads(request.body)
    assert document["id"] == delivery.pk
    assert document["event"] == "experiment.started"
    assert document["data"] == {"experiment": {"id": 7, "name": "Checkout"}}
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.response_code) == (
        Status.DELIVERED,
        1,
        200,
    )
    assert delivery.delivered_at == T0
    assert delivery.next_attempt_at is None
    # Done: another run finds nothing to do.
    assert service.webhook_delivery_attempt(delivery_id=delivery.pk, now=T0) is None
    assert len(receiver.requests) == 1


@pytest.mark.django_db
def test_delivery__500__retried_after_backoff_until_2xx(receiver):
    receiver.status = 500
    delivery = emit_one(endpoint_for(receiver))

    assert service.webhook_delivery_attempt(delivery_id=delivery.pk, now=T0) == Status.PENDING
    delivery.refresh_from_db()
    assert (delivery.attempts, delivery.response_code) == (1, 500)
    assert delivery.last_error.startswith("HTTP 500")
    assert delivery.next_attempt_at == T0 + datetime.timedelta(minutes=1)

    # Not due before its time.
    early = T0 + datetime.timedelta(seconds=59)
    assert service.webhook_delivery_attempt(delivery_id=delivery.pk, now=early) is None
    assert len(receiver.requests) == 1

    second = T0 + datetime.timedelta(minutes=1)
    assert service.webhook_delivery_attempt(delivery_id=delivery.pk, now=second) == Status.PENDING
    delivery.refresh_from_db()
    assert delivery.next_attempt_at == second + datetime.timedelta(minutes=2)

    receiver.status = 204
    third = delivery.next_attempt_at
    assert service.webhook_delivery_attempt(delivery_id=delivery.pk, now=third) == Status.DELIVERED
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.response_code) == (
        Status.DELIVERED,
        3,
        204,
    )
    assert delivery.last_error == ""
    assert len(receiver.requests) == 3
    # Each attempt is signed afresh; the delivery id stays.
    assert {r.headers["Attune-Delivery"] for r in receiver.requests} == {str(delivery.pk)}


@pytest.mark.django_db
def test_delivery__no_answer_within_the_timeout__retried(receiver, settings):
    settings.WEBHOOK_TIMEOUT_SECONDS = 0.5
    receiver.hang = True
    delivery = emit_one(endpoint_for(receiver))

    assert service.webhook_delivery_attempt(delivery_id=delivery.pk, now=T0) == Status.PENDING
    delivery.refresh_from_db()
    assert delivery.response_code is None
    assert delivery.last_error == "No answer within 0.5 s."
    assert delivery.next_attempt_at == T0 + datetime.timedelta(minutes=1)

    receiver.hang = False
    receiver.release.set()
    later = T0 + datetime.timedelta(minutes=1)
    assert service.webhook_delivery_attempt(delivery_id=delivery.pk, now=later) == Status.DELIVERED


@pytest.mark.django_db
def test_delivery__ten_failed_attempts__failed_for_good(receiver):
    receiver.status = 503
    delivery = emit_one(endpoint_for(receiver))
    now = T0
    gaps = []
    for attempt in range(1, 11):
        status = service.webhook_delivery_attempt(delivery_id=delivery.pk, now=now)
        delivery.refresh_from_db()
        assert delivery.attempts == attempt
        if attempt < 10:
            assert status == Status.PENDING
            gaps.append((delivery.next_attempt_at - now).total_seconds())
            now = delivery.next_attempt_at
    assert status == Status.FAILED
    assert (delivery.status, delivery.next_attempt_at, delivery.response_code) == (
        Status.FAILED,
        None,
        503,
    )
    assert gaps == [60 * 2**n for n in range(9)]
    assert len(receiver.requests) == 10
    far_later = now + datetime.timedelta(days=30)
    assert service.webhook_delivery_attempt(delivery_id=delivery.pk, now=far_later) is None
    assert len(receiver.requests) == 10


@pytest.mark.django_db
def test_delivery__refused_connection__retried(receiver):
    delivery = emit_one(endpoint_for(receiver))
    receiver.stop()  # nothing listens on the port any more
    assert service.webhook_delivery_attempt(delivery_id=delivery.pk, now=T0) == Status.PENDING
    delivery.refresh_from_db()
    assert delivery.response_code is None
    assert delivery.last_error.startswith("ConnectError")


@pytest.mark.django_db
def test_delivery__redirect__not_followed_and_retried(receiver):
    receiver.status = 302
    delivery = emit_one(endpoint_for(receiver))
    assert service.webhook_delivery_attempt(delivery_id=delivery.pk, now=T0) == Status.PENDING
    delivery.refresh_from_db()
    assert delivery.response_code == 302


@pytest.mark.django_db(transaction=True)
def test_delivery__hanging_endpoint__does_not_hold_up_another(receiver, other_receiver, settings):
    """While one receiver holds its request, another endpoint's delivery goes through: each
    delivery is its own unit (claim, POST, record), and no transaction spans the POST."""
    settings.WEBHOOK_TIMEOUT_SECONDS = 5
    receiver.hang = True
    hanging = endpoint_for(receiver, name="Hangs")
    healthy = endpoint_for(other_receiver, name="Healthy")
    ids = service.webhook_event_emit(
        event=WebhookEvent.EXPERIMENT_STARTED, payload={"experiment": {"id": 1}}
    )
    slow = WebhookDelivery.objects.get(pk__in=ids, endpoint=hanging)
    fast = WebhookDelivery.objects.get(pk__in=ids, endpoint=healthy)
    outcome: dict[str, Any] = {}

    def attempt_slow() -> None:
        try:
            outcome["status"] = service.webhook_delivery_attempt(delivery_id=slow.pk)
        finally:
            connection.close()

    worker = threading.Thread(target=attempt_slow)
    worker.start()
    try:
        assert receiver.hanging.wait(timeout=5), "the hanging receiver got no request"
        assert service.webhook_delivery_attempt(delivery_id=fast.pk) == Status.DELIVERED
        slow.refresh_from_db()
        assert slow.status == Status.PENDING  # still in flight: claimed, not answered
        assert slow.attempts == 1
        assert "status" not in outcome
    finally:
        receiver.release.set()
        worker.join(timeout=10)
    assert outcome["status"] == Status.DELIVERED
    assert len(other_receiver.requests) == 1


@pytest.mark.django_db
def test_emit__one_task_per_delivery_after_commit(
    receiver, other_receiver, monkeypatch, django_capture_on_commit_callbacks
):
    endpoint_for(receiver)
    endpoint_for(other_receiver)
    endpoint_for(other_receiver, events=[WebhookEvent.USER_ERASED])  # not subscribed
    endpoint_for(receiver, is_active=False)  # inactive
    queued: list[dict[str, Any]] = []
    monkeypatch.setattr(tasks.deliver_webhooks, "delay", lambda **kw: queued.append(kw))

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        ids = service.webhook_event_emit(
            event=WebhookEvent.EXPERIMENT_STARTED, payload={"experiment": {"id": 1}}
        )
    assert len(ids) == 2
    assert queued == []  # nothing before the commit
    for callback in callbacks:
        callback()
    assert sorted(kw["delivery_id"] for kw in queued) == sorted(ids)


@pytest.mark.django_db
def test_dispatch__due_deliveries__one_task_each(receiver, other_receiver, monkeypatch):
    first = emit_one(endpoint_for(receiver))
    second = emit_one(endpoint_for(other_receiver))
    paused = endpoint_for(other_receiver, name="Paused")
    waiting = emit_one(paused)
    service.webhook_endpoint_update(actor=None, endpoint=paused, data={"is_active": False})
    done = emit_one(endpoint_for(receiver, name="Done"))
    service.webhook_delivery_attempt(delivery_id=done.pk, now=T0)
    queued: list[dict[str, Any]] = []
    monkeypatch.setattr(tasks.deliver_webhooks, "delay", lambda **kw: queued.append(kw))

    assert service.webhook_deliveries_dispatch(now=T0 - datetime.timedelta(seconds=1)) == {
        "dispatched": 0
    }
    assert tasks.deliver_webhooks.run() == {"dispatched": 2}  # the periodic run, at `now`

    assert sorted(kw["delivery_id"] for kw in queued) == sorted([first.pk, second.pk])
    assert waiting.pk not in [kw["delivery_id"] for kw in queued]


@pytest.mark.django_db
def test_claim__a_claimed_delivery__not_claimed_again(receiver):
    delivery = emit_one(endpoint_for(receiver))
    claim = service.webhook_delivery_claim(now=T0, delivery_id=delivery.pk)
    assert claim is not None
    assert claim.number == 1
    # In flight: a concurrent run (or the periodic dispatch) does not take it.
    assert service.webhook_delivery_claim(now=T0, delivery_id=delivery.pk) is None
    assert service.webhook_delivery_claim(now=T0) is None
    # A worker that died mid-attempt: after the lease, the delivery is attempted again.
    lease_over = T0 + datetime.timedelta(minutes=10)
    again = service.webhook_delivery_claim(now=lease_over, delivery_id=delivery.pk)
    assert again is not None
    assert again.number == 2
    # The dead worker's late result does not count.
    late = service.AttemptResult(200, "")
    assert service.webhook_attempt_record(attempt=claim, result=late, now=lease_over) is None
    delivery.refresh_from_db()
    assert delivery.status == Status.PENDING


@pytest.mark.django_db
def test_task_and_command__deliver_the_due(receiver):
    delivery = emit_one(endpoint_for(receiver))
    assert tasks.deliver_webhooks.run(delivery_id=delivery.pk) == {"attempted": 1}
    assert tasks.deliver_webhooks.run(delivery_id=delivery.pk) == {"attempted": 0}
    second = emit_one(endpoint_for(receiver, name="Second"))
    WebhookDelivery.objects.filter(pk=second.pk).update(next_attempt_at=timezone.now())
    out = StringIO()
    call_command("deliver_webhooks", stdout=out)
    assert "Delivered 1" in out.getvalue()
    second.refresh_from_db()
    assert second.status == Status.DELIVERED
    assert len(receiver.requests) == 2


@pytest.mark.django_db
def test_command__one_delivery_or_handed_to_the_workers(receiver, monkeypatch):
    delivery = emit_one(endpoint_for(receiver))
    queued: list[dict[str, Any]] = []
    monkeypatch.setattr(tasks.deliver_webhooks, "delay", lambda **kw: queued.append(kw))
    out = StringIO()
    call_command("deliver_webhooks", "--enqueue", stdout=out)
    assert "Handed 1" in out.getvalue()
    assert queued == [{"delivery_id": delivery.pk}]
    call_command("deliver_webhooks", "--id", str(delivery.pk), stdout=out)
    assert f"Delivery {delivery.pk}: DELIVERED" in out.getvalue()
    assert str(WebhookDelivery.objects.get(pk=delivery.pk)) == (
        "Experiment started to Receiver (Delivered)"
    )


def test_task__registered_on_beat_every_minute_with_the_reliability_options():
    app.loader.import_default_modules()
    assert "experiments.deliver_webhooks" in app.tasks
    entry = beat_schedule()["experiments.deliver_webhooks"]
    assert entry == {"task": "experiments.deliver_webhooks", "schedule": 60.0}
    task = tasks.deliver_webhooks
    assert task.acks_late is True
    assert task.reject_on_worker_lost is True
    assert task.soft_time_limit < task.time_limit


@pytest.mark.django_db
def test_retry_now__failed_delivery__pending_again_and_audited(receiver):
    receiver.status = 500
    delivery = emit_one(endpoint_for(receiver))
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        status=Status.FAILED, attempts=10, next_attempt_at=None
    )
    staff = StaffFactory()
    now = timezone.now()
    service.webhook_delivery_retry(actor=staff, delivery=delivery, now=now)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.next_attempt_at) == (Status.PENDING, now)
    assert AuditEvent.objects.filter(
        action=AuditEvent.Action.WEBHOOK_RETRIED, target_id=str(delivery.pk), actor=staff
    ).exists()
    # One more attempt; failing, it is final again.
    assert service.webhook_delivery_attempt(delivery_id=delivery.pk, now=now) == Status.FAILED
    receiver.status = 200
    service.webhook_delivery_retry(actor=staff, delivery=delivery, now=now)
    assert service.webhook_delivery_attempt(delivery_id=delivery.pk, now=now) == Status.DELIVERED
    with pytest.raises(ConflictError):
        service.webhook_delivery_retry(actor=staff, delivery=delivery)


# --- Events from the experiment lifecycle ------------------------------------------------


@pytest.mark.django_db
def test_experiment_lifecycle__emits_started_completed_cancelled(
    strategy_catalog, receiver, other_receiver
):
    lifecycle = [
        WebhookEvent.EXPERIMENT_STARTED,
        WebhookEvent.EXPERIMENT_COMPLETED,
        WebhookEvent.EXPERIMENT_CANCELLED,
    ]
    everything = endpoint_for(receiver, events=lifecycle)
    completions = endpoint_for(other_receiver, events=[WebhookEvent.EXPERIMENT_COMPLETED])

    shipped = make_experiment(context="MISSION", start=False, name="Onboarding pace")
    experiment_start(actor=None, experiment=shipped)
    experiment_complete(actor=None, experiment=shipped, force=True)
    dropped = make_experiment(context="CONTENT", start=False, name="Reading length")
    experiment_start(actor=None, experiment=dropped)
    experiment_cancel(actor=None, experiment=dropped)
    later = make_experiment(context="SESSION", start=False, name="Scheduled")
    tomorrow = timezone.now() + datetime.timedelta(days=1)
    experiment_start(actor=None, experiment=later, start_date=tomorrow)  # SCHEDULED: no event

    sent = list(
        WebhookDelivery.objects.filter(endpoint=everything)
        .order_by("id")
        .values_list("event", "payload")
    )
    assert [event for event, _ in sent] == [
        "experiment.started",
        "experiment.completed",
        "experiment.started",
        "experiment.cancelled",
    ]
    assert sent[1][1] == {
        "experiment": {
            "id": shipped.pk,
            "name": "Onboarding pace",
            "context": "MISSION",
            "type": "AB_TEST",
            "status": "COMPLETED",
            "winner": None,
        }
    }
    assert sent[3][1]["experiment"]["status"] == "CANCELLED"
    assert list(
        WebhookDelivery.objects.filter(endpoint=completions).values_list("event", flat=True)
    ) == ["experiment.completed"]
    # And they arrive.
    for delivery_id in WebhookDelivery.objects.order_by("id").values_list("id", flat=True):
        assert service.webhook_delivery_attempt(delivery_id=delivery_id) == Status.DELIVERED
    assert [r.headers["Attune-Event"] for r in receiver.requests] == [e for e, _ in sent]


@pytest.mark.django_db
def test_experiment_start__rolled_back__no_delivery(strategy_catalog, receiver):
    endpoint_for(receiver)
    first = make_experiment(context="MISSION", name="Running")
    blocked = make_experiment(context="MISSION", start=False, name="Blocked")
    with pytest.raises(ConflictError):
        experiment_start(actor=None, experiment=blocked)  # the context is busy
    assert list(WebhookDelivery.objects.values_list("payload__experiment__id", flat=True)) == [
        first.pk
    ]


@pytest.mark.django_db
def test_payloads__carry_no_personal_data(strategy_catalog, receiver):
    endpoint_for(receiver, events=[WebhookEvent.EXPERIMENT_STARTED, WebhookEvent.USER_ERASED])
    learner = UserFactory(
        username="ada-lovelace", email="ada@example.org", external_id="client-ada-42"
    )
    staff = StaffFactory(username="staff-grace", email="grace@example.org")
    experiment = make_experiment(context="MISSION", start=False, name="Pacing")
    experiment_start(actor=staff, experiment=experiment)
    service.user_erased_event_emit(user_id=learner.pk)
    for delivery_id in WebhookDelivery.objects.order_by("id").values_list("id", flat=True):
        service.webhook_delivery_attempt(delivery_id=delivery_id)

    assert len(receiver.requests) == 2
    for request in receiver.requests:
        text = request.body.decode()
        for personal in ("ada-lovelace", "ada@example.org", "client-ada-42", "staff-grace", "@"):
            assert personal not in text, (personal, text)
        assert service.payload_personal_keys(json.loads(text)) == []
    erased = json.loads(receiver.requests[1].body)
    assert erased["data"] == {"user": {"id": learner.pk}}

    with pytest.raises(ValueError, match="personal data"):
        service.webhook_event_emit(
            event=WebhookEvent.USER_ERASED, payload={"user": {"id": 1, "email": "a@b.c"}}
        )
    with pytest.raises(ValueError, match="Unknown webhook event"):
        service.webhook_event_emit(event="experiment.exploded", payload={})


# --- URLs ---------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hook",
        "http://localhost/hook",
        "https://10.0.0.5/hook",
        "http://[::1]/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::ffff:192.168.1.1]/hook",
    ],
)
def test_api_create__private_url_without_allow_private__400_naming_url(url, settings):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    response = token_client(StaffFactory()).post(
        WEBHOOKS, {"url": url, "events": ["experiment.started"]}, format="json"
    )
    assert_error_shape(response, 400, attr="url")
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.django_db
def test_url__host_resolving_to_a_private_address__refused(settings, monkeypatch):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    monkeypatch.setattr(service, "_addresses", lambda host, port: {"93.184.216.34", "10.9.8.7"})
    problem = service.webhook_url_problem("https://hooks.example.com/attune")
    assert problem is not None
    assert "10.9.8.7" in problem
    monkeypatch.setattr(service, "_addresses", lambda host, port: {"93.184.216.34"})
    assert service.webhook_url_problem("https://hooks.example.com/attune") is None


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url", ["ftp://93.184.216.34/hook", "not a url", "http://", "javascript:alert(1)", ""]
)
def test_api_create__not_an_http_url__400_naming_url(url):
    response = token_client(StaffFactory()).post(
        WEBHOOKS, {"url": url, "events": ["experiment.started"]}, format="json"
    )
    assert_error_shape(response, 400, attr="url")


@pytest.mark.django_db
def test_api_create__public_address__accepted_without_allow_private(settings):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    response = token_client(StaffFactory()).post(
        WEBHOOKS, {"url": "https://93.184.216.34/hook", "events": ["user.erased"]}, format="json"
    )
    assert response.status_code == 201, response.content


@pytest.mark.django_db
def test_delivery__address_private_by_now__refused_and_not_sent(receiver, settings):
    delivery = emit_one(endpoint_for(receiver))
    settings.WEBHOOK_ALLOW_PRIVATE = False
    assert service.webhook_delivery_attempt(delivery_id=delivery.pk, now=T0) == Status.PENDING
    delivery.refresh_from_db()
    assert "private address" in delivery.last_error
    assert receiver.requests == []


# --- API ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_api__staff_only(api_client):
    learner, service_account = UserFactory(), ServiceAccountFactory()
    body = {"url": "https://93.184.216.34/hook", "events": ["experiment.started"]}
    assert_error_shape(api_client.get(WEBHOOKS), 401)
    for caller in (learner, service_account):
        client = token_client(caller)
        assert_error_shape(client.get(WEBHOOKS), 403)
        assert_error_shape(client.post(WEBHOOKS, body, format="json"), 403)
    endpoint = service.webhook_endpoint_create(actor=None, data=body)
    for caller in (learner, service_account):
        client = token_client(caller)
        assert_error_shape(client.get(f"{WEBHOOKS}{endpoint.pk}/deliveries/"), 403)
        assert_error_shape(client.post(f"{WEBHOOKS}{endpoint.pk}/test/"), 403)
        assert_error_shape(client.delete(f"{WEBHOOKS}{endpoint.pk}/"), 403)
    assert WebhookEndpoint.objects.filter(pk=endpoint.pk).exists()


@pytest.mark.django_db
def test_api__secret_shown_once(receiver):
    staff = StaffFactory()
    client = token_client(staff)
    created = client.post(
        WEBHOOKS,
        {"name": "Warehouse", "url": receiver.url, "events": ["experiment.completed"]},
        format="json",
    )
    assert created.status_code == 201, created.content
    body = created.json()
    secret = body["secret"]
    assert len(secret) >= 32
    endpoint = WebhookEndpoint.objects.get(pk=body["id"])
    assert endpoint.secret == secret
    assert (body["name"], body["events"], body["is_active"]) == (
        "Warehouse",
        ["experiment.completed"],
        True,
    )

    answers = [
        client.get(WEBHOOKS),
        client.get(f"{WEBHOOKS}{endpoint.pk}/"),
        client.patch(f"{WEBHOOKS}{endpoint.pk}/", {"name": "Warehouse 2"}, format="json"),
        client.get(f"{WEBHOOKS}{endpoint.pk}/deliveries/"),
        client.post(f"{WEBHOOKS}{endpoint.pk}/test/"),
    ]
    for answer in answers:
        assert answer.status_code in {200, 201}, answer.content
        assert secret not in answer.content.decode()
        assert b'"secret"' not in answer.content
    # The audit trail never holds it either.
    for changes in AuditEvent.objects.values_list("changes", flat=True):
        assert secret not in json.dumps(changes)
    created_event = AuditEvent.objects.get(
        action=AuditEvent.Action.WEBHOOK_CHANGED, changes__url__old=None
    )
    assert created_event.actor == staff
    assert created_event.changes["secret"]["new"] == MASK


@pytest.mark.django_db
def test_api__own_secret_and_rotation(receiver):
    client = token_client(StaffFactory())
    created = client.post(
        WEBHOOKS,
        {"url": receiver.url, "events": ["user.erased"], "secret": "x" * 20},
        format="json",
    )
    assert created.json()["secret"] == "x" * 20
    pk = created.json()["id"]
    short = client.patch(f"{WEBHOOKS}{pk}/", {"secret": "short"}, format="json")
    assert_error_shape(short, 400, attr="secret")
    rotated = client.patch(f"{WEBHOOKS}{pk}/", {"secret": "y" * 24}, format="json")
    assert rotated.status_code == 200
    assert "secret" not in rotated.json()
    assert WebhookEndpoint.objects.get(pk=pk).secret == "y" * 24
    event = AuditEvent.objects.filter(action=AuditEvent.Action.WEBHOOK_CHANGED).latest("id")
    assert event.changes == {"secret": {"old": None, "new": "rotated"}}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "attr"),
    [
        ({"url": "https://93.184.216.34/h", "events": []}, "events"),
        ({"url": "https://93.184.216.34/h", "events": ["ping"]}, "events.0"),
        ({"url": "https://93.184.216.34/h", "events": ["user.erased", "user.erased"]}, "events"),
        ({"url": "https://93.184.216.34/h"}, "events"),
        ({"url": "https://93.184.216.34/h", "events": ["user.erased"], "owner": 1}, "owner"),
        ({"url": "https://93.184.216.34/h", "events": ["user.erased"], "name": "x" * 101}, "name"),
    ],
)
def test_api_create__invalid__400_naming_the_field(body, attr):
    response = token_client(StaffFactory()).post(WEBHOOKS, body, format="json")
    assert_error_shape(response, 400, attr=attr)


@pytest.mark.django_db
def test_api__update_delete_and_put(receiver):
    staff = StaffFactory()
    client = token_client(staff)
    endpoint = endpoint_for(receiver)
    url = f"{WEBHOOKS}{endpoint.pk}/"
    changed = client.patch(url, {"is_active": False, "events": ["user.erased"]}, format="json")
    assert changed.status_code == 200, changed.content
    assert (changed.json()["is_active"], changed.json()["events"]) == (False, ["user.erased"])
    assert client.put(url, {"url": receiver.url, "events": ["user.erased"]}).status_code == 405
    assert_error_shape(client.patch(url, {"url": "gopher://x"}, format="json"), 400, attr="url")
    assert client.delete(url).status_code == 204
    assert not WebhookEndpoint.objects.filter(pk=endpoint.pk).exists()
    assert_error_shape(client.delete(url), 404)
    deleted = AuditEvent.objects.filter(action=AuditEvent.Action.WEBHOOK_CHANGED).latest("id")
    assert (deleted.actor, deleted.target_id) == (staff, str(endpoint.pk))


@pytest.mark.django_db
def test_api_deliveries__paginated_newest_first(receiver, other_receiver):
    endpoint = endpoint_for(receiver)
    other = endpoint_for(other_receiver)
    ids = [emit_one(endpoint, experiment={"id": n}).pk for n in range(3)]
    emit_one(other)
    client = token_client(StaffFactory())
    page = client.get(f"{WEBHOOKS}{endpoint.pk}/deliveries/?page_size=2")
    assert page.status_code == 200
    body = page.json()
    assert body["count"] == 3
    assert [row["id"] for row in body["results"]] == ids[::-1][:2]
    row = body["results"][0]
    assert (row["status"], row["attempts"], row["endpoint"]) == ("PENDING", 0, endpoint.pk)
    assert_error_shape(client.get(f"{WEBHOOKS}999999/deliveries/"), 404)


@pytest.mark.django_db
def test_api_test__pings_now(receiver):
    endpoint = endpoint_for(receiver)
    client = token_client(StaffFactory())
    answer = client.post(f"{WEBHOOKS}{endpoint.pk}/test/")
    assert answer.status_code == 201, answer.content
    body = answer.json()
    assert (body["event"], body["status"], body["attempts"], body["response_code"]) == (
        "ping",
        "DELIVERED",
        1,
        200,
    )
    [request] = receiver.requests
    assert request.headers["Attune-Event"] == "ping"
    assert webhooks.verify_signature(
        endpoint.secret, request.headers["Attune-Signature"], request.body
    )

    receiver.status = 500
    failed = client.post(f"{WEBHOOKS}{endpoint.pk}/test/").json()
    assert (failed["status"], failed["attempts"], failed["response_code"]) == ("FAILED", 1, 500)
    assert_error_shape(client.post(f"{WEBHOOKS}999999/test/"), 404)
