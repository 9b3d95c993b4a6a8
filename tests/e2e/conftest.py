"""A real Celery worker on Redis and PostgreSQL for the end-to-end tests."""

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from celery.signals import after_task_publish
from django.conf import settings
from django.db import connection

from config import worker_liveness
from config.celery_app import app

BASE_DIR = Path(__file__).resolve().parents[2]


def _require_real_services() -> None:
    if connection.vendor != "postgresql" or not settings.REDIS_URL:
        pytest.skip("end-to-end tests need PostgreSQL and Redis (set DATABASE_URL and REDIS_URL)")


class Worker:
    """A `celery worker` subprocess consuming a queue of its own, on the test database."""

    def __init__(self, queue: str, log_path: Path):
        self.queue = queue
        self.name = f"e2e-{uuid.uuid4().hex[:8]}@localhost"
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> "Worker":
        """With the production broker settings: the visibility timeout of hours, and the
        liveness records that bring a dead worker's messages back (config/worker_liveness.py)."""
        db = connection.settings_dict
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("CELERY_", "WORKER_"))
        } | {
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "DATABASE_URL": (
                f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST'] or '127.0.0.1'}:"
                f"{db['PORT'] or 5432}/{db['NAME']}"
            ),
            "REDIS_URL": settings.REDIS_URL,
        }
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "--pool=solo",
                "--loglevel=INFO",
                f"--queues={self.queue}",
                f"--hostname={self.name}",
                "--include=tests.e2e.tasks",
                "--without-gossip",
                "--without-mingle",
            ],
            cwd=BASE_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited: {self.log_path.read_text()[-3000:]}")
            if app.control.ping(destination=[self.name], timeout=0.5):
                return self
        raise RuntimeError(f"worker did not answer: {self.log_path.read_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL: no shutdown, no acknowledgement, the transaction dies with the process."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def _forget(queue: str, workers: list[Worker], published: list[tuple[str, str]]) -> None:
    """Nothing of the test left on the broker: its queue, its bindings, its workers' liveness
    records, the unacknowledged messages of its queue (there should be none), and what the
    code under test enqueued on other queues (the rewards recompute after an ingest)."""
    with app.connection_for_write() as conn:
        channel = conn.default_channel
        client = channel.client
        for other in {routing_key for routing_key, _ in published if routing_key != queue}:
            ids = {task_id for routing_key, task_id in published if routing_key == other}
            for raw in client.lrange(other, 0, -1):
                if json.loads(raw)["headers"].get("id") in ids:
                    client.lrem(other, 1, raw)
        # Results the test asked for (ignore_result=False).
        if published:
            client.delete(*(f"celery-task-meta-{task_id}" for _, task_id in published))
        client.delete(
            queue, channel.keyprefix_queue % queue, channel.keyprefix_binding_permanent % queue
        )
        for name, raw in client.hscan_iter(channel.unacked_key):
            if json.loads(raw)[2] == queue:
                channel.qos._remove_from_indices(name).execute()
        prefixes = tuple(f"{worker.name}/" for worker in workers)
        names = [
            name
            for name in map(bytes.decode, client.zrange(worker_liveness.WORKERS_KEY, 0, -1))
            if name.startswith(prefixes)
        ]
        if names:
            client.zrem(worker_liveness.WORKERS_KEY, *names)
            client.hdel(worker_liveness.DELIVERIES_KEY, *names)


def unacked_of(queue: str) -> list[str]:
    """Delivery tags of the queue's messages that wait for an acknowledgement."""
    with app.connection_for_write() as conn:
        channel = conn.default_channel
        return [
            name.decode()
            for name, raw in channel.client.hscan_iter(channel.unacked_key)
            if json.loads(raw)[2] == queue
        ]


@pytest.fixture
def worker_factory(tmp_path) -> Iterator:
    _require_real_services()
    queue = f"e2e-{uuid.uuid4().hex[:8]}"
    workers: list[Worker] = []
    published: list[tuple[str, str]] = []

    def record(sender: object, headers: dict, routing_key: str, **kwargs: object) -> None:
        published.append((routing_key, headers["id"]))

    after_task_publish.connect(record, weak=False)

    def make() -> Worker:
        worker = Worker(queue, tmp_path / "worker.log")
        workers.append(worker)
        return worker

    yield make
    after_task_publish.disconnect(record)
    for worker in workers:
        worker.stop()
    _forget(queue, workers, published)
    # A worker killed mid-transaction can leave its session for a moment; end any session of
    # another process so the test database can be dropped.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    print(f"worker log: {tmp_path / 'worker.log'}")
