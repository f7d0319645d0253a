"""The one read path: every view, API, admin page, download and export reads entries here."""

from typing import Any

from django.db.models import QuerySet

from .models import AuditLogEntry
from .permissions import can_read_audit_log
from .routing import PRIMARY, read_database


def audit_log_entries_for(user: Any) -> QuerySet[AuditLogEntry]:
    """The entries ``user`` may read, newest first; none for anyone without the permission.

    Served by the read replica when one is configured and fresh enough (``routing``).
    """
    if not can_read_audit_log(user):
        return AuditLogEntry.objects.none()
    entries = tenant_entries(user.tenant_id).using(read_database(user))
    return entries.order_by("-created_at", "-id")


def tenant_entries(tenant_id: int) -> QuerySet[AuditLogEntry]:
    """Every entry of one tenant, for system work with no user behind it (the S3 export).

    Always the primary: the export's cutoff relies on the primary's open transactions.
    """
    return AuditLogEntry.objects.using(PRIMARY).filter(tenant_id=tenant_id)
