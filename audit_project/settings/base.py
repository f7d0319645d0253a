"""Settings shared by every environment; values come from the environment (django-environ)."""

from pathlib import Path

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

from audit_project.csp import NONCE, NONE, SELF

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)


def replica_database(primary: dict, replica: dict) -> dict:
    """The settings of the read replica alias: PostgreSQL only, reads in autocommit.

    No ``ATOMIC_REQUESTS``: a read on the replica is one statement with its own snapshot,
    taken after the routing check (auditlog/routing.py). A short connect timeout keeps an
    unreachable replica from stalling reads that then go to the primary.
    """
    engines = {primary["ENGINE"], replica["ENGINE"]}
    if engines != {"django.db.backends.postgresql"}:
        raise ImproperlyConfigured(
            "DATABASE_REPLICA_URL needs PostgreSQL for both DATABASE_URL and the replica."
        )
    replica["ATOMIC_REQUESTS"] = False
    replica.setdefault("OPTIONS", {}).setdefault("connect_timeout", 2)
    return replica


SECRET_KEY = env.str("SECRET_KEY", default="")
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "auditlog",
    "tenants",
    "exports",
]

MIDDLEWARE = [
    # First: load balancers probe over plain HTTP by address (see audit_project/health.py).
    "audit_project.health.ProbeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "audit_project.csp.ContentSecurityPolicyMiddleware",
    # Audit data and settings are private: no cache keeps a copy (audit_project/cache.py).
    "audit_project.cache.NoStoreMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "auditlog.middleware.AuditContextMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# Content-Security-Policy of every response (audit_project/csp.py): scripts, styles and
# everything else from our own origin only; inline script or style only with the nonce.
# Images may also be data: URLs (Swagger UI's icons).
SECURE_CSP = {
    "default-src": [SELF],
    "script-src": [SELF, NONCE],
    "style-src": [SELF, NONCE],
    "img-src": [SELF, "data:"],
    "object-src": [NONE],
    "base-uri": [NONE],
    "form-action": [SELF],
    "frame-ancestors": [NONE],
}

ROOT_URLCONF = "audit_project.urls"
WSGI_APPLICATION = "audit_project.wsgi.application"

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
                "audit_project.csp.csp",
            ],
        },
    },
]


def database(config: dict) -> dict:
    """A database from a URL, with what every environment needs of it.

    Every request is one transaction: a change and its audit entry commit or roll back
    together. On SQLite that transaction takes the write lock when it begins (``BEGIN
    IMMEDIATE``), so concurrent writers queue on the busy timeout instead of failing: a
    deferred transaction that reads first and writes later cannot wait for the lock (in WAL
    mode SQLite refuses the upgrade at once with "database is locked"). WAL lets readers
    outside a request go on while a writer holds the lock. synchronous=NORMAL is SQLite's
    advice for WAL: a commit survives a crash of the application, only a power loss can undo
    the last ones (production runs on PostgreSQL).
    """
    config["ATOMIC_REQUESTS"] = True
    if config["ENGINE"] == "django.db.backends.sqlite3":
        config["OPTIONS"] = {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,  # seconds a writer waits for the lock before giving up
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
            **config.get("OPTIONS", {}),
        }
    return config


