"""Test settings: the database comes from DATABASE_URL (PostgreSQL or SQLite)."""

from .base import *  # noqa: F403
from .base import DATABASES, env

SECRET_KEY = "test-only-not-secret"  # noqa: S105
ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]
CREDENTIAL_ENCRYPTION_KEY = "dGVzdC1rZXktdGVzdC1rZXktdGVzdC1rZXktdGVzdC0="
# The replica streams the primary's test database: pytest-django creates it on the primary
# only, and the replica alias connects to the same name on the replica server.
if "replica" in DATABASES:
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}
# Maintenance (partitions, retention) on its own connection to the test database, as the
# owner: as in production, where web and worker connect as the application role.
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["maintenance"] = {
        **DATABASES["default"],
        "ATOMIC_REQUESTS": False,
        "TEST": {"MIRROR": "default"},
    }
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="memory://")
CELERY_TASK_ALWAYS_EAGER = False
# Export: a fixed test signing key, moto's account, and a short settle window.
AUDIT_EXPORT_SIGNING_KEY = "ka96e1+8FpW1n3AyX50K9p2YSfMgx8g6Vnpuuc80d1g="
AUDIT_EXPORT_AWS_ACCOUNT_ID = "123456789012"
AUDIT_EXPORT_SETTLE_SECONDS = env.int("AUDIT_EXPORT_SETTLE_SECONDS", default=0)
# The end-to-end test runs beat every few seconds instead of every 15 minutes.
if env.int("AUDIT_EXPORT_BEAT_SECONDS", default=0):
    CELERY_BEAT_SCHEDULE = {
        "audit-log-export": {
            "task": "exports.tasks.export_all_tenants",
            "schedule": env.int("AUDIT_EXPORT_BEAT_SECONDS"),
        },
    }
