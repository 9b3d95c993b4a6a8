"""Redis dying under a process that has been using it as broker and result backend: a write
that enqueues after commit still answers its 201 within seconds (DESIGN.md §10). Redis servers
of the test's own, on ephemeral ports, are killed; the shared one is never touched."""

import logging
import shutil
import socket
import subprocess
import time

import pytest
from django.core.cache import cache

from tests.config.test_availability import HANG_BOUND_SECONDS, broker_at

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]


class PrivateRedis:
    def __init__(self, binary: str, directory) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.process = subprocess.Popen(
            [binary, *("--port", str(self.port), "--bind", "127.0.0.1"), "--save", ""],
            cwd=directory,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    break
            assert time.monotonic() < deadline, "the private redis-server did not start"
            time.sleep(0.05)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)


@pytest.fixture
def private_redis(tmp_path):
    """Starts Redis servers of the test's own; kills them at the end."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("needs the redis-server binary")
    servers: list[PrivateRedis] = []

    def start() -> PrivateRedis:
        servers.append(PrivateRedis(binary, tmp_path))
        return servers[-1]

    yield start
    for server in servers:
        server.kill()


def _post_outcome(client, event_id, django_capture_on_commit_callbacks):
    cache.clear()  # the ingest enqueues at most once a debounce period
    started = time.monotonic()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post(
            "/api/v1/outcomes/",
            {
                "event_id": event_id,
                "context": "MISSION",
                "outcome_type": "MISSION_COMPLETED",
                "retention_score": 0.8,
            },
            format="json",
        )
    assert callbacks, "the write enqueued nothing"
    return response, time.monotonic() - started


@pytest.mark.parametrize("killed", ["broker and backend", "result backend"])
def test_outcome_post__redis_killed_after_use__201_within_seconds(
    killed, private_redis, user_client, django_capture_on_commit_callbacks, caplog
):
    broker = private_redis()
    backend = broker if killed == "broker and backend" else private_redis()
    with broker_at(broker.url, backend=backend.url):
        response, _ = _post_outcome(user_client, "before", django_capture_on_commit_callbacks)
        assert response.status_code == 201, response.content
        assert "could not enqueue" not in caplog.text

        backend.kill()
        # With stored results, every enqueue after the first one here met the result
        # backend's reconnection loop: 19 s.
        answers = []
        with caplog.at_level(logging.WARNING, logger="config.tasks"):
            for index in range(3):
                answers.append(
                    _post_outcome(user_client, f"after-{index}", django_capture_on_commit_callbacks)
                )
    assert [response.status_code for response, _ in answers] == [201, 201, 201]
    timings = [elapsed for _, elapsed in answers]
    assert max(timings) < HANG_BOUND_SECONDS, timings
    enqueue_failures = caplog.text.count("could not enqueue outcomes.recompute_bandit_rewards")
    assert enqueue_failures == (3 if backend is broker else 0)
