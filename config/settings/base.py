"""Settings shared by every environment. Values come from the environment (django-environ);
`.env.example` lists every variable."""

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
if (BASE_DIR / ".env").is_file():
    environ.Env.read_env(BASE_DIR / ".env")

DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS: list[str] = env.list("DJANGO_ALLOWED_HOSTS", default=[])

# --- Applications -------------------------------------------------------------------------

DJANGO_APPS = [
    "config.admin_site.AttuneAdminConfig",  # django.contrib.admin with the overview index
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
]
THIRD_PARTY_APPS = [
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "drf_standardized_errors",
]
# Lowest first: dependencies point one way (DESIGN.md §1), logs imports none of them.
LOCAL_APPS = [
    "logs",
    "personalization",
    "experiments",
    "outcomes",
    "recommendations",
]
INSTALLED_APPS = DJANGO_APPS + THIRD_PARTY_APPS + LOCAL_APPS

AUTH_USER_MODEL = "personalization.User"
LOGIN_URL = "admin:login"

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "config.middleware.RequestBodyLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
CSRF_FAILURE_VIEW = "config.api.views.csrf_failure"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------------------


def database_settings(database: dict[str, Any]) -> dict[str, Any]:
    """What every environment adds to the parsed DATABASE_URL (production.py uses it too)."""
    database["CONN_MAX_AGE"] = env.int("DJANGO_CONN_MAX_AGE", default=60)
    # A persistent connection that died with a database restart is replaced instead of
    # failing one request per worker (DESIGN.md §10).
    database["CONN_HEALTH_CHECKS"] = True
    if database["ENGINE"] == "django.db.backends.postgresql":
        database["OPTIONS"] = {
            **database.get("OPTIONS", {}),
            "options": (
                f"-c statement_timeout={env.int('DATABASE_STATEMENT_TIMEOUT_MS', default=30000)}"
            ),
            # Server-side parameters let psycopg prepare the hot queries once per connection,
            # so PostgreSQL stops planning them on every request: a statement run this many
            # times on a connection is prepared (psycopg's prepare_threshold; Django leaves it
            # off unless set, and then even the decide call's learner read is planned anew
            # each time: 410 µs instead of 110 µs). Behind PgBouncer in transaction mode this
            # needs PgBouncer 1.21+ (max_prepared_statements) or DATABASE_PREPARE_THRESHOLD=0.
            "server_side_binding": True,
            "prepare_threshold": env.int("DATABASE_PREPARE_THRESHOLD", default=5) or None,
        }
    elif database["ENGINE"] == "django.db.backends.sqlite3":
        # Web, worker and beat share one file in the embedded default: WAL lets readers run
        # beside a writer, IMMEDIATE transactions queue writers instead of failing them.
        database["CONN_MAX_AGE"] = 0
        database["OPTIONS"] = {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    return database


DATABASES = {
    "default": database_settings(
        env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")
    ),
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache and broker ---------------------------------------------------------------------

REDIS_URL = env.str("REDIS_URL", default="")


def redis_url_with_db(url: str, db: int) -> str:
    """The same Redis server with another logical database, so that clearing the cache
    never touches the Celery queues."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, parts.fragment))


# Redis that vanishes without closing the connection, or stops answering, must cost a request
# at most these seconds, never a gunicorn worker's whole timeout (DESIGN.md §10). They apply to
# the cache, the broker and the result backend alike.
REDIS_SOCKET_CONNECT_TIMEOUT = env.float("REDIS_SOCKET_CONNECT_TIMEOUT", default=1.0)
REDIS_SOCKET_TIMEOUT = env.float("REDIS_SOCKET_TIMEOUT", default=2.0)

if REDIS_URL:
    CACHES = {
        "default": {
            # Fails open: with Redis down, throttles let requests through and cached catalogs
            # are read from the database, with a logged warning (config/cache.py).
            "BACKEND": "config.cache.FailOpenRedisCache",
            "LOCATION": env.str(
                "REDIS_CACHE_URL",
                default=redis_url_with_db(REDIS_URL, env.int("REDIS_CACHE_DB", 1)),
            ),
            "KEY_PREFIX": "attune",
            # After a failure the server is skipped this long, so that a hung Redis costs one
            # socket timeout per period instead of one per cache call.
            "RETRY_AFTER": env.float("REDIS_CACHE_RETRY_AFTER", default=5.0),
            "OPTIONS": {
                "socket_connect_timeout": REDIS_SOCKET_CONNECT_TIMEOUT,
                "socket_timeout": REDIS_SOCKET_TIMEOUT,
            },
        }
    }
else:
    # Files under var/: web, worker and beat share it, so a catalog change made by one
    # process invalidates the others' cached copy (local memory would not).
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

BROKER_DATA_DIR = VAR_DIR / "broker"
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_RESULT_BACKEND = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # Above every task's hard time limit and retry countdown: a task still running when
        # the visibility timeout expires is delivered again and runs twice (DESIGN.md §10).
        "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=7200),
        # How often a worker looks for messages of dead workers to deliver again.
        "unacked_restore_interval": env.int("CELERY_UNACKED_RESTORE_INTERVAL", default=10),
        "unacked_restore_throttle": env.int("CELERY_UNACKED_RESTORE_THROTTLE", default=10),
        "socket_timeout": REDIS_SOCKET_TIMEOUT,
        "socket_connect_timeout": REDIS_SOCKET_CONNECT_TIMEOUT,
    }
    CELERY_REDIS_SOCKET_TIMEOUT = REDIS_SOCKET_TIMEOUT
    CELERY_REDIS_SOCKET_CONNECT_TIMEOUT = REDIS_SOCKET_CONNECT_TIMEOUT
    # A caller waiting for a result gives up after a few seconds of outage, not kombu's 20
    # reconnections a second apart.
    CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {
        "retry_policy": {"max_retries": 2, "interval_start": 0, "interval_step": 0.5},
    }
else:
    CELERY_BROKER_URL = "filesystem://localhost//"
    CELERY_RESULT_BACKEND = f"file://{VAR_DIR / 'results'}"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DATA_DIR / "queue"),
        "data_folder_out": str(BROKER_DATA_DIR / "queue"),
        "processed_folder": str(BROKER_DATA_DIR / "processed"),
        # Fanout exchanges (worker control, pidbox); kombu's default is ./control.
        "control_folder": str(BROKER_DATA_DIR / "control"),
        "store_processed": False,
    }
CELERY_TIMEZONE = "UTC"
CELERY_ENABLE_UTC = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_EXPIRES = 3600
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=1800)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=1700)
# Nobody reads the periodic tasks' return values: storing them only adds a Redis round trip,
# and subscribing to a result while enqueueing would block a request whenever Redis is down.
# A caller that wants a result asks with apply_async(ignore_result=False).
CELERY_TASK_IGNORE_RESULT = True
# A worker killed without acknowledging (SIGKILL, a lost machine) holds its messages in the
# broker's `unacked` hash until the visibility timeout, hours. Every worker records the
# deliveries it holds every WORKER_HEARTBEAT_SECONDS; a worker silent for
# WORKER_LIVENESS_SECONDS is dead, and a live worker puts its messages back on their queues
# (config/worker_liveness.py).
WORKER_HEARTBEAT_SECONDS = env.float("WORKER_HEARTBEAT_SECONDS", default=5.0)
WORKER_LIVENESS_SECONDS = env.float("WORKER_LIVENESS_SECONDS", default=30.0)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# --- Passwords, i18n, static --------------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# Request bodies above this are answered with a JSON 413 before any view parses them.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=5 * 1024 * 1024)

# --- API ----------------------------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "config.api.authentication.TokenAuthentication",
        "config.api.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["config.api.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "config.api.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_THROTTLE_CLASSES": [
        "config.api.throttles.AnonymousRateThrottle",
        "config.api.throttles.CallerRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env.str("THROTTLE_RATE_ANON", default="60/minute"),
        "user": env.str("THROTTLE_RATE_USER", default="600/minute"),
        "service": env.str("THROTTLE_RATE_SERVICE", default="12000/minute"),
        # Password guessing on auth/token/: per client address, and per username whatever
        # the address (config/api/throttles.py).
        "login_ip": env.str("THROTTLE_RATE_LOGIN_IP", default="10/minute"),
        "login_user": env.str("THROTTLE_RATE_LOGIN_USER", default="10/minute"),
    },
    # How many proxies in front of the web process append to X-Forwarded-For; the client
    # address the throttles count is the one the outermost of them saw. 0: REMOTE_ADDR, and
    # a client cannot pick its address by sending the header.
    "NUM_PROXIES": env.int("DJANGO_NUM_PROXIES", default=0),
    "DEFAULT_SCHEMA_CLASS": "drf_standardized_errors.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "drf_standardized_errors.handler.exception_handler",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

DRF_STANDARDIZED_ERRORS = {
    "EXCEPTION_HANDLER_CLASS": "config.api.exception_handler.ExceptionHandler",
    # The contract is one JSON error shape for every error, DEBUG or not; the traceback
    # still reaches the log through got_request_exception.
    "ENABLE_IN_DEBUG_FOR_UNHANDLED_EXCEPTIONS": True,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Attune API",
    "DESCRIPTION": (
        "Personalization and experimentation for learning and content applications. "
        "Authenticate with `POST /api/v1/auth/token/` and send `Authorization: Token <key>`. "
        "Service accounts with `personalization.act_for_users` may send "
        "`X-On-Behalf-Of: <external_id>` or `X-On-Behalf-Of: id:<attune id>` to act for one of "
        "their learners. Every error has the shape "
        '`{"type", "errors": [{"code", "detail", "attr"}]}`.'
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Names for drf-standardized-errors' error-code enums, so the schema has no collisions.
    "ENUM_NAME_OVERRIDES": {
        name: f"drf_standardized_errors.openapi_serializers.{name}.choices"
        for name in [
            "ValidationErrorEnum",
            "ClientErrorEnum",
            "ServerErrorEnum",
            *(f"ErrorCode{code}Enum" for code in (401, 403, 404, 405, 406, 415, 429, 500)),
        ]
    }
    | {
        "InteractionTypeEnum": "config.api.enums.INTERACTION_TYPE",
        "RequestLogStatusEnum": "config.api.enums.REQUEST_LOG_STATUS",
        "ExperimentStatusEnum": "config.api.enums.EXPERIMENT_STATUS",
        "ContentItemTypeEnum": "config.api.enums.CONTENT_ITEM_TYPE",
        "OutcomeContentTypeEnum": "config.api.enums.OUTCOME_CONTENT_TYPE",
        "ContextEnum": "config.api.enums.CONTEXT",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_standardized_errors.openapi_hooks.postprocess_schema_enums",
        "config.api.schema.add_on_behalf_of_header",
    ],
}

# --- Attune -------------------------------------------------------------------------------

LOG_RETENTION_DAYS = env.int("LOG_RETENTION_DAYS", default=90)
# The decision log (exposures, propensities) is kept this long; older decisions the reward
# run has counted are purged daily in batches (outcomes/services/retention.py).
DECISION_RETENTION_DAYS = env.int("DECISION_RETENTION_DAYS", default=400)

# Local-only defaults for `manage.py seed`; production settings have none.
SEED_ADMIN_USERNAME = env.str("SEED_ADMIN_USERNAME", default="admin")
SEED_ADMIN_EMAIL = env.str("SEED_ADMIN_EMAIL", default="admin@attune.local")
SEED_ADMIN_PASSWORD = env.str("SEED_ADMIN_PASSWORD", default="attune-admin")
SEED_DEMO_USERNAME = env.str("SEED_DEMO_USERNAME", default="demo")
SEED_DEMO_EMAIL = env.str("SEED_DEMO_EMAIL", default="demo@attune.local")
SEED_DEMO_PASSWORD = env.str("SEED_DEMO_PASSWORD", default="attune-demo")
SEED_CLIENT_USERNAME = env.str("SEED_CLIENT_USERNAME", default="client-app")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
    },
}

# Bandits (DESIGN.md §4, §5.4)
BANDIT_PRIOR_STRENGTH = env.float("BANDIT_PRIOR_STRENGTH", default=10.0)
BANDIT_BURN_IN = env.int("BANDIT_BURN_IN", default=20)
BANDIT_UPDATE_MINUTES = env.int("BANDIT_UPDATE_MINUTES", default=15)
# How long the decide call may serve cached catalogs; every change invalidates them at once.
CATALOG_CACHE_SECONDS = env.int("CATALOG_CACHE_SECONDS", default=300)
POPULATION_CACHE_SECONDS = env.int("POPULATION_CACHE_SECONDS", default=60)
# The per-learner policy of §4 step 3: EPSILON_GREEDY (shrunk estimates, the level's confidence
# gate) or CONTEXTUAL_THOMPSON (linear Thompson sampling over learner features with the
# population prior, experiments/contextual.py), both within the level's exploration budget.
ADAPTIVE_POLICY = env.str("ADAPTIVE_POLICY", default="EPSILON_GREEDY").strip().upper()
if ADAPTIVE_POLICY not in {"EPSILON_GREEDY", "CONTEXTUAL_THOMPSON"}:
    raise ImproperlyConfigured(
        f"ADAPTIVE_POLICY={ADAPTIVE_POLICY!r}: choose EPSILON_GREEDY or CONTEXTUAL_THOMPSON."
    )

# Webhooks (DESIGN.md §3, §6). Endpoints whose host resolves to a loopback or private
# address are refused unless WEBHOOK_ALLOW_PRIVATE (local and test settings allow them).
WEBHOOK_ALLOW_PRIVATE = env.bool("WEBHOOK_ALLOW_PRIVATE", default=False)
# Seconds a receiver has to answer one POST (connect, send and answer each).
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", default=10.0)
# Due deliveries the periodic run hands to the workers at most per run.
WEBHOOK_DISPATCH_BATCH = env.int("WEBHOOK_DISPATCH_BATCH", default=500)

# Outcomes and effectiveness (DESIGN.md §5)
OUTCOME_REWARD_WEIGHTS = {
    "retention_score": 0.3,
    "performance_score": 0.3,
    "completion_rate": 0.2,
    "engagement_score": 0.2,
}
EFFECTIVENESS_WINDOW_DAYS = env.int("EFFECTIVENESS_WINDOW_DAYS", default=14)
# Off-policy evaluation (§5.6): the reward of a decision without an outcome — a number in
# [0, 1], or "exclude" to leave such decisions out (the estimate is then of the decisions that
# got an outcome, which is biased if a strategy changes whether learners report one).
_ope_default = env.str("OPE_DEFAULT_REWARD", default="0").strip().lower()
OPE_DEFAULT_REWARD: float | None = None
if _ope_default not in {"exclude", "none", ""}:
    try:
        OPE_DEFAULT_REWARD = float(_ope_default)
    except ValueError:
        OPE_DEFAULT_REWARD = float("nan")
    if not 0.0 <= OPE_DEFAULT_REWARD <= 1.0:
        raise ImproperlyConfigured(
            f"OPE_DEFAULT_REWARD={_ope_default!r}: give a reward in [0, 1] or 'exclude'."
        )
MIN_SAMPLE_SIZE = env.int("MIN_SAMPLE_SIZE", default=20)
# Publishing a task gives up quickly when the broker is down: the write that enqueues it
# has committed, and the periodic tasks reconcile (DESIGN.md §10).
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
}
CELERY_BROKER_CONNECTION_TIMEOUT = 2
