"""Liveness and readiness probes for load balancers and orchestrators."""

import logging
import os
from pathlib import Path

from django.conf import settings
from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from kombu import Connection

logger = logging.getLogger(__name__)

BROKER_TIMEOUT = 2  # seconds


def database_connections() -> list[BaseDatabaseWrapper]:
    return list(connections.all())


def check_database(connection: BaseDatabaseWrapper) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def check_broker() -> None:
    options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
    with Connection(
        settings.CELERY_BROKER_URL, transport_options=options, connect_timeout=BROKER_TIMEOUT
    ) as conn:
        conn.ensure_connection(
            max_retries=1, interval_start=0, interval_step=0, timeout=BROKER_TIMEOUT
        )
        if conn.transport_cls == "filesystem":
            # The embedded broker "connects" to anything; its queue folder must exist.
            queue_dir = Path(options["data_folder_out"])
            if not (queue_dir.is_dir() and os.access(queue_dir, os.W_OK)):
                raise ConnectionError(f"broker folder {queue_dir} is missing or not writable")


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers. Touches no dependency."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness: the database and the broker answer. 503 names what failed."""
    checks: dict[str, str] = {}
    failed: list[str] = []
    for connection in database_connections():
        name = f"database:{connection.alias}"
        try:
            check_database(connection)
            checks[name] = "ok"
        except Exception as exc:
            logger.warning("readiness: %s failed: %s", name, exc)
            checks[name] = f"unavailable: {exc.__class__.__name__}"
            failed.append(name)
    try:
        check_broker()
        checks["broker"] = "ok"
    except Exception as exc:
        logger.warning("readiness: broker failed: %s", exc)
        checks["broker"] = f"unavailable: {exc.__class__.__name__}"
        failed.append("broker")
    if failed:
        return JsonResponse(
            {
                "status": "unavailable",
                "failed": failed,
                "detail": f"Not ready: {', '.join(failed)} unreachable.",
                "checks": checks,
            },
            status=503,
        )
    return JsonResponse({"status": "ok", "checks": checks})
