"""`make run`'s supervisor (config/stack.py): what it prints last, how it waits, how it stops.
Real child processes, no Django: each test starts and reaps its own."""

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from config import stack

LOGINS = stack.Logins(
    admin_username="admin",
    admin_password="attune-admin",
    demo_username="demo",
    demo_password="attune-demo",
    demo_external_id="demo-learner-1",
    client_username="client-app",
    client_token="0123456789abcdef",
)
URL = "http://127.0.0.1:8841"


def _service(name: str, code: str, *, signal_group: bool = True) -> stack.Service:
    process = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    return stack.Service(name, process, signal_group)


@pytest.fixture
def services():
    started: list[stack.Service] = []
    yield started
    for service in started:  # a test that failed half-way: its process group goes
        if service.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(service.process.pid, signal.SIGKILL)
            service.process.wait()


def _wait_for(path: Path, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.02)


def test_ready_block__up__urls_then_logins_last():
    block = stack.ready_block(url=URL, mode="embedded default", logins=LOGINS, not_up=[])
    lines = block.splitlines()
    assert "Attune is up (embedded default): web, worker and beat." in block
    for path in ("/api/v1/", "/api/docs/", "/api/schema/", "/admin/", "/healthz", "/readyz"):
        assert f"{URL}{path}" in block, path
    assert "admin / attune-admin" in block
    assert "demo / attune-demo" in block
    assert "external id demo-learner-1" in block
    assert "Authorization: Token 0123456789abcdef" in block
    # The logins after the URLs, and nothing but the stop hint after the logins.
    assert block.index("/api/docs/") < block.index("Logins") < block.index("Token 0123")
    assert [line for line in lines if line.strip()][-2:] == ["  Stop with Ctrl-C.", lines[1]]


def test_ready_block__no_logins__none_printed():
    block = stack.ready_block(url=URL, mode="PostgreSQL and Redis", logins=None, not_up=[])
    assert "Logins" not in block
    assert "password" not in block
    assert f"{URL}/api/schema/" in block


def test_ready_block__seed_without_token__says_how_to_get_one():
    logins = stack.Logins(**{**LOGINS.__dict__, "client_token": None, "demo_external_id": None})
    block = stack.ready_block(url=URL, mode="embedded default", logins=logins, not_up=[])
    assert "no token yet: run manage.py seed" in block
    assert "external id" not in block


def test_ready_block__worker_not_up__names_it():
    block = stack.ready_block(url=URL, mode="embedded default", logins=LOGINS, not_up=["worker"])
    assert "Attune is up" not in block
    assert "not up yet" in block
    assert "worker" in block.splitlines()[2]


def test_display_host__all_interfaces__loopback_shown():
    assert stack._display_host("0.0.0.0") == "127.0.0.1"  # noqa: S104
    assert stack._display_host("192.0.2.7") == "192.0.2.7"


def test_wait_until_up__checks_pass__nothing_pending(services):
    services.append(_service("web", "import time; time.sleep(30)"))
    calls = {"web": 0}

    def web_up() -> bool:
        calls["web"] += 1
        return calls["web"] >= 3

    not_up = stack._wait_until_up(
        services, {"web": web_up, "beat": lambda: True}, stopping=lambda: False, timeout=10
    )
    assert not_up == []
    assert calls["web"] == 3


def test_wait_until_up__service_exits__stops_waiting(services):
    services.append(_service("worker", "raise SystemExit(3)"))
    started = time.monotonic()
    not_up = stack._wait_until_up(
        services, {"worker": lambda: False}, stopping=lambda: False, timeout=30
    )
    assert not_up == ["worker"]
    assert time.monotonic() - started < 10
    assert services[0].process.wait() == 3


def test_wait_until_up__timeout__answers_what_is_not_up(services):
    services.append(_service("web", "import time; time.sleep(30)"))
    not_up = stack._wait_until_up(
        services,
        {"web": lambda: True, "worker": lambda: False},
        stopping=lambda: False,
        timeout=0.5,
    )
    assert not_up == ["worker"]


def test_wait_until_up__stop_requested__returns_at_once(services):
    services.append(_service("web", "import time; time.sleep(30)"))
    not_up = stack._wait_until_up(
        services, {"web": lambda: False}, stopping=lambda: True, timeout=30
    )
    assert not_up == ["web"]


# A main process with a child in its own process group, like a prefork Celery worker: on
# SIGTERM it stops the child itself (SIGINT, after a moment). The child writes down the
# first signal it receives and ignores the rest.
CHILD = """
import signal, sys, time
from pathlib import Path

out = Path(sys.argv[1])


def record(signum, frame):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    out.write_text(signal.Signals(signum).name)
    sys.exit(0)


signal.signal(signal.SIGTERM, record)
signal.signal(signal.SIGINT, record)
Path(sys.argv[2]).touch()
time.sleep(60)
"""
PARENT = """
import signal, subprocess, sys, time

child = None


def stop(signum, frame):
    time.sleep(0.5)
    child.send_signal(signal.SIGINT)
    child.wait()
    sys.exit(0)


signal.signal(signal.SIGTERM, stop)
child = subprocess.Popen([sys.executable, "-c", sys.argv[1], *sys.argv[2:]])
time.sleep(60)
"""


def _parent(tmp_path: Path, *, signal_group: bool) -> tuple[stack.Service, Path]:
    received, ready = tmp_path / "received", tmp_path / "ready"
    process = subprocess.Popen(
        [sys.executable, "-c", PARENT, CHILD, str(received), str(ready)], start_new_session=True
    )
    _wait_for(ready)  # both handlers in place
    return stack.Service("worker", process, signal_group), received


def test_stop__main_process_only__child_stopped_by_its_parent(tmp_path, services):
    service, received = _parent(tmp_path, signal_group=False)
    services.append(service)
    stack._stop([service], at_once=lambda: False)
    assert service.process.returncode == 0
    assert received.read_text() == "SIGINT"  # never the SIGTERM meant for the main process


def test_stop__whole_group__child_gets_sigterm_too(tmp_path, services):
    service, received = _parent(tmp_path, signal_group=True)
    services.append(service)
    stack._stop([service], at_once=lambda: False)
    assert received.read_text() == "SIGTERM"


def test_stop__ignores_sigterm__killed_when_asked_at_once(services):
    ignore = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"
    service = _service("beat", ignore, signal_group=False)
    services.append(service)
    time.sleep(0.3)  # the handler in place
    started = time.monotonic()
    stack._stop([service], at_once=lambda: time.monotonic() - started > 0.5)
    assert service.process.returncode == -9
    assert time.monotonic() - started < stack.STOP_TIMEOUT_SECONDS
