"""The API while Redis is down or hung (DESIGN.md §10): the cache fails open, throttles let
requests through, enqueueing after commit neither fails nor blocks; and `auth/token/` is
throttled per client address and per username.

An unreachable Redis is a closed port on 127.0.0.1 (ATTUNE_TEST_CLOSED_PORT, default 1), a hung
one a local server that accepts connections and never answers. The time bounds are against the
60 s hang of a gunicorn worker, not benchmarks."""

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from django.conf import settings
from django.test import override_settings
from rest_framework.authtoken.models import Token

from config import cache as fail_open
from config.api.throttles import CallerRateThrottle
from config.cache import FailOpenRedisCache
from config.celery_app import app
from outcomes.models import Outcome
from tests.conftest import assert_error_shape
from tests.personalization.factories import DEFAULT_PASSWORD, UserFactory

# A request that meets a dead or hung Redis answers well within this, not after 60 s.
HANG_BOUND_SECONDS = 5.0
TOKEN_URL = "/api/v1/auth/token/"


class SilentServer:
    """A TCP server on 127.0.0.1 that accepts connections and never answers: Redis hung."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.port = self.listener.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                connection, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted.append(connection)

    def close(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=5)
        self.listener.close()
        for connection in self.accepted:
            connection.close()


@pytest.fixture
def silent_server() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.close()


@pytest.fixture
def closed_url() -> str:
    port = int(os.environ.get("ATTUNE_TEST_CLOSED_PORT", "1"))
    with socket.socket() as probe:
        probe.settimeout(0.5)
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            pytest.skip(f"127.0.0.1:{port} is open; set ATTUNE_TEST_CLOSED_PORT to a closed port")
    return f"redis://127.0.0.1:{port}/0"


@pytest.fixture(autouse=True)
def _fresh_outages(monkeypatch):
    """Each test sees its servers' availability afresh."""
    monkeypatch.setattr(fail_open, "_outages", {})


def redis_cache_settings(location: str, retry_after: float = 5.0) -> dict:
    """The production cache (config/settings/base.py) at another location."""
    return {
        "default": {
            "BACKEND": "config.cache.FailOpenRedisCache",
            "LOCATION": location,
            "KEY_PREFIX": "attune",
            "RETRY_AFTER": retry_after,
            "OPTIONS": {
                "socket_connect_timeout": settings.REDIS_SOCKET_CONNECT_TIMEOUT,
                "socket_timeout": settings.REDIS_SOCKET_TIMEOUT,
            },
        }
    }


def _reset_broker_pools() -> None:
    for pool in (app._pool, app.amqp._producer_pool):
        if pool is not None:
            pool.force_close_all()
    app._pool = None
    app.amqp._producer_pool = None
    vars(app._local).pop("backend", None)


@contextlib.contextmanager
def broker_at(url: str, *, backend: str | None = None) -> Iterator[None]:
    """Celery's broker and result backend at `url` (the backend at `backend` if given), with
    the production socket timeouts; Celery reads its configuration once, so Django's
    override_settings does not reach it."""
    changes = {
        "CELERY_BROKER_URL": url,
        "CELERY_RESULT_BACKEND": backend or url,
        "CELERY_BROKER_TRANSPORT_OPTIONS": {
            "socket_timeout": settings.REDIS_SOCKET_TIMEOUT,
            "socket_connect_timeout": settings.REDIS_SOCKET_CONNECT_TIMEOUT,
        },
        "CELERY_REDIS_SOCKET_TIMEOUT": settings.REDIS_SOCKET_TIMEOUT,
        "CELERY_REDIS_SOCKET_CONNECT_TIMEOUT": settings.REDIS_SOCKET_CONNECT_TIMEOUT,
    }
    saved = {key: app.conf.changes[key] for key in changes if key in app.conf.changes}
    _reset_broker_pools()
    app.conf.update(changes)
    connection = app.connection_for_write()
    assert (connection.hostname, connection.port) == ("127.0.0.1", int(url.split(":")[2][:-2]))
    try:
        yield
    finally:
        for key in changes:
            app.conf.changes.pop(key, None)
        app.conf.update(saved)
        _reset_broker_pools()


def _timed(call):
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


# --- The cache fails open ------------------------------------------------------------------------


def test_fail_open_cache__unreachable__answers_as_if_empty(closed_url, caplog):
    cache = FailOpenRedisCache(closed_url, {"RETRY_AFTER": 0})
    with caplog.at_level(logging.WARNING, logger="config.cache"):
        assert cache.get("k", "default") == "default"
        assert cache.get_many(["a", "b"]) == {}
        assert cache.add("k", 1) is False
        assert cache.set("k", 1) is None
        assert cache.set_many({"a": 1, "b": 2}) == ["a", "b"]
        assert cache.get_or_set("k", 7) == 7
        assert cache.touch("k") is False
        assert cache.delete("k") is False
        assert cache.delete_many(["a"]) is None
        assert cache.has_key("k") is False
        cache.clear()
        with pytest.raises(ValueError, match="not found"):
            cache.incr("k")
    warnings = [r for r in caplog.records if r.name == "config.cache"]
    # Every call above failed; one warning a minute says so.
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "unavailable" in warnings[0].getMessage()
    assert "127.0.0.1" in warnings[0].getMessage()


