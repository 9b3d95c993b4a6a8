"""The test suite. PostgreSQL and Redis when DATABASE_URL / REDIS_URL are set, the embedded
default otherwise."""

from .base import *  # noqa: F403
from .base import REST_FRAMEWORK, env

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

if not REDIS_URL:  # noqa: F405
    # One process: local memory, cleared between tests, apart from `make run`'s files.
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
if CACHES["default"]["BACKEND"].endswith("RedisCache"):
    # A database of its own: the suite clears the cache between tests.
    CACHES["default"]["LOCATION"] = redis_url_with_db(  # noqa: F405
        REDIS_URL,  # noqa: F405
        env.int("REDIS_TEST_CACHE_DB", default=15),
    )

# No persistent connections: the live server's threads must not keep the test database open.
DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405
