"""Benchmarks (`make bench`): the production settings on plain HTTP on localhost, with the
benchmark-only baseline endpoint and no throttling in the way."""

from .production import *  # noqa: F403
from .production import REST_FRAMEWORK

ROOT_URLCONF = "config.bench_urls"
SECURE_SSL_REDIRECT = False
SECURE_HSTS_SECONDS = 0
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
REST_FRAMEWORK["DEFAULT_THROTTLE_CLASSES"] = []
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "WARNING"}}
