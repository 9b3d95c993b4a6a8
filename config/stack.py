"""`make run`: migrate, seed, then run web, a Celery worker and Celery beat together.

With nothing configured this is the embedded default (SQLite and kombu's filesystem broker);
with DATABASE_URL and REDIS_URL set, the same three processes use PostgreSQL and Redis.

The URLs and the demo logins are printed last, once web answers /healthz, the worker answers
a ping and beat has started, so that no banner scrolls them away. Ctrl-C (or SIGTERM) stops
all three; a second Ctrl-C kills them at once. If one of them dies, the others are stopped too.
"""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"
PYTHON = sys.executable
HOST = os.environ.get("ATTUNE_HOST", "127.0.0.1")
PORT = os.environ.get("PORT", "8000")
# How long web, worker and beat may take to come up before the URLs are printed anyway, with
# a word about what is not up yet.
READY_TIMEOUT_SECONDS = 60.0
# Warm shutdown lets running tasks finish; after this long they are killed.
STOP_TIMEOUT_SECONDS = 15.0


@dataclass(frozen=True)
class Logins:
    """The seeded demo logins (personalization/seeding.py), as `make run` prints them."""

    admin_username: str
    admin_password: str
    demo_username: str
    demo_password: str
    demo_external_id: str | None
    client_username: str
    client_token: str | None


@dataclass
class Service:
    name: str
    process: subprocess.Popen[bytes]
    # SIGTERM to the whole process group, or to the main process only: a Celery worker stops
    # its pool children itself in a warm shutdown, and a SIGTERM reaching them directly makes
    # it log "ForkPoolWorker exited with signal 15" as an ERROR.
    signal_group: bool


def _ensure_postgres_database(url: str) -> None:
    """Create the database named in DATABASE_URL when the server does not have it yet, so
    that `make run` on a fresh PostgreSQL needs no manual step."""
    import environ
    import psycopg
    from psycopg import sql

    config = environ.Env.db_url_config(url)
    if config["ENGINE"] != "django.db.backends.postgresql":
        return
    conninfo = psycopg.conninfo.make_conninfo(
        dbname="postgres",
        host=config.get("HOST") or None,
        port=config.get("PORT") or None,
        user=config.get("USER") or None,
        password=config.get("PASSWORD") or None,
    )
    with psycopg.connect(conninfo, autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [config["NAME"]]
        ).fetchone()
        if not exists:
            print(f"creating database {config['NAME']} …", flush=True)
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(config["NAME"])))


def _start(name: str, command: list[str], *, signal_group: bool = True) -> Service:
    print(f"starting {name}: {' '.join(command)}", flush=True)
    # Each child in its own process group, so that Ctrl-C reaches it only through us and
    # we can stop it in order.
    process = subprocess.Popen(command, cwd=BASE_DIR, start_new_session=True)
    return Service(name, process, signal_group)


def _signal(service: Service, signum: int, *, group: bool) -> None:
    try:
        if group:
            os.killpg(service.process.pid, signum)
        else:
            os.kill(service.process.pid, signum)
    except ProcessLookupError:
        pass


def _stop(services: list[Service], *, at_once: Callable[[], bool]) -> None:
    """SIGTERM each service (see Service.signal_group) and wait; kill the process groups of
    those still running after STOP_TIMEOUT_SECONDS, or as soon as `at_once()` is true."""
    for service in services:
        if service.process.poll() is None:
            print(f"stopping {service.name} …", flush=True)
            _signal(service, signal.SIGTERM, group=service.signal_group)
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    while any(s.process.poll() is None for s in services):
        if at_once() or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    for service in services:
        if service.process.poll() is None:
            print(f"killing {service.name}", flush=True)
            _signal(service, signal.SIGKILL, group=True)
            service.process.wait()


def _display_host(host: str) -> str:
    return "127.0.0.1" if host in ("", "0.0.0.0", "::") else host  # noqa: S104


def _prepare() -> Logins | None:
    """Migrate and seed, in this process: one Django start-up instead of one per command.
    Answers the seeded logins, read back from the database; None unless DEBUG (the seed
    prints them only then, too)."""
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connections
    from django.test.utils import override_settings
    from rest_framework.authtoken.models import Token

    from personalization.models import User

    try:
        # The system checks once here, so web starts without repeating them.
        call_command("check")
        call_command("migrate", interactive=False)
        # The seed prints the logins when DEBUG; `make run` prints them last, after every
        # banner. (DEBUG off also spares the seed's thousands of queries being logged.)
        with override_settings(DEBUG=False):
            call_command("seed")
        if not settings.DEBUG:
            return None
        token = (
            Token.objects.filter(user__username=settings.SEED_CLIENT_USERNAME)
            .values_list("key", flat=True)
            .first()
        )
        demo_external_id = (
            User.objects.filter(username=settings.SEED_DEMO_USERNAME)
            .values_list("external_id", flat=True)
            .first()
        )
    finally:
        # Web, worker and beat open their own.
        connections.close_all()
    return Logins(
        admin_username=settings.SEED_ADMIN_USERNAME,
        admin_password=settings.SEED_ADMIN_PASSWORD,
        demo_username=settings.SEED_DEMO_USERNAME,
        demo_password=settings.SEED_DEMO_PASSWORD,
        demo_external_id=demo_external_id,
        client_username=settings.SEED_CLIENT_USERNAME,
        client_token=token,
    )


def _web_answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 (our own URL)
            return bool(response.status == 200)
    except OSError:  # URLError, refused, timed out: not up yet
        return False


