"""The one check of who may read a tenant's audit log."""

from typing import Any

from rest_framework.permissions import BasePermission

AUDIT_LOG_READ = "AUDIT_LOG_READ"


def can_read_audit_log(user: Any) -> bool:
    """Tenant owners and users holding ``AUDIT_LOG_READ`` read their own tenant's log."""
    return bool(
        user is not None
        and user.is_authenticated
        and user.is_active
        and getattr(user, "tenant_id", None)
        and user.has_tenant_permission(AUDIT_LOG_READ)
    )


class CanReadAuditLog(BasePermission):
    """DRF permission wrapping ``can_read_audit_log``."""

    message = "You need the AUDIT_LOG_READ permission (or to be a tenant owner) to read audit logs."

    def has_permission(self, request: Any, view: Any) -> bool:
        return can_read_audit_log(request.user)
