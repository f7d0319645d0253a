"""Local development: embedded defaults (SQLite, a file-system Celery broker), DEBUG on."""

from .base import *  # noqa: F403
from .base import env

DEBUG = env.bool("DEBUG", default=True)
SECRET_KEY = env.str("SECRET_KEY", default="local-development-only-not-secret")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
# A fixed development key; production has no default.
CREDENTIAL_ENCRYPTION_KEY = env.str(
    "CREDENTIAL_ENCRYPTION_KEY", default="bG9jYWwtZGV2ZWxvcG1lbnQta2V5LW5vdC1zZWNyZXQ="
)
# Export: a fixed development signing key (never for real data) and moto's default account.
AUDIT_EXPORT_SIGNING_KEY = env.str(
    "AUDIT_EXPORT_SIGNING_KEY", default="AJzhYFaXd9GF+XKLHvnQwkxsy+obZRkL3h5L90YY9z4="
)
AUDIT_EXPORT_AWS_ACCOUNT_ID = env.str("AUDIT_EXPORT_AWS_ACCOUNT_ID", default="123456789012")
# A laptop's transactions are short: export entries 10 seconds old, not 5 minutes, so that
# "Export now" right after a change sends it.
AUDIT_EXPORT_SETTLE_SECONDS = env.int("AUDIT_EXPORT_SETTLE_SECONDS", default=10)
