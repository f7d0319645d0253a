"""The one read path: every view, API, admin page, download and export reads entries here."""

from typing import Any

from django.db.models import QuerySet

from .models import AuditLogEntry
from .permissions import can_read_audit_log


def audit_log_entries_for(user: Any) -> QuerySet[AuditLogEntry]:
    """The entries ``user`` may read, newest first; none for anyone without the permission."""
    if not can_read_audit_log(user):
        return AuditLogEntry.objects.none()
    return tenant_entries(user.tenant_id).order_by("-created_at", "-id")


def tenant_entries(tenant_id: int) -> QuerySet[AuditLogEntry]:
    """Every entry of one tenant, for system work with no user behind it (the S3 export)."""
    return AuditLogEntry.objects.filter(tenant_id=tenant_id)
