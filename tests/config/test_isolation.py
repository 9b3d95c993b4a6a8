"""The suite keeps to itself on a shared Redis: its cache and broker use REDIS_URL's server
and database (or REDIS_TEST_DB), its keys carry the run's prefix, and clearing the cache
between tests deletes those keys only."""

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.core.cache import cache

from config.cache import glob_escape

BASE_DIR = Path(__file__).resolve().parents[2]


def _test_settings(**env: str) -> list[str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "REDIS_", "CELERY_", "ATTUNE_TEST_"))
    }
    code = (
        "import django; from django.conf import settings; django.setup(); "
        "print(settings.CACHES['default']['LOCATION'], settings.CACHES['default']['KEY_PREFIX'], "
        "settings.CELERY_BROKER_URL, settings.CELERY_TASK_DEFAULT_QUEUE)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=BASE_DIR,
        env={**clean, "DJANGO_SETTINGS_MODULE": "config.settings.test", **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return result.stdout.split()


def test_settings__cache_and_broker_follow_redis_url_database():
    location, prefix, broker, queue = _test_settings(REDIS_URL="redis://127.0.0.1:6390/7")
    assert location == broker == "redis://127.0.0.1:6390/7"
    assert prefix.startswith("attune-test-")
    assert queue == prefix


def test_settings__redis_test_db_names_another_database():
    location, _, broker, _ = _test_settings(REDIS_URL="redis://127.0.0.1:6390/7", REDIS_TEST_DB="4")
    assert location == broker == "redis://127.0.0.1:6390/4"


def test_settings__a_run_shares_its_prefix_with_the_processes_it_starts():
    first = _test_settings(REDIS_URL="redis://127.0.0.1:6390/7", ATTUNE_TEST_RUN="abc123")
    second = _test_settings(REDIS_URL="redis://127.0.0.1:6390/7")
    assert first[1] == first[3] == "attune-test-abc123"
    assert second[1] != first[1]


def test_glob_escape__matches_literally():
    assert glob_escape("a*b?[c]") == r"a\*b\?\[c\]"


@pytest.fixture
def redis_client():
    if not settings.REDIS_URL:
        pytest.skip("needs Redis (set REDIS_URL)")
    client = redis.Redis.from_url(settings.REDIS_URL)
    yield client
    client.close()


def test_cache_clear__deletes_own_keys_only(redis_client):
    foreign = f"another-application:{uuid.uuid4().hex}"
    redis_client.set(foreign, b"kept")
    try:
        cache.set("ours", 1)
        assert redis_client.exists(cache.make_key("ours"))
        cache.clear()
        assert not redis_client.exists(cache.make_key("ours"))
        assert redis_client.get(foreign) == b"kept"
    finally:
        redis_client.delete(foreign)


def test_cache_clear__a_prefix_with_glob_characters_matches_only_itself(redis_client):
    from config.cache import FailOpenRedisCache

    run = uuid.uuid4().hex[:8]
    narrow = FailOpenRedisCache(settings.REDIS_URL, {"KEY_PREFIX": f"t[{run}]*"})
    wide = FailOpenRedisCache(settings.REDIS_URL, {"KEY_PREFIX": f"t{run}x"})
    try:
        narrow.set("k", 1)
        wide.set("k", 2)
        narrow.clear()
        assert narrow.get("k") is None
        assert wide.get("k") == 2
    finally:
        wide.clear()