def _worker_answers(nodename: str) -> bool:
    from config.celery_app import app

    connection = app.connection_for_write()
    try:
        return bool(
            app.control.ping(destination=[nodename], timeout=1.0, limit=1, connection=connection)
        )
    except (*connection.connection_errors, *connection.channel_errors):
        return False  # the broker not reachable yet: not up yet
    finally:
        connection.release()


def _wait_until_up(
    services: list[Service],
    checks: dict[str, Callable[[], bool]],
    *,
    stopping: Callable[[], bool],
    timeout: float = READY_TIMEOUT_SECONDS,
) -> list[str]:
    """Poll each service's check until it passes, a service exits, a stop is requested or
    `timeout` passes. Answers the names of the services not up."""
    pending = dict(checks)
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline and not stopping():
        if any(service.process.poll() is not None for service in services):
            break
        for name, check in list(pending.items()):
            if check():
                del pending[name]
        if pending:
            time.sleep(0.3)
    return list(pending)


def ready_block(*, url: str, mode: str, logins: Logins | None, not_up: list[str]) -> str:
    """What `make run` prints last: where everything is and how to log in."""
    rule = "─" * 72
    lines = [
        "",
        rule,
        f"Attune is up ({mode}): web, worker and beat."
        if not not_up
        else f"Attune ({mode}): not up yet after {READY_TIMEOUT_SECONDS:.0f} s: "
        + ", ".join(not_up)
        + " (see the output above).",
        "",
        f"  API          {url}/api/v1/   (the routes, their methods and what each is for)",
        f"  API docs     {url}/api/docs/",
        f"  Schema       {url}/api/schema/   (OpenAPI 3; ?format=yaml for YAML)",
        f"  Admin        {url}/admin/",
        f"  Health       {url}/healthz   readiness {url}/readyz",
    ]
    if logins is not None:
        rows = [
            (
                "admin",
                f"{logins.admin_username} / {logins.admin_password}",
                "staff: the admin console and the staff-only routes",
            ),
            (
                "learner",
                f"{logins.demo_username} / {logins.demo_password}",
                f"external id {logins.demo_external_id}" if logins.demo_external_id else "",
            ),
            (
                "client app",
                logins.client_username,
                f"Authorization: Token {logins.client_token}"
                if logins.client_token
                else "no token yet: run manage.py seed",
            ),
        ]
        width = max(len(login) for _, login, _ in rows) + 3
        lines += ["", "  Logins (local defaults; set SEED_* in .env to change them)"]
        lines += [f"  {what:<12} {login:<{width}}{note}".rstrip() for what, login, note in rows]
        lines.append(f"  {'':<12} {'':<{width}}(a service account: may act for learners)")
    lines += ["", "  Stop with Ctrl-C.", rule, ""]
    return "\n".join(lines)


def _run() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    VAR_DIR.mkdir(exist_ok=True)
    embedded = not os.environ.get("DATABASE_URL")
    mode = "embedded default: SQLite, filesystem broker" if embedded else "PostgreSQL and Redis"
    print(f"Attune: {mode}", flush=True)
    if not embedded:
        _ensure_postgres_database(os.environ["DATABASE_URL"])
    logins = _prepare()

    interrupts = 0

    def _request_stop(signum: int, frame: object) -> None:
        nonlocal interrupts
        interrupts += 1

    signal.signal(signal.SIGINT, _request_stop)
    signal.signal(signal.SIGTERM, _request_stop)

    nodename = f"attune-{PORT}@{socket.gethostname()}"
    beat_pidfile = VAR_DIR / f"celerybeat-{PORT}.pid"
    beat_pidfile.unlink(missing_ok=True)
    celery = [PYTHON, "-m", "celery", "-A", "config"]
    services = [
        _start(
            "worker",
            [*celery, "worker", "--loglevel=INFO", "--concurrency=2", f"--hostname={nodename}"],
            signal_group=False,
        ),
        _start(
            "beat",
            [
                *celery,
                "beat",
                "--loglevel=INFO",
                f"--schedule={VAR_DIR / 'celerybeat-schedule'}",
                f"--pidfile={beat_pidfile}",
            ],
            signal_group=False,
        ),
        _start(
            "web",
            [PYTHON, "manage.py", "runserver", f"{HOST}:{PORT}", "--noreload", "--skip-checks"],
        ),
    ]
    url = f"http://{_display_host(HOST)}:{PORT}"
    exit_code = 0
    try:
        not_up = _wait_until_up(
            services,
            {
                "web": lambda: _web_answers(f"{url}/healthz"),
                "worker": lambda: _worker_answers(nodename),
                # Beat writes its pidfile just before its banner and its first tick.
                "beat": beat_pidfile.exists,
            },
            stopping=lambda: interrupts > 0,
        )
        if not interrupts and all(service.process.poll() is None for service in services):
            print(ready_block(url=url, mode=mode, logins=logins, not_up=not_up), flush=True)
        while not interrupts:
            exited = next((s for s in services if s.process.poll() is not None), None)
            if exited is not None:
                code = exited.process.returncode
                print(f"{exited.name} exited with code {code}; stopping the rest.", flush=True)
                exit_code = code or 1
                break
            time.sleep(0.5)
        if interrupts:
            print("\nstopping (Ctrl-C again to kill at once) …", flush=True)
    finally:
        _stop(services[::-1], at_once=lambda: interrupts > 1)
    print("Attune stopped.", flush=True)
    return exit_code


def main() -> int:
    try:
        return _run()
    except KeyboardInterrupt:  # Ctrl-C during migrate or seed
        print("\nAttune stopped.", flush=True)
        return 130


if __name__ == "__main__":
    sys.exit(main())
