"""Pulse settings, read from the environment through django-environ.

Every registry that lets a lower layer call a higher one (docs/ARCHITECTURE.md,
"Apps, layers and what each owns") is an ordered list of dotted paths below,
like MIDDLEWARE; engagement/extension_points.py states each entry's contract and
`manage.py check` validates them (engagement/checks.py).
"""

import secrets
from datetime import timedelta
from pathlib import Path

import environ

from config.redis_connection import rq_connection

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(environ.Env().str("PULSE_VAR_DIR", default=str(BASE_DIR / "var"))).resolve()
VAR_DIR.mkdir(parents=True, exist_ok=True)

env = environ.Env(
    DEBUG=(bool, False),
    ALLOWED_HOSTS=(list, ["127.0.0.1", "localhost", "testserver"]),
    LOOPS_ENABLED=(bool, True),
)


def _secret_key() -> str:
    """SECRET_KEY from the environment, else one generated once into var/."""
    if env.str("SECRET_KEY", default=""):
        return env.str("SECRET_KEY")
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = env("DEBUG")
ALLOWED_HOSTS = env("ALLOWED_HOSTS")
LOOPS_ENABLED = env("LOOPS_ENABLED")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_rq",
    "django_htmx",
    "engagement",
    "campaigns",
    "profiles",
    "buckets",
]

MIDDLEWARE = [
    # First, so it times everything and logs the response that is sent (engagement/access_log.py).
    "engagement.access_log.AccessLogMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "config.urls"
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

# --- Database -------------------------------------------------------------
DATABASES = {
    "default": env.db_url(
        "DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'pulse.sqlite3'}"
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
        "init_command": (
            "PRAGMA journal_mode=WAL;"
            "PRAGMA synchronous=NORMAL;"
            "PRAGMA busy_timeout=30000;"
            "PRAGMA foreign_keys=ON;"
        ),
    }
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test_pulse.sqlite3")}
elif env.bool("PULSE_DB_POOL", default=False):
    # Web processes (gunicorn sets PULSE_DB_POOL in config/gunicorn.conf.py)
    # share a psycopg pool; forking RQ workers keep plain connections.
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": env.int("PULSE_DB_POOL_SIZE", default=8),
        "timeout": 10,
    }
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=0)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# SQLite builds covering indexes (`include=`) without their extra columns, as intended:
# the signal tally's (name, last_at) index covers on PostgreSQL and is a plain index on SQLite.
SILENCED_SYSTEM_CHECKS = ["models.W040"]

# --- Redis and RQ ---------------------------------------------------------
EMBEDDED_REDIS_PORT = env.int("EMBEDDED_REDIS_PORT", default=6480)
REDIS_EMBEDDED = not env.str("REDIS_URL", default="")
REDIS_URL = env.str("REDIS_URL", default=f"redis://127.0.0.1:{EMBEDDED_REDIS_PORT}/0")
REDIS_SOCKET_TIMEOUT = env.float("REDIS_SOCKET_TIMEOUT", default=2.0)

# Connect and socket timeouts on every connection, RQ's included (config/redis_connection.py).
RQ_QUEUES = {
    name: {**rq_connection(REDIS_URL, REDIS_SOCKET_TIMEOUT), "DEFAULT_TIMEOUT": timeout}
    for name, timeout in (
        ("signals", 600),
        ("messages", 600),
        ("sweeps", 3600),
        ("default", 600),
    )
}
# Pulse enqueues after commit itself (transaction.on_commit), so RQ enqueues at once.
RQ = {"DEFAULT_RESULT_TTL": 3600, "COMMIT_MODE": "auto"}

# --- Auth, i18n, static ---------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)  # WhiteNoise warns about a missing directory
DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"

# --- Logging: one key=value line per record, no personal data -------------
# engagement/log_format.py escapes every value, rewrites Django's request records
# to the route pattern and withholds exception messages (LOG_EXCEPTION_MESSAGES=1
# keeps them: development only, they may quote user data).
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "kv": {
            "()": "engagement.log_format.KeyValueFormatter",
            "exception_messages": env.bool("LOG_EXCEPTION_MESSAGES", default=False),
        },
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "kv"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        # Django's own defaults would add handlers with other formats to these two
        # (django.server writes runserver's raw request line); everything goes to root.
        "django": {"level": "INFO", "handlers": [], "propagate": True},
        "django.server": {"level": "INFO", "handlers": [], "propagate": True},
        "django.db.backends": {"level": "WARNING"},
        # 4xx responses are in the pulse.access line already; 5xx keep their traceback.
        "django.request": {"level": "ERROR"},
    },
}