DATABASES = {
    "default": database(env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")),
}
# Optional streaming replica of the default database: the read path of the audit log may
# be served from it (auditlog/routing.py decides per read); nothing else ever uses it.
DATABASE_REPLICA_URL = env.str("DATABASE_REPLICA_URL", default="")
if DATABASE_REPLICA_URL:
    DATABASES["replica"] = replica_database(DATABASES["default"], env.db("DATABASE_REPLICA_URL"))
    DATABASE_ROUTERS = ["auditlog.routing.PrimaryReplicaRouter"]
# Optional owner connection for partition maintenance and retention (auditlog/partitions.py):
# the application role cannot create, detach or drop partitions. Only the process that runs
# the maintenance queue needs it; without it maintenance uses the default connection.
DATABASE_MAINTENANCE_URL = env.str("DATABASE_MAINTENANCE_URL", default="")
if DATABASE_MAINTENANCE_URL:
    DATABASES["maintenance"] = database(env.db("DATABASE_MAINTENANCE_URL"))
    DATABASES["maintenance"]["ATOMIC_REQUESTS"] = False
    if DATABASES["maintenance"]["ENGINE"] != "django.db.backends.postgresql":
        raise ImproperlyConfigured("DATABASE_MAINTENANCE_URL needs PostgreSQL.")
# Days of entries the database keeps; older whole months are dropped unless an entry is
# still undelivered to an enabled S3 export (auditlog/retention.py). The bucket keeps all.
AUDIT_LOG_RETENTION_DAYS = env.int("AUDIT_LOG_RETENTION_DAYS", default=400)
if AUDIT_LOG_RETENTION_DAYS < 1:
    raise ImproperlyConfigured("AUDIT_LOG_RETENTION_DAYS must be 1 or more.")
# Seconds a person's reads stay on the primary after a write of theirs (with a replica).
AUDIT_LOG_READ_YOUR_WRITES_SECONDS = env.int("AUDIT_LOG_READ_YOUR_WRITES_SECONDS", default=5)
# Milliseconds the Audit logs tab's activity chart may spend counting (PostgreSQL); a range
# holding more entries than that allows is listed without its chart.
AUDIT_LOG_CHART_TIMEOUT_MS = env.int("AUDIT_LOG_CHART_TIMEOUT_MS", default=100)
# Entries the chart counts at most, by the planner's estimate (about 45 ms per 100,000 on
# the bench machine); a span estimated above it is listed without its chart at once.
AUDIT_LOG_CHART_MAX_ENTRIES = env.int("AUDIT_LOG_CHART_MAX_ENTRIES", default=150_000)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "tenants.User"
# Accounts are per tenant: an email is unique within a tenant only, and this backend signs
# in the account whose password matches (asking for the tenant when several do).
AUTHENTICATION_BACKENDS = ["tenants.backends.TenantAccountBackend"]
# auth.W004 (auth.E003 with Django's own backend) wants USERNAME_FIELD unique across all users;
# the per-tenant constraint and the backend above stand in for it (docs/decisions.md).
SILENCED_SYSTEM_CHECKS = ["auth.W004", "auth.E003"]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"

# Fernet key that encrypts credential values at rest (44 url-safe base64 characters).
CREDENTIAL_ENCRYPTION_KEY = env.str("CREDENTIAL_ENCRYPTION_KEY", default="")

# How many reverse proxies in front of the app append to X-Forwarded-For. 0: use the socket.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)

REDIS_URL = env.str("REDIS_URL", default="")
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "filesystem://")
CELERY_BROKER_TRANSPORT_OPTIONS = (
    {
        "data_folder_in": str(BASE_DIR / "var" / "broker"),
        "data_folder_out": str(BASE_DIR / "var" / "broker"),
        "processed_folder": str(BASE_DIR / "var" / "broker-processed"),
        "control_folder": str(BASE_DIR / "var" / "broker-control"),
        "store_processed": False,
    }
    if CELERY_BROKER_URL.startswith("filesystem")
    else {}
)
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SOFT_TIME_LIMIT = 600
CELERY_TASK_TIME_LIMIT = 660
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BEAT_SCHEDULE: dict = {
    "audit-log-export": {
        "task": "exports.tasks.export_all_tenants",
        "schedule": crontab(minute="*/15"),
    },
    # Daily, on the maintenance queue (the owner's connection): months ahead, DEFAULT drained,
    # then retention. Each is idempotent, so a missed or repeated run does no harm.
    "audit-log-partitions": {
        "task": "auditlog.tasks.audit_log_partitions",
        "schedule": crontab(hour=3, minute=7),
    },
    "audit-log-retention": {
        "task": "auditlog.tasks.audit_log_prune",
        "schedule": crontab(hour=3, minute=37),
    },
}
# DDL runs only where DATABASE_MAINTENANCE_URL is: the process consuming this queue.
CELERY_TASK_ROUTES = {"auditlog.tasks.audit_log_*": {"queue": "maintenance"}}
CELERY_BEAT_SCHEDULE_FILENAME = str(BASE_DIR / "var" / "celerybeat-schedule")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "tenants.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # Every endpoint is rate limited; the audit log API sets its own throttle (and budget).
    "DEFAULT_THROTTLE_CLASSES": ["tenants.throttling.DomainApiThrottle"],
    "DEFAULT_PARSER_CLASSES": [
        "auditlog.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "EXCEPTION_HANDLER": "tenants.apis.exception_handler",
    # Integer ids and the error responses of every endpoint (audit_project/openapi.py).
    "DEFAULT_SCHEMA_CLASS": "audit_project.openapi.ApiSchema",
}

