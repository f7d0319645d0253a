from django.apps import AppConfig


class ExportsConfig(AppConfig):
    """Delivery of audit log entries to each tenant's S3 bucket (see its own issue)."""

    name = "exports"
    default_auto_field = "django.db.models.BigAutoField"
