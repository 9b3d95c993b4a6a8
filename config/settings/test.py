"""The test suite. PostgreSQL and Redis when DATABASE_URL / REDIS_URL are set, the embedded
default otherwise."""

import os
import secrets
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from .base import *  # noqa: F403
from .base import (
    CACHES,
    CELERY_BROKER_TRANSPORT_OPTIONS,
    REDIS_URL,
    REST_FRAMEWORK,
    env,
    redis_url_with_db,
)

DEBUG = False
SECRET_KEY = "test-only-secret-key-with-enough-length-and-entropy-3b9f0e7d1a"
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# The webhook tests' receivers listen on 127.0.0.1.
WEBHOOK_ALLOW_PRIVATE = True

REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] = {
    "anon": env.str("THROTTLE_RATE_ANON", default="100000/minute"),
    "user": env.str("THROTTLE_RATE_USER", default="100000/minute"),
    "service": env.str("THROTTLE_RATE_SERVICE", default="100000/minute"),
    "login_ip": env.str("THROTTLE_RATE_LOGIN_IP", default="100000/minute"),
    "login_user": env.str("THROTTLE_RATE_LOGIN_USER", default="100000/minute"),
}

# One run of the suite, shared with the processes it starts (end-to-end workers, live
# servers), which inherit the environment: its cache keys and its default queue carry it, so
# that a run touches nothing of another run, or of an application, on the same Redis.
TEST_RUN = os.environ.setdefault("ATTUNE_TEST_RUN", secrets.token_hex(4))
TEST_KEY_PREFIX = f"attune-test-{TEST_RUN}"

if not REDIS_URL:
    # One process: local memory, cleared between tests, apart from `make run`'s files.
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    # The filesystem broker in a directory of this run's own, not `make run`'s var/broker.
    TEST_BROKER_DIR = Path(tempfile.gettempdir()) / TEST_KEY_PREFIX
    CELERY_BROKER_TRANSPORT_OPTIONS = CELERY_BROKER_TRANSPORT_OPTIONS | {
        "data_folder_in": str(TEST_BROKER_DIR / "queue"),
        "data_folder_out": str(TEST_BROKER_DIR / "queue"),
        "processed_folder": str(TEST_BROKER_DIR / "processed"),
        "control_folder": str(TEST_BROKER_DIR / "control"),
    }
    CELERY_RESULT_BACKEND = f"file://{TEST_BROKER_DIR / 'results'}"
else:
    # The logical database of REDIS_URL unless REDIS_TEST_DB names another; cache and broker
    # share it, the cache clearing only the keys under this run's prefix (config/cache.py).
    REDIS_URL = redis_url_with_db(
        REDIS_URL,
        env.int("REDIS_TEST_DB", default=int(urlsplit(REDIS_URL).path.strip("/") or 0)),
    )
    CACHES["default"]["LOCATION"] = REDIS_URL
    CACHES["default"]["KEY_PREFIX"] = TEST_KEY_PREFIX
    CELERY_BROKER_URL = REDIS_URL
    CELERY_RESULT_BACKEND = REDIS_URL

# What the code under test enqueues waits on this run's queue; the suite deletes it at its end.
CELERY_TASK_DEFAULT_QUEUE = TEST_KEY_PREFIX

# No persistent connections: the live server's threads must not keep the test database open.
DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405