# --- Pulse ----------------------------------------------------------------
PULSE_REALTIME_HORIZON = timedelta(seconds=env.int("PULSE_REALTIME_HORIZON", default=3600))
PULSE_MAX_SIGNAL_AGE = timedelta(days=env.int("PULSE_MAX_SIGNAL_AGE_DAYS", default=30))
PULSE_MAX_FUTURE_SKEW = timedelta(minutes=5)
PULSE_MAX_BODY_BYTES = 1024 * 1024
PULSE_MAX_BATCH = 1000
PULSE_DRAIN_BATCH_SIZE = env.int("PULSE_DRAIN_BATCH_SIZE", default=500)
# A batch that hits a transient database error (deadlock, timeout, lost connection) is
# retried this many times, waiting base·2^n seconds (jittered, at most the max) in between.
PULSE_DRAIN_RETRIES = env.int("PULSE_DRAIN_RETRIES", default=5)
PULSE_DRAIN_BACKOFF_SECONDS = env.float("PULSE_DRAIN_BACKOFF_SECONDS", default=0.5)
PULSE_DRAIN_BACKOFF_MAX_SECONDS = env.float("PULSE_DRAIN_BACKOFF_MAX_SECONDS", default=30.0)
# Signal names that are not user activity (beyond system signals and `$` names): see activity.py.
PULSE_NON_ACTIVITY_SIGNALS = env.list("PULSE_NON_ACTIVITY_SIGNALS", default=[])
PULSE_API_KEY_CACHE_SECONDS = 5
PULSE_JOB_RUN_RETENTION_DAYS = env.int("PULSE_JOB_RUN_RETENTION_DAYS", default=30)
PULSE_SCHEDULER_SILENT_AFTER = timedelta(minutes=3)
# After a Redis error, the request path skips Redis this long (engagement/redis_breaker.py).
PULSE_REDIS_BREAKER_SECONDS = env.float("PULSE_REDIS_BREAKER_SECONDS", default=5.0)
# Requests per minute per API key, by the scope the endpoint needs.
PULSE_RATE_LIMITS = {
    "ingest": env.int("PULSE_RATE_LIMIT_INGEST", default=6000),
    "read": env.int("PULSE_RATE_LIMIT_READ", default=3000),
    "send": env.int("PULSE_RATE_LIMIT_SEND", default=3000),
    "admin": env.int("PULSE_RATE_LIMIT_ADMIN", default=600),
    # per user, for requests made with that user's token
    "user_token": env.int("PULSE_RATE_LIMIT_USER_TOKEN", default=600),
}
# User tokens (engagement/user_tokens.py): lifetime by default and at most.
PULSE_USER_TOKEN_TTL = timedelta(seconds=env.int("PULSE_USER_TOKEN_TTL", default=3600))
PULSE_USER_TOKEN_MAX_TTL = timedelta(seconds=env.int("PULSE_USER_TOKEN_MAX_TTL", default=86400))
# Browser origins allowed to call the routes that accept user tokens ("*" for any).
PULSE_CORS_ORIGINS = env.list("PULSE_CORS_ORIGINS", default=[])

