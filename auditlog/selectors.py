"""The one read path: every view, API, admin page and download reads entries from here."""

from typing import Any

from django.db.models import QuerySet

from .models import AuditLogEntry
from .permissions import can_read_audit_log


def audit_log_entries_for(user: Any) -> QuerySet[AuditLogEntry]:
    """The entries ``user`` may read, newest first; none for anyone without the permission."""
    if not can_read_audit_log(user):
        return AuditLogEntry.objects.none()
    return AuditLogEntry.objects.filter(tenant_id=user.tenant_id).order_by("-created_at", "-id")
