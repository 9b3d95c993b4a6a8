"""Liveness and readiness probes for load balancers and orchestrators."""

import logging

from django.conf import settings
from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from kombu import Connection

logger = logging.getLogger(__name__)

BROKER_TIMEOUT_SECONDS = 2.0


def database_connections() -> list[BaseDatabaseWrapper]:
    return list(connections.all())


def check_database(connection: BaseDatabaseWrapper) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def check_broker() -> None:
    with Connection(
        settings.CELERY_BROKER_URL,
        transport_options=settings.CELERY_BROKER_TRANSPORT_OPTIONS,
        connect_timeout=BROKER_TIMEOUT_SECONDS,
    ) as conn:
        conn.ensure_connection(
            max_retries=1, interval_start=0, interval_step=0, timeout=BROKER_TIMEOUT_SECONDS
        )
        # A channel proves the transport works (for the filesystem broker: its folders).
        channel = conn.channel()
        channel.close()


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
        except Exception as exc:  # noqa: BLE001 - any failure means not ready; it is reported
            logger.warning("readiness: %s failed: %s", name, exc)
            checks[name] = f"unavailable: {exc.__class__.__name__}"
            failed.append(name)
    try:
        check_broker()
        checks["broker"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means not ready; it is reported
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
