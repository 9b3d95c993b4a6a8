"""Tasks the end-to-end workers load with `--include=tests.e2e.tasks`: they leave a trace of
every run in a file, so that a test can count starts and finishes across workers."""

import os
import time
from pathlib import Path
from typing import Any

from celery import shared_task


@shared_task(
    name="e2e.sleep_and_record",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
)
def sleep_and_record(self: Any, path: str, seconds: float) -> None:
    """`start <pid> <redelivered>`, then after `seconds`, `finish <pid>`: one line each."""
    trace = Path(path)
    redelivered = bool(self.request.delivery_info.get("redelivered"))
    with trace.open("a") as file:
        file.write(f"start {os.getpid()} {redelivered}\n")
    time.sleep(seconds)
    with trace.open("a") as file:
        file.write(f"finish {os.getpid()}\n")
