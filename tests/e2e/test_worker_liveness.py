"""A worker's unacknowledged messages with the production broker settings (a visibility
timeout of hours): a SIGKILLed worker's task comes back within a minute of the restart and runs
to completion once; a live worker's long task is never handed to another worker
(config/worker_liveness.py)."""

import time
from pathlib import Path

import pytest
from django.conf import settings

from tests.e2e.conftest import unacked_of
from tests.e2e.tasks import sleep_and_record

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _lines(trace: Path, kind: str) -> list[str]:
    if not trace.exists():
        return []
    return [line for line in trace.read_text().splitlines() if line.startswith(kind)]


def _wait_for(trace: Path, kind: str, count: int, *, within: float) -> float:
    """Seconds until `count` lines of `kind`; fails after `within`."""
    started = time.monotonic()
    while len(_lines(trace, kind)) < count:
        elapsed = time.monotonic() - started
        assert elapsed < within, f"{kind} x{count} not within {within} s: {_lines(trace, '')}"
        time.sleep(0.1)
    return time.monotonic() - started


def test_worker_sigkilled__task_delivered_again_within_a_minute_of_restart__completes_once(
    worker_factory, tmp_path
):
    assert settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"] >= 3600
    trace = tmp_path / "trace"
    worker = worker_factory().start()
    sleep_and_record.apply_async(args=[str(trace), 8], queue=worker.queue)
    _wait_for(trace, "start", 1, within=60)
    worker.kill()
    assert len(unacked_of(worker.queue)) == 1  # held by nobody now, for hours by kombu alone

    restarted = time.monotonic()
    worker_factory().start()
    _wait_for(trace, "finish", 1, within=60 - (time.monotonic() - restarted))
    back_after = time.monotonic() - restarted

    # One more liveness period: nothing delivers it a third time.
    time.sleep(settings.WORKER_HEARTBEAT_SECONDS * 2)
    starts, finishes = _lines(trace, "start"), _lines(trace, "finish")
    assert len(starts) == 2, starts
    assert starts[1].endswith("True"), starts  # the second start is the redelivery
    assert len(finishes) == 1, finishes
    assert unacked_of(worker.queue) == []
    print(f"completed {back_after:.1f} s after the restart")


def test_worker_alive__task_longer_than_liveness__never_given_to_another_worker(
    worker_factory, tmp_path
):
    """The task outlives WORKER_LIVENESS_SECONDS while a second worker sweeps for orphans
    every heartbeat: the first worker's records keep it."""
    trace = tmp_path / "trace"
    seconds = settings.WORKER_LIVENESS_SECONDS + 3 * settings.WORKER_HEARTBEAT_SECONDS
    first = worker_factory().start()
    sleep_and_record.apply_async(args=[str(trace), seconds], queue=first.queue)
    _wait_for(trace, "start", 1, within=60)
    worker_factory().start()

    _wait_for(trace, "finish", 1, within=seconds + 30)
    time.sleep(settings.WORKER_HEARTBEAT_SECONDS * 2)
    starts, finishes = _lines(trace, "start"), _lines(trace, "finish")
    assert len(starts) == 1, starts
    assert len(finishes) == 1, finishes
    assert starts[0].split()[1] == finishes[0].split()[1]  # one process ran it
    assert unacked_of(first.queue) == []