def test_fail_open_cache__hung__one_socket_timeout_then_skipped(silent_server):
    cache = FailOpenRedisCache(
        silent_server.url, redis_cache_settings(silent_server.url)["default"]
    )
    assert cache.get("k", "miss") == "miss"
    for _ in range(5):
        assert cache.get("k", "miss") == "miss"
        cache.set("k", 1)
    # After the first timeout the server is left alone for RETRY_AFTER seconds.
    assert len(silent_server.accepted) == 1


def test_fail_open_cache__back_after_an_outage__serves_and_says_so(caplog):
    if not settings.CACHES["default"]["BACKEND"].endswith("RedisCache"):
        pytest.skip("needs Redis (set REDIS_URL)")
    location = settings.CACHES["default"]["LOCATION"]
    prefix = f"{settings.CACHES['default']['KEY_PREFIX']}-availability"
    cache = FailOpenRedisCache(location, {"RETRY_AFTER": 0, "KEY_PREFIX": prefix})
    cache.outage.failed(ConnectionError("simulated"), retry_after=0)
    with caplog.at_level(logging.WARNING, logger="config.cache"):
        cache.set("k", 42)
    assert cache.get("k") == 42
    assert "reachable again" in caplog.text
    cache.clear()


# --- The API with Redis down or hung -------------------------------------------------------------


@pytest.mark.django_db
def test_api__redis_down__requests_answer_normally(
    closed_url, user, user_client, api_client, strategy_catalog, caplog
):
    with (
        override_settings(CACHES=redis_cache_settings(closed_url)),
        caplog.at_level(logging.WARNING, logger="config.cache"),
    ):
        started = time.monotonic()
        me = user_client.get("/api/v1/me/")
        decision = user_client.post("/api/v1/decisions/", {"context": "MISSION"}, format="json")
        token = api_client.post(
            TOKEN_URL, {"username": user.username, "password": DEFAULT_PASSWORD}
        )
        elapsed = time.monotonic() - started
    assert me.status_code == 200, me.content
    assert decision.status_code == 201, decision.content
    assert token.status_code == 200, token.content
    assert elapsed < HANG_BOUND_SECONDS, f"three requests took {elapsed:.1f} s"
    assert "unavailable" in caplog.text


@pytest.mark.django_db
def test_api__redis_hung__each_request_answers_within_seconds(
    silent_server, user, user_client, strategy_catalog
):
    with override_settings(CACHES=redis_cache_settings(silent_server.url)):
        timings = []
        for _ in range(3):
            response, elapsed = _timed(lambda: user_client.get("/api/v1/me/"))
            assert response.status_code == 200, response.content
            timings.append(elapsed)
        decision, elapsed = _timed(
            lambda: user_client.post("/api/v1/decisions/", {"context": "MISSION"}, format="json")
        )
        timings.append(elapsed)
    assert decision.status_code == 201, decision.content
    assert max(timings) < HANG_BOUND_SECONDS, timings


@pytest.mark.django_db
def test_throttle__cache_down__fails_open(closed_url, user_client, monkeypatch):
    monkeypatch.setattr(
        CallerRateThrottle, "THROTTLE_RATES", {"user": "1/minute", "service": "1/minute"}
    )
    assert user_client.get("/api/v1/me/").status_code == 200
    assert user_client.get("/api/v1/me/").status_code == 429  # the rate holds with a cache
    with override_settings(CACHES=redis_cache_settings(closed_url)):
        statuses = [user_client.get("/api/v1/me/").status_code for _ in range(3)]
    assert statuses == [200, 200, 200]


# --- Enqueueing with the broker unreachable or hung ----------------------------------------------


def _post_outcome(client, django_capture_on_commit_callbacks):
    """POST outcomes/ enqueues the rewards recompute once the write commits."""
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post(
            "/api/v1/outcomes/",
            {
                "event_id": "availability-1",
                "context": "MISSION",
                "outcome_type": "MISSION_COMPLETED",
                "retention_score": 0.8,
            },
            format="json",
        )
    return response, callbacks