# Ordered registries: contracts in engagement/extension_points.py, checked at start-up.
PULSE_SIGNAL_HANDLERS = [
    "engagement.handlers.record_last_seen",
    "engagement.loops.items.track_item_engagement",
    "engagement.loops.lifecycle_activity.record_lifecycle_activity",
    "profiles.invalidation.drop_invalidated_values",
    "buckets.realtime.evaluate_buckets",
]
PULSE_USER_MERGE_HANDLERS = [
    "engagement.merge_handlers.move_memberships",
    "engagement.merge_handlers.move_signals",
    "engagement.loops.item_people.merge_item_engagement",
    "engagement.loops.lifecycle_handlers.merge_lifecycle",
    "campaigns.merge_handlers.move_messages",
    "campaigns.merge_handlers.merge_preferences",
    "profiles.people.merge_profiles",
    "buckets.merge_handlers.merge_memberships",
]
PULSE_USER_ERASE_HANDLERS = [
    "engagement.erase_handlers.erase_signals",
    "engagement.erase_handlers.count_memberships",
    "engagement.loops.item_people.erase_item_engagement",
    "engagement.loops.lifecycle_handlers.erase_lifecycle",
    "campaigns.erase_handlers.scrub_messages",
    "profiles.people.erase_profiles",
    "buckets.erase_handlers.leave_erased",
]
PULSE_USER_SECTIONS = [
    "engagement.user_sections.memberships",
    "engagement.user_sections.recent_signals",
    "engagement.loops.lifecycle_handlers.lifecycle_section",
]
PULSE_USER_ADMIN_PANELS = [
    "engagement.admin_panels.recent_signals",
    "engagement.loops.item_people.item_engagement_panel",
    "engagement.loops.lifecycle_handlers.lifecycle_panel",
    "campaigns.admin_panels.preferences_panel",
    "campaigns.admin_panels.inbox_panel",
    "profiles.admin_panels.profile_panel",
    "buckets.admin_panels.memberships_panel",
]
PULSE_OPENAPI_FRAGMENTS = [
    "engagement.openapi.FRAGMENT",
    "engagement.segment_openapi.FRAGMENT",
    "engagement.loops.openapi.FRAGMENT",
    "campaigns.openapi.FRAGMENT",
    "buckets.openapi.FRAGMENT",
    "profiles.openapi.FRAGMENT",
]
PULSE_AUDIENCES = []
# Called by engagement/demo.py as seeder(seed=, days=, now=) after the users' history is written.
PULSE_DEMO_SEEDERS = [
    "campaigns.demo.seed_messages",
    # before the lifecycle's, which drains: buckets defined after a drain would see no signal
    "buckets.demo.seed_buckets",
    "engagement.loops.lifecycle_demo.seed_lifecycle",
]
# Profile features (profiles/registry.py): the modules declaring them, imported at start-up.
PULSE_PROFILE_FEATURE_MODULES = [
    "profiles.features.tips",
    "profiles.features.activity",
    "profiles.features.messages",
    "profiles.features.items",
    "profiles.features.lifecycle",
]
# The signal names this deployment sends (Pulse's own `$` names are known anyway,
# profiles/catalog.py); a feature's `invalidated_by` must name one of them.
PULSE_SIGNAL_CATALOG = ["tip.served", "tip.feedback", *env.list("PULSE_SIGNAL_CATALOG", default=[])]
# An admin "Rebuild profiles" action on at most this many users runs in the request;
# larger selections become a job on the default queue.
PULSE_PROFILE_INLINE_REBUILD = 200
# What the lifecycle and profile leaves of bucket criteria read (buckets/criteria/sources.py):
# dotted paths to the lifecycle-state model, the stored profile-feature model and profiles'
# refresh_expired(features, users_queryset, now). A path that does not import makes criteria
# using that leaf invalid ("... not available in this deployment").
PULSE_BUCKET_SOURCES = {
    "lifecycle": "engagement.models.LifecycleState",
    "profile": "profiles.models.ProfileFeatureValue",
    "profile_refresh": "profiles.refresh.refresh_expired",
}
# What the 60-second tick runs (engagement/schedules.py): the JobRun kind, a UTC cron
# expression, the dotted job function `fn(run, now)`, the RQ queue its runs are enqueued on
# and their job timeout in seconds. Sweeps go on "sweeps".
PULSE_SCHEDULES = [
    {
        "kind": "prune_job_runs", "cron": "17 3 * * *", "func": "engagement.maintenance.prune_job_runs",
        "queue": "default", "timeout": 600,
    },
    {
        "kind": "daily_engagement", "cron": "0 6 * * *",
        "func": "engagement.loops.daily_engagement.daily_engagement_job", "queue": "sweeps", "timeout": 1800,
    },
    {
        "kind": "prune_messages", "cron": "47 3 * * *", "func": "campaigns.retention.prune_messages",
        "queue": "default", "timeout": 1800,
    },
    {
        "kind": "item_scores", "cron": "0 0 * * *",
        "func": "engagement.loops.item_jobs.recompute_item_scores", "queue": "sweeps", "timeout": 3600,
    },
    {
        "kind": "item_cleanup", "cron": "0 2 * * 0",
        "func": "engagement.loops.item_jobs.cleanup_item_engagement", "queue": "sweeps", "timeout": 3600,
    },
    {
        "kind": "tune_thresholds", "cron": "0 5 * * 1", "func": "engagement.loops.tuning.tune_thresholds",
        "queue": "default", "timeout": 1800,
    },
    {
        "kind": "tune_engagement", "cron": "30 5 * * 1", "func": "engagement.loops.tuning.tune_engagement",
        "queue": "default", "timeout": 1800,
    },
]
# Called in order as hook(now) once per tick, after the schedules (engagement/scheduler.py).
PULSE_TICK_HOOKS = [
    "campaigns.delivery.tick_hook",
    "buckets.dispatch.tick_hook",
]

