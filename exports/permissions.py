"""Who may configure the export: the tenant's owners only."""

from typing import Any

from rest_framework.permissions import BasePermission


def can_configure_export(user: Any) -> bool:
    """Active owners of a tenant."""
    return bool(
        getattr(user, "is_authenticated", False)
        and getattr(user, "is_active", False)
        and getattr(user, "is_owner", False)
        and getattr(user, "tenant_id", None)
    )


class IsExportConfigurator(BasePermission):
    """DRF face of ``can_configure_export``."""

    message = "Only tenant owners can configure the audit log export."

    def has_permission(self, request: Any, view: Any) -> bool:
        return can_configure_export(request.user)