@pytest.mark.django_db
@pytest.mark.parametrize("broker", ["closed", "hung"])
def test_outcome_post__broker_unavailable__committed_201_within_seconds(
    broker, closed_url, silent_server, user, user_client, django_capture_on_commit_callbacks, caplog
):
    url = closed_url if broker == "closed" else silent_server.url
    with broker_at(url), caplog.at_level(logging.WARNING, logger="config.tasks"):
        (response, callbacks), elapsed = _timed(
            lambda: _post_outcome(user_client, django_capture_on_commit_callbacks)
        )
    assert response.status_code == 201, response.content
    assert callbacks, "the write enqueued nothing"
    assert "could not enqueue outcomes.recompute_bandit_rewards" in caplog.text
    assert elapsed < HANG_BOUND_SECONDS, f"the request took {elapsed:.1f} s"
    assert Outcome.objects.filter(user=user).count() == 1


def test_tasks__every_attune_task__ignores_its_result():
    """Nobody reads them; a stored result would make enqueueing subscribe to the result
    backend, which blocks for as long as Redis is down."""
    app.loader.import_default_modules()
    names = [name for name in app.tasks if not name.startswith("celery.")]
    assert names
    assert [name for name in names if not app.tasks[name].ignore_result] == []


# --- auth/token/ is throttled --------------------------------------------------------------------


def login_rates(ip: str, user: str):
    return override_settings(
        REST_FRAMEWORK={
            **settings.REST_FRAMEWORK,
            "DEFAULT_THROTTLE_RATES": {
                **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
                "login_ip": ip,
                "login_user": user,
            },
        }
    )


WRONG_PASSWORD = "not-the-password"


def _login(client, username: str, password: str = WRONG_PASSWORD, address: str = "10.0.0.1"):
    return client.post(TOKEN_URL, {"username": username, "password": password}, REMOTE_ADDR=address)


@pytest.mark.django_db
def test_login__wrong_passwords_from_one_address__429_past_the_rate(api_client):
    # The base settings' rate.
    with login_rates(ip="10/minute", user="100/minute"):
        statuses = [_login(api_client, f"guess-{i}").status_code for i in range(10)]
        throttled = _login(api_client, "guess-10")
        other_address = _login(api_client, "guess-11", address="10.0.0.2")
    assert statuses == [400] * 10
    body = assert_error_shape(throttled, 429, code="throttled")
    assert "seconds" in body["errors"][0]["detail"]
    assert other_address.status_code == 400


@pytest.mark.django_db
def test_login__one_username_from_many_addresses__429_past_the_rate(api_client):
    user = UserFactory(username="Learner")
    with login_rates(ip="100/minute", user="3/minute"):
        statuses = [
            _login(api_client, "learner", address=f"10.0.1.{i}").status_code for i in range(3)
        ]
        throttled = _login(api_client, "LEARNER", DEFAULT_PASSWORD, address="10.0.1.99")
        other_user = _login(api_client, "someone-else", address="10.0.1.99")
    assert statuses == [400, 400, 400]
    assert_error_shape(throttled, 429, code="throttled")
    assert other_user.status_code == 400
    assert not Token.objects.filter(user=user).exists()  # the right password came too late


@pytest.mark.django_db
def test_login__forged_forwarded_for__still_counted_by_address(api_client):
    """Without a proxy (NUM_PROXIES 0) X-Forwarded-For is the client's word, not its address."""
    with login_rates(ip="2/minute", user="100/minute"):
        statuses = [
            api_client.post(
                TOKEN_URL,
                {"username": f"guess-{i}", "password": WRONG_PASSWORD},
                REMOTE_ADDR="10.0.2.1",
                HTTP_X_FORWARDED_FOR=f"192.0.2.{i}",
            ).status_code
            for i in range(3)
        ]
    assert statuses == [400, 400, 429]


@pytest.mark.django_db
def test_login__within_the_rate__token(api_client, user):
    with login_rates(ip="10/minute", user="10/minute"):
        _login(api_client, user.username)
        response = _login(api_client, user.username, DEFAULT_PASSWORD)
    assert response.status_code == 200, response.content
    assert response.json()["token"]


@pytest.mark.django_db
def test_login__cache_down__not_throttled(closed_url, api_client, user):
    with login_rates(ip="1/minute", user="1/minute"):
        with override_settings(CACHES=redis_cache_settings(closed_url)):
            statuses = [_login(api_client, user.username).status_code for _ in range(3)]
        response = _login(api_client, user.username, DEFAULT_PASSWORD)
    assert statuses == [400, 400, 400]
    assert response.status_code == 200, response.content


@pytest.mark.django_db
def test_readyz__broker_hung__503_within_seconds(client, silent_server):
    options = {
        "socket_timeout": settings.REDIS_SOCKET_TIMEOUT,
        "socket_connect_timeout": settings.REDIS_SOCKET_CONNECT_TIMEOUT,
    }
    with override_settings(
        CELERY_BROKER_URL=silent_server.url, CELERY_BROKER_TRANSPORT_OPTIONS=options
    ):
        response, elapsed = _timed(lambda: client.get("/readyz"))
    assert response.status_code == 503
    assert response.json()["failed"] == ["broker"]
    assert elapsed < HANG_BOUND_SECONDS, f"readiness took {elapsed:.1f} s"