# --- The lifecycle loop (engagement/loops/) ---------------------------------
# Days without activity (of 24 hours) before an active user gets the goodbye.
PULSE_INACTIVITY_DAYS = env.float("PULSE_INACTIVITY_DAYS", default=14)
# lookup(key) -> queryset of per-tenant calibrations (tenant_id, days), used while LOOPS_ENABLED
# (engagement/loops/thresholds.py); None turns calibrated thresholds off.
PULSE_CALIBRATION_LOOKUP = "engagement.loops.thresholds.calibration_table"
# Users per chunk of the daily engagement job.
PULSE_LIFECYCLE_CHUNK_SIZE = env.int("PULSE_LIFECYCLE_CHUNK_SIZE", default=5000)

# --- Messages (campaigns/) --------------------------------------------------
# The outbox port the engagement loops queue messages through (docs/ARCHITECTURE.md §2).
PULSE_OUTBOX = "campaigns.outbox.queue_messages"
# suppressed(category, user_id) -> SQL condition: the gate would drop that category for the user.
PULSE_OUTBOX_SUPPRESSED = "campaigns.suppression.suppressed"
PULSE_CHANNELS = {
    "in_app": "campaigns.channels.in_app.InAppChannel",
    "webhook": "campaigns.channels.webhook.WebhookChannel",
}
PULSE_DELIVERY_BATCH_SIZE = env.int("PULSE_DELIVERY_BATCH_SIZE", default=500)
PULSE_MESSAGE_LEASE = timedelta(seconds=env.int("PULSE_MESSAGE_LEASE_SECONDS", default=300))
PULSE_MESSAGE_MAX_ATTEMPTS = env.int("PULSE_MESSAGE_MAX_ATTEMPTS", default=5)
PULSE_MESSAGE_RETRY_BASE = timedelta(seconds=env.int("PULSE_MESSAGE_RETRY_BASE_SECONDS", default=60))
PULSE_MESSAGE_RETENTION_DAYS = env.int("PULSE_MESSAGE_RETENTION_DAYS", default=180)
# category → (at most this many, per rolling window), counted per user across channels.
PULSE_FREQUENCY_CAPS = {"marketing": (3, timedelta(days=7))}
PULSE_WEBHOOK_ALLOW_PRIVATE = env.bool("PULSE_WEBHOOK_ALLOW_PRIVATE", default=False)
PULSE_WEBHOOK_TIMEOUT = env.float("PULSE_WEBHOOK_TIMEOUT", default=10.0)
# A link templates may show as {{ preferences_url }}; "{user}" is the user's canonical ref.
PULSE_PREFERENCES_URL = env.str("PULSE_PREFERENCES_URL", default="")

# Admin login throttling (engagement/login_throttle.py), per username and per client address.
PULSE_LOGIN_MAX_FAILURES = env.int("PULSE_LOGIN_MAX_FAILURES", default=10)
PULSE_LOGIN_WINDOW = timedelta(seconds=env.int("PULSE_LOGIN_WINDOW_SECONDS", default=900))
PULSE_LOGIN_LOCKOUT = timedelta(seconds=env.int("PULSE_LOGIN_LOCKOUT_SECONDS", default=900))
# Proxies (IPs or CIDR networks) whose X-Forwarded-For is believed (engagement/client_address.py).
PULSE_TRUSTED_PROXIES = env.list("PULSE_TRUSTED_PROXIES", default=[])

# Item engagement (engagement/loops/items.py): signals whose `properties.text` is scanned for
# item keys (each distinct key counts once as a `mention`), and the pattern of a key.
PULSE_ITEM_TEXT_SIGNALS = env.list("PULSE_ITEM_TEXT_SIGNALS", default=["message.received"])
PULSE_ITEM_KEY_PATTERN = env.str("PULSE_ITEM_KEY_PATTERN", default=r"[A-Z]{1,4}-\d{1,5}")