# "plain" (human-readable) or "json": one JSON object per line, with the request, tenant and
# user ids where known (audit_project/logformat.py).
LOG_FORMAT = env.str("LOG_FORMAT", default="plain")
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be plain or json, not {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "audit_project.logformat.JsonFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}
# Celery's own log format replaces the root handler unless told not to; JSON lines stay JSON.
CELERY_WORKER_HIJACK_ROOT_LOGGER = LOG_FORMAT == "plain"

CACHES = {
    "default": (
        {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            # An unreachable Redis fails a request (and /readyz) in seconds, never hangs it.
            "OPTIONS": {"socket_connect_timeout": 3, "socket_timeout": 3},
        }
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

# What /readyz checks: name -> function that raises when this process cannot serve.
READINESS_CHECKS = {
    "database": "audit_project.health.database_reachable",
    "migrations": "audit_project.health.migrations_applied",
    "cache": "audit_project.health.cache_reachable",
    "broker": "audit_project.health.broker_reachable",
    "static_files": "audit_project.health.static_files_collected",
    # Reported ("not_empty"), never failing: capture works while DEFAULT holds entries.
    "default_partition": "auditlog.partitions.default_partition_empty",
}

# Rate limits, per API key (or session user): the audit log API, and every other endpoint
# (the domain API, export settings, the schema), each with its own budget. GCRA: never more
# than the count in any such period (auditlog/throttling.py).
AUDIT_LOG_API_RATE = env.str("AUDIT_LOG_API_RATE", default="1000/min")
DOMAIN_API_RATE = env.str("DOMAIN_API_RATE", default="1000/min")

# Brute-force protection of /login/ and /admin/login/: failed sign-ins allowed in any period
# (e.g. "5/15min"), per account (the email tried) and per client IP, before both refuse
# even the right password (then one try per period). Counted in the default cache (Redis).
SIGN_IN_FAILURES_PER_ACCOUNT = env.str("SIGN_IN_FAILURES_PER_ACCOUNT", default="5/15min")
SIGN_IN_FAILURES_PER_IP = env.str("SIGN_IN_FAILURES_PER_IP", default="50/15min")

# The OpenAPI schema and docs (/api/v1/schema, /api/v1/docs) are public by default: the API
# is a published, Tines-compatible contract. False: only signed-in users and API keys.
API_SCHEMA_PUBLIC = env.bool("API_SCHEMA_PUBLIC", default=True)
SPECTACULAR_SETTINGS = {
    "TITLE": "Audit logs API",
    "DESCRIPTION": (
        "A tenant's audit log (wire-compatible with the public Tines audit-log API), its S3 "
        "export settings, and the domain it records: users, teams, credentials, resources, "
        "stories, pages, API keys and the tenant's settings. Authenticate with "
        "`Authorization: Bearer <key>`, `X-User-Token: <key>` or a session (unsafe methods "
        "then need the CSRF token). Errors of the audit log API are "
        '`{"errors": [{"message", "details"}]}`; every other endpoint answers DRF\'s way: '
        '`{field: [messages]}` for invalid input, `{"detail": "..."}` otherwise. A body over '
        'the upload limit is a 413 with `{"errors": [...]}` everywhere.'
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "SERVE_PERMISSIONS": ["audit_project.openapi.SchemaAccess"],
    # Requests and responses are separate components: write-only fields (a credential's
    # value, a password) appear in requests only, read-only ones in responses only.
    "COMPONENT_SPLIT_REQUEST": True,
    "PREPROCESSING_HOOKS": ["audit_project.openapi.canonical_paths"],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "audit_project.openapi.error_headers",
    ],
    "ENUM_NAME_OVERRIDES": {
        "TenantRoleEnum": "tenants.models.User.Role",
        "TeamRoleEnum": "tenants.models.Membership.Role",
    },
    "TAGS": [
        {
            "name": "audit_logs",
            "description": "The tenant's audit log (owners and AUDIT_LOG_READ).",
        },
        {"name": "export_settings", "description": "The audit log's S3 export (owners only)."},
        {"name": "users", "description": "The tenant's users (owners only)."},
        {"name": "teams", "description": "Teams and their members."},
        {"name": "credentials", "description": "Secrets of a team; values are write-only."},
        {"name": "resources", "description": "Shared, non-secret values of a team."},
        {"name": "stories", "description": "Stories, their archive and their versions."},
        {"name": "pages", "description": "Pages of stories, and their publishing."},
        {"name": "api_keys", "description": "API keys; a key is shown once, when created."},
        {"name": "tenant", "description": "The caller's tenant settings (owners only)."},
    ],
    # Swagger UI from drf-spectacular-sidecar's static files: no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Audit log export to each tenant's S3 bucket (exports/) -------------------------------
# Entries younger than this are not exported yet: a transaction still open may yet commit an
# older entry. On PostgreSQL the cutoff is also held back to the oldest open transaction, so
# the window only has to cover clock skew between app servers and the database.
AUDIT_EXPORT_SETTLE_SECONDS = env.int("AUDIT_EXPORT_SETTLE_SECONDS", default=300)
# Entries per exported object (one gzip NDJSON file).
AUDIT_EXPORT_MAX_ENTRIES_PER_OBJECT = env.int("AUDIT_EXPORT_MAX_ENTRIES_PER_OBJECT", default=50000)
# Our AWS account: the principal tenants trust in their role's trust policy.
AUDIT_EXPORT_AWS_ACCOUNT_ID = env.str("AUDIT_EXPORT_AWS_ACCOUNT_ID", default="")
# Ed25519 private key that signs export manifests: base64 of the raw 32 bytes.
AUDIT_EXPORT_SIGNING_KEY = env.str("AUDIT_EXPORT_SIGNING_KEY", default="")
