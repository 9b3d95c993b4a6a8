"""`make run`: migrate, seed, then run web, a Celery worker and Celery beat together.

With nothing configured this is the embedded default (SQLite and kombu's filesystem broker);
with DATABASE_URL and REDIS_URL set, the same three processes use PostgreSQL and Redis.
Ctrl-C (or SIGTERM) stops all three; if one of them dies, the others are stopped too.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"
PYTHON = sys.executable
HOST = os.environ.get("ATTUNE_HOST", "127.0.0.1")
PORT = os.environ.get("PORT", "8000")


def _manage(*args: str) -> None:
    subprocess.run([PYTHON, "manage.py", *args], cwd=BASE_DIR, check=True)


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


def _start(name: str, command: list[str]) -> subprocess.Popen[bytes]:
    print(f"starting {name}: {' '.join(command)}", flush=True)
    # Each child in its own process group, so that Ctrl-C reaches it only through us and
    # we can stop it in order.
    return subprocess.Popen(command, cwd=BASE_DIR, start_new_session=True)


def _stop(processes: dict[str, subprocess.Popen[bytes]]) -> None:
    for name, process in processes.items():
        if process.poll() is None:
            print(f"stopping {name} …", flush=True)
            os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    for process in processes.values():
        remaining = max(0.1, deadline - time.monotonic())
        try:
            process.wait(timeout=remaining)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    VAR_DIR.mkdir(exist_ok=True)
    embedded = not os.environ.get("DATABASE_URL")
    print(
        "Attune: "
        + ("embedded default (SQLite, filesystem broker)" if embedded else "PostgreSQL and Redis"),
        flush=True,
    )
    if not embedded:
        _ensure_postgres_database(os.environ["DATABASE_URL"])
    _manage("migrate", "--no-input")
    _manage("seed")

    celery = [PYTHON, "-m", "celery", "-A", "config"]
    processes = {
        "web": _start("web", [PYTHON, "manage.py", "runserver", f"{HOST}:{PORT}", "--noreload"]),
        "worker": _start(
            "worker",
            [*celery, "worker", "--loglevel=INFO", "--concurrency=2", "--hostname=attune@%h"],
        ),
        "beat": _start(
            "beat",
            [*celery, "beat", "--loglevel=INFO", f"--schedule={VAR_DIR / 'celerybeat-schedule'}"],
        ),
    }
    url = f"http://{HOST}:{PORT}"
    print(
        "\n"
        f"  API docs   {url}/api/docs/\n"
        f"  Admin      {url}/admin/\n"
        f"  API        {url}/api/v1/\n"
        f"  Health     {url}/healthz  {url}/readyz\n"
        "  Stop with Ctrl-C.\n",
        flush=True,
    )

    stopping = False

    def _request_stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _request_stop)
    signal.signal(signal.SIGTERM, _request_stop)
    exit_code = 0
    while not stopping:
        for name, process in processes.items():
            if process.poll() is not None:
                print(f"{name} exited with code {process.returncode}; stopping the rest.")
                exit_code = process.returncode or 1
                stopping = True
                break
        time.sleep(0.5)
    _stop(processes)
    print("Attune stopped.", flush=True)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
