"""A real worker delivers a signed webhook to a local HTTP receiver (DESIGN.md §3, §6)."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from experiments.models import WebhookDelivery, WebhookEvent
from experiments.services import webhooks as service
from experiments.services.experiments import experiment_start
from experiments.tasks import deliver_webhooks
from experiments.webhooks import verify_signature
from tests.experiments.factories import load_catalog, make_experiment

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


class _Receiver(BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        type(self).received.append((dict(self.headers.items()), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:  # quiet
        pass


def test_worker__delivers_a_signed_event_to_a_local_receiver(worker_factory):
    load_catalog()
    _Receiver.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        endpoint = service.webhook_endpoint_create(
            actor=None,
            data={
                "name": "Local receiver",
                "url": f"http://127.0.0.1:{server.server_address[1]}/hooks",
                "events": [WebhookEvent.EXPERIMENT_STARTED],
            },
        )
        experiment = make_experiment(start=False, name="Delivered")
        experiment_start(actor=None, experiment=experiment)  # emits experiment.started
        delivery = WebhookDelivery.objects.get(endpoint=endpoint)
        worker = worker_factory().start()
        result = deliver_webhooks.apply_async(
            kwargs={"delivery_id": delivery.pk}, queue=worker.queue, ignore_result=False
        ).get(timeout=60)
        assert result
        delivery.refresh_from_db()
        assert delivery.status == WebhookDelivery.Status.DELIVERED, delivery.last_error
        ((headers, body),) = _Receiver.received
        assert headers["Attune-Event"] == "experiment.started"
        assert headers["Attune-Delivery"] == str(delivery.pk)
        assert verify_signature(endpoint.secret, headers["Attune-Signature"], body)
        assert not verify_signature("another-secret-value", headers["Attune-Signature"], body)
        payload = json.loads(body)
        assert (payload["event"], payload["data"]["experiment"]["name"]) == (
            "experiment.started",
            "Delivered",
        )
    finally:
        server.shutdown()
        server.server_close()
