import shutil
from collections.abc import Iterator
from typing import Any

import pytest
from celery.signals import after_task_publish
from django.conf import settings
from django.core.cache import cache
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

pytest_plugins = [
    "tests.personalization.factories",
    "tests.logs.factories",
    "tests.experiments.factories",
    "tests.recommendations.factories",
]


@pytest.fixture(autouse=True, scope="session")
def _own_queue() -> Iterator[None]:
    """What the code under test enqueued waited on this run's queue (the test settings' default
    queue), consumed by nobody: at the end the queue goes, with the results it asked for, and
    the cache keys under this run's prefix. Nothing else on the broker or the cache is
    touched, so a run leaves a shared Redis as it found it."""
    published: list[str] = []

    def record(sender: object, headers: dict, **kwargs: object) -> None:
        published.append(headers["id"])

    after_task_publish.connect(record, weak=False)
    yield
    after_task_publish.disconnect(record)
    cache.clear()
    if not settings.REDIS_URL:
        shutil.rmtree(settings.TEST_BROKER_DIR, ignore_errors=True)
        return
    from config.celery_app import app

    queue = settings.CELERY_TASK_DEFAULT_QUEUE
    with app.connection_for_write() as conn:
        channel: Any = conn.default_channel  # kombu's Redis channel, not in the stubs
        client = channel.client
        keys = {channel._q_for_pri(queue, priority) for priority in channel.priority_steps}
        keys |= {channel.keyprefix_queue % queue, channel.keyprefix_binding_permanent % queue}
        keys |= {f"celery-task-meta-{task_id}" for task_id in published}
        client.delete(*keys)


@pytest.fixture(autouse=True)
def _isolated_cache():
    """Throttle counters and cached catalogs must not leak from one test into the next. Only
    this run's keys are cleared (its KEY_PREFIX, config/cache.py), and this process's own
    copies of the catalogs (each test's rolled-back transaction leaves the stored versions
    as they were, with other rows behind them)."""
    from experiments.catalog import local_copies_clear

    local_copies_clear()
    cache.clear()
    yield
    cache.clear()
    local_copies_clear()


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


def token_client(user) -> APIClient:
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def user_client(user) -> APIClient:
    return token_client(user)


@pytest.fixture
def other_client(other_user) -> APIClient:
    return token_client(other_user)


@pytest.fixture
def staff_client(staff_user) -> APIClient:
    return token_client(staff_user)


@pytest.fixture
def service_client(service_account) -> APIClient:
    return token_client(service_account)


def assert_error_shape(response, status_code: int, *, attr: str | None = None, code=None) -> dict:
    """The one error shape of DESIGN.md §7."""
    assert response.status_code == status_code, response.content
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert set(body) == {"type", "errors"}
    assert body["type"] in {"validation_error", "client_error", "server_error"}
    assert body["errors"], body
    for error in body["errors"]:
        assert set(error) == {"code", "detail", "attr"}
    if attr is not None:
        assert attr in [error["attr"] for error in body["errors"]], body
    if code is not None:
        assert code in [error["code"] for error in body["errors"]], body
    return body
