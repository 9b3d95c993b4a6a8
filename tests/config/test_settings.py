"""Production settings: they refuse to start without secrets and pass `check --deploy`."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[2]
PRODUCTION_ENV = {
    "DJANGO_SETTINGS_MODULE": "config.settings.production",
    "DJANGO_SECRET_KEY": "k7#Qp2!vL9@xR4$mT8^wZ1&nB6*yH3(cF5)jD0-gS2+eA7=uK4~oP9_iM1",
    "DJANGO_ALLOWED_HOSTS": "attune.example.org",
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/attune",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
}


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_"))}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_production__check_deploy__no_warnings():
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_production__without_secret_key__refuses_to_start():
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != "DJANGO_SECRET_KEY"}
    result = _manage("check", env=env)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


def test_embedded_default__cache_shared_by_processes_in_var():
    """Without REDIS_URL, web, worker and beat share a file cache, so a change cached by one
    is seen by the others."""
    clean = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    code = (
        "import django; from django.conf import settings; django.setup(); "
        "print(settings.CACHES['default']['BACKEND'], "
        "settings.CACHES['default']['LOCATION'])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=BASE_DIR,
        env={**clean, "DJANGO_SETTINGS_MODULE": "config.settings.local"},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    backend, location = result.stdout.split()
    assert backend == "django.core.cache.backends.filebased.FileBasedCache"
    assert Path(location) == BASE_DIR / "var" / "cache"


def _under_production(script: str) -> object:
    """What `script` puts in `answer`, run under the production settings, as JSON."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "DATABASE_", "REDIS_", "CELERY_", "THROTTLE_", "WORKER_"))
    }
    code = "\n".join(
        [
            "import json",
            "import django",
            "from django.conf import settings",
            "django.setup()",
            script,
            "print(json.dumps(answer, default=str))",
        ]
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=BASE_DIR,
        env={**clean, **PRODUCTION_ENV},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(result.stdout.splitlines()[-1])


def test_production__redis__socket_timeouts_fail_open_cache_no_results():
    values = _under_production(
        "answer = {"
        "'cache': settings.CACHES['default'], "
        "'broker': settings.CELERY_BROKER_TRANSPORT_OPTIONS, "
        "'backend': [settings.CELERY_REDIS_SOCKET_CONNECT_TIMEOUT, "
        "settings.CELERY_REDIS_SOCKET_TIMEOUT], "
        "'ignore_result': settings.CELERY_TASK_IGNORE_RESULT, "
        "'rates': settings.REST_FRAMEWORK['DEFAULT_THROTTLE_RATES'], "
        "'proxies': settings.REST_FRAMEWORK['NUM_PROXIES']}"
    )
    cache = values["cache"]
    assert cache["BACKEND"] == "config.cache.FailOpenRedisCache"
    assert cache["OPTIONS"]["socket_connect_timeout"] <= 1
    assert cache["OPTIONS"]["socket_timeout"] <= 2
    assert values["broker"]["socket_connect_timeout"] <= 1
    assert values["broker"]["socket_timeout"] <= 2
    assert values["backend"][0] <= 1
    assert values["backend"][1] <= 2
    assert values["ignore_result"] is True
    assert values["rates"]["login_ip"] == "10/minute"
    assert values["rates"]["login_user"] == "10/minute"
    assert values["proxies"] == 1


def test_production__database__prepared_statements_timeout_health_checks():
    """Production shares base.py's connection settings: psycopg prepares a statement run five
    times on a connection (without it the decide call's learner read is planned on every
    request), statements time out, persistent connections are health-checked."""
    database = _under_production("answer = settings.DATABASES['default']")
    assert database["OPTIONS"]["prepare_threshold"] == 5
    assert database["OPTIONS"]["server_side_binding"] is True
    assert database["OPTIONS"]["options"] == "-c statement_timeout=30000"
    assert database["CONN_HEALTH_CHECKS"] is True
    assert database["CONN_MAX_AGE"] == 60


def test_production__visibility_timeout__above_every_task_time_limit_and_countdown():
    """A task still running when its visibility timeout expires is delivered again and runs
    twice (DESIGN.md §10). The liveness records bring a dead worker's task back within a
    minute, with room for a late heartbeat."""
    visibility, heartbeat, liveness, tasks = _under_production(
        "from config.celery_app import app\n"
        "app.loader.import_default_modules()\n"
        "answer = [\n"
        "    settings.CELERY_BROKER_TRANSPORT_OPTIONS['visibility_timeout'],\n"
        "    settings.WORKER_HEARTBEAT_SECONDS,\n"
        "    settings.WORKER_LIVENESS_SECONDS,\n"
        "    {\n"
        "        name: [task.time_limit or app.conf.task_time_limit, task.retry_backoff_max]\n"
        "        for name, task in app.tasks.items()\n"
        "        if not name.startswith('celery.')\n"
        "    },\n"
        "]"
    )
    assert tasks
    for name, (time_limit, countdown) in tasks.items():
        assert visibility > time_limit + countdown, name
    assert liveness >= 3 * heartbeat
    assert liveness <= 45


def test_env_example__lists_every_variable_the_settings_read():
    read = set()
    for path in (BASE_DIR / "config" / "settings").glob("*.py"):
        read |= set(re.findall(r'env(?:\.\w+)?\(\s*"([A-Z0-9_]+)"', path.read_text()))
    listed = set(re.findall(r"^#? ?([A-Z0-9_]+)=", (BASE_DIR / ".env.example").read_text(), re.M))
    assert read
    assert sorted(read - listed) == []
