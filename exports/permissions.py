"""Who may configure the export (the tenant's owners) and who may see how it is doing."""

from typing import Any

from rest_framework.permissions import BasePermission

from auditlog.permissions import can_read_audit_log


def can_configure_export(user: Any) -> bool:
    """Active owners of a tenant."""
    return bool(
        getattr(user, "is_authenticated", False)
        and getattr(user, "is_active", False)
        and getattr(user, "is_owner", False)
        and getattr(user, "tenant_id", None)
    )


def can_view_export_status(user: Any) -> bool:
    """Owners, and readers of the audit log: where it goes and whether it arrives is part of it.

    A reader sees the status only (destination, deliveries, backlog), never the role, the
    External ID or AWS's words about them.
    """
    return can_configure_export(user) or can_read_audit_log(user)


class IsExportConfigurator(BasePermission):
    """DRF face of ``can_configure_export``."""

    message = "Only tenant owners can configure the audit log export."

    def has_permission(self, request: Any, view: Any) -> bool:
        return can_configure_export(request.user)
