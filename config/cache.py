"""The shared cache (Redis) failing open. When Redis is down or hung, reads miss, writes are
dropped and a warning is logged, so that throttles, cached catalogs and role lookups fall back
to the database instead of turning every request into a 500 or a hang (DESIGN.md §10)."""

import functools
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger(__name__)

# Only an unreachable or silent server fails open; a wrong command or a serialisation error is
# a bug and raises.
UNAVAILABLE = (RedisConnectionError, RedisTimeoutError)

# While an outage lasts, one warning a minute per process is enough to see it in the logs.
WARNING_INTERVAL_SECONDS = 60.0

# Keys fetched per SCAN step, and deleted per UNLINK, when a prefixed cache is cleared.
CLEAR_SCAN_BATCH = 500

T = TypeVar("T")


def glob_escape(text: str) -> str:
    """`text` matched literally by a Redis glob pattern (SCAN MATCH, KEYS)."""
    return re.sub(r"([\\*?\[\]])", r"\\\1", text)


def redacted(location: str) -> str:
    """host:port/db of a Redis URL, without its credentials, for log lines."""
    parts = urlsplit(location)
    return f"{parts.hostname}:{parts.port or 6379}{parts.path}" if parts.hostname else location


class Outage:
    """One server's availability as this process sees it. After a failure, calls skip the
    server for `retry_after` seconds: a hung server then costs one socket timeout per period,
    not one per cache call of every request."""

    def __init__(self, location: str) -> None:
        self.location = location
        self.lock = threading.Lock()
        self.skip_until = 0.0
        self.since: float | None = None
        self.warned_at = 0.0

    def skipping(self) -> bool:
        return time.monotonic() < self.skip_until

    def failed(self, exc: Exception, retry_after: float) -> None:
        with self.lock:
            now = time.monotonic()
            self.skip_until = now + retry_after
            if self.since is None:
                self.since = now
            elif now - self.warned_at < WARNING_INTERVAL_SECONDS:
                return
            self.warned_at = now
            down_for = now - self.since
        logger.warning(
            "cache %s unavailable for %.0f s (%s: %s); serving without it, next try in %.0f s",
            redacted(self.location),
            down_for,
            exc.__class__.__name__,
            exc,
            retry_after,
        )

    def recovered(self) -> None:
        if self.since is None:  # the common case, without taking the lock
            return
        with self.lock:
            since, self.since = self.since, None
        if since is not None:
            logger.warning(
                "cache %s reachable again after %.0f s",
                redacted(self.location),
                time.monotonic() - since,
            )


_outages: dict[str, Outage] = {}
_outages_lock = threading.Lock()


def outage_of(location: str) -> Outage:
    """Shared by the cache objects of every thread, which Django creates one per thread."""
    with _outages_lock:
        return _outages.setdefault(location, Outage(location))


class ReusedClientRedisCacheClient(RedisCacheClient):
    """Django's client, keeping one `redis.Redis` per connection pool. Django builds a new one
    (with its table of response callbacks) on every cache call, which costs several times the
    round trip to Redis itself; a `redis.Redis` is safe to share between threads, and its pool
    replaces its connections after a fork."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, Any] = {}

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        django_client: Any = self  # Django's private helpers are not in the stubs
        index = django_client._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            pool = django_client._get_connection_pool(index)
            client = self._clients.setdefault(index, django_client._client(connection_pool=pool))
        return client


class FailOpenRedisCache(RedisCache):
    """Django's RedisCache, answering as if every key were absent while Redis is unreachable:
    `get` gives the default, `add` and `touch` and `delete` give False, `incr` raises the
    ValueError of a missing key, writes are dropped. DRF's throttles read their history with
    `get` and store it with `set`, so they let requests through during an outage.

    `RETRY_AFTER` (seconds, beside `OPTIONS`) is how long a failure keeps the server skipped.
    """

    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = ReusedClientRedisCacheClient
        self.retry_after = float(params.get("RETRY_AFTER", 5.0))
        self.outage = outage_of(server if isinstance(server, str) else ",".join(server))

    def _guarded(self, call: Callable[[], T], fallback: T) -> T:
        if self.outage.skipping():
            return fallback
        try:
            result = call()
        except UNAVAILABLE as exc:
            self.outage.failed(exc, self.retry_after)
            return fallback
        self.outage.recovered()
        return result

    def add(
        self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: Any = None
    ) -> bool:
        return self._guarded(functools.partial(super().add, key, value, timeout, version), False)

    def get(self, key: Any, default: Any = None, version: Any = None) -> Any:
        return self._guarded(functools.partial(super().get, key, default, version), default)

    def set(
        self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: Any = None
    ) -> None:
        self._guarded(functools.partial(super().set, key, value, timeout, version), None)

    def touch(self, key: Any, timeout: Any = DEFAULT_TIMEOUT, version: Any = None) -> bool:
        return self._guarded(functools.partial(super().touch, key, timeout, version), False)

    def delete(self, key: Any, version: Any = None) -> bool:
        return self._guarded(functools.partial(super().delete, key, version), False)

    def get_many(self, keys: Iterable[Any], version: Any = None) -> dict[Any, Any]:
        return self._guarded(functools.partial(super().get_many, keys, version), {})

    def has_key(self, key: Any, version: Any = None) -> bool:
        return self._guarded(functools.partial(super().has_key, key, version), False)

    def incr(self, key: Any, delta: int = 1, version: Any = None) -> int:
        result = self._guarded(functools.partial(super().incr, key, delta, version), None)
        if result is None:
            raise ValueError(f"Key '{key}' not found: the cache is unavailable")
        return result

    def set_many(
        self, data: dict[Any, Any], timeout: Any = DEFAULT_TIMEOUT, version: Any = None
    ) -> list[Any]:
        # Django's contract: the keys that could not be stored.
        return self._guarded(
            functools.partial(super().set_many, data, timeout, version), list(data)
        )

    def delete_many(self, keys: Iterable[Any], version: Any = None) -> None:
        self._guarded(functools.partial(super().delete_many, keys, version), None)

    def clear(self) -> None:
        """Deletes this cache's own keys (those under its KEY_PREFIX), never the rest of the
        logical database: another application, or another test run, may share it. Without a
        prefix the database is flushed, as Django does."""
        if not self.key_prefix:
            self._guarded(super().clear, None)
            return
        self._guarded(self._clear_prefix, None)

    def _clear_prefix(self) -> None:
        client = self._cache.get_client(write=True)
        pattern = glob_escape(f"{self.key_prefix}:") + "*"
        batch: list[bytes] = []
        for key in client.scan_iter(match=pattern, count=CLEAR_SCAN_BATCH):
            batch.append(key)
            if len(batch) >= CLEAR_SCAN_BATCH:
                client.unlink(*batch)
                batch.clear()
        if batch:
            client.unlink(*batch)
