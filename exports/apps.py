from django.apps import AppConfig


class ExportsConfig(AppConfig):
    """Delivery of audit log entries to each tenant's S3 bucket; its settings are audited."""

    name = "exports"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from auditlog import retention
        from auditlog.signals import audit

        from . import selectors
        from .models import ExportSettings

        # Retention never drops an entry this export has not delivered yet.
        retention.register_hold(selectors.retention_holds)

        audit(
            ExportSettings,
            target_type="audit_log_export",
            # The row is created with its defaults (export off, no destination) the first
            # time the settings are read: that is nobody's change. Every change after is.
            create=None,
            update="AuditLogExportConfigurationChange",
            delete=None,
            exclude_fields=frozenset({"created_at", "updated_at"}),
            repr_attname=None,
        )
