from django.apps import AppConfig


class AuditlogConfig(AppConfig):
    """The audit log: capture, storage and (later) reading of entries."""

    name = "auditlog"
    verbose_name = "Audit log"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import signals  # noqa: F401  (connects the auth and Celery receivers)
