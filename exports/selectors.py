"""Reads of the exporter.

The exporter reads a whole tenant's entries as the system, not on behalf of a user, so it
queries ``AuditLogEntry`` directly instead of ``audit_log_entries_for(user)``; nothing here
is shown to a user except counts and the tenant's own configuration.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import Q, QuerySet

from auditlog.models import AuditLogEntry
from auditlog.serializers import ENTRY_COLUMNS

from .models import ExportBatch, ExportSettings, ExportState

BACKLOG_COUNT_LIMIT = 1_000_000
FETCH_CHUNK = 2000


def export_settings_get(*, tenant_id: int) -> ExportSettings | None:
    """The tenant's export settings, if it has any."""
    return ExportSettings.objects.filter(tenant_id=tenant_id).first()


def enabled_tenant_ids() -> list[int]:
    """Tenants whose export is switched on."""
    return list(
        ExportSettings.objects.filter(enabled=True)
        .order_by("tenant_id")
        .values_list("tenant_id", flat=True)
    )


def _entries(tenant_id: int) -> QuerySet:
    return AuditLogEntry.objects.filter(tenant_id=tenant_id).order_by("created_at", "id")


def entries_after(
    *, tenant_id: int, after: tuple[datetime, int] | None, before: datetime, limit: int
) -> Iterator[dict[str, Any]]:
    """Up to ``limit`` entries after ``after`` in (created_at, id) order, older than ``before``."""
    qs = _entries(tenant_id).filter(created_at__lt=before)
    if after is not None:
        at, pk = after
        qs = qs.filter(created_at__gte=at).filter(Q(created_at__gt=at) | Q(id__gt=pk))
    return qs.values(*ENTRY_COLUMNS)[:limit].iterator(chunk_size=FETCH_CHUNK)


def batch_entries(batch: ExportBatch) -> Iterator[dict[str, Any]]:
    """The entries a frozen batch holds, in the order they were written."""
    qs = (
        _entries(batch.tenant_id)
        .filter(created_at__gte=batch.first_created_at, created_at__lte=batch.last_created_at)
        .filter(Q(created_at__gt=batch.first_created_at) | Q(id__gte=batch.first_id))
        .filter(Q(created_at__lt=batch.last_created_at) | Q(id__lte=batch.last_id))
    )
    return qs.values(*ENTRY_COLUMNS).iterator(chunk_size=FETCH_CHUNK)


def oldest_open_transaction_start() -> datetime | None:
    """Start of the oldest transaction another session holds open (PostgreSQL only).

    An entry's ``created_at`` is taken inside its transaction, so no entry still to commit
    can be older than this. Needs a role that sees other sessions' ``xact_start`` (the
    same role as the app, or ``pg_read_all_stats``).
    """
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT min(xact_start) FROM pg_stat_activity"
            " WHERE xact_start IS NOT NULL AND pid <> pg_backend_pid()"
            " AND datname = current_database() AND backend_type = 'client backend'"
        )
        return cursor.fetchone()[0]


@dataclass(frozen=True)
class ExportStatus:
    """What the settings page and the API say about a tenant's export."""

    last_success_at: datetime | None
    last_attempt_at: datetime | None
    last_error: str
    backlog_count: int
    backlog_count_capped: bool
    backlog_oldest_at: datetime | None

    def as_json(self) -> dict[str, Any]:
        """The ``status`` object of the API."""
        return {
            "last_success_at": self.last_success_at,
            "last_attempt_at": self.last_attempt_at,
            "last_error": self.last_error or None,
            "backlog_count": self.backlog_count,
            "backlog_count_is_lower_bound": self.backlog_count_capped,
            "backlog_oldest_at": self.backlog_oldest_at,
        }


def export_status(*, tenant_id: int) -> ExportStatus:
    """Last success/attempt/error and the backlog (entries not yet delivered, capped count)."""
    state = ExportState.objects.filter(tenant_id=tenant_id).first()
    backlog = _entries(tenant_id)
    if state is not None and state.cutoff is not None:
        backlog = backlog.filter(created_at__gte=state.cutoff)
    count = backlog[: BACKLOG_COUNT_LIMIT + 1].count()
    oldest = backlog.values_list("created_at", flat=True).first()
    return ExportStatus(
        last_success_at=state.last_success_at if state else None,
        last_attempt_at=state.last_attempt_at if state else None,
        last_error=state.last_error if state else "",
        backlog_count=min(count, BACKLOG_COUNT_LIMIT),
        backlog_count_capped=count > BACKLOG_COUNT_LIMIT,
        backlog_oldest_at=oldest,
    )


def recent_batches(*, tenant_id: int, limit: int = 20) -> list[ExportBatch]:
    """The latest batches of a tenant, newest first."""
    return list(ExportBatch.objects.filter(tenant_id=tenant_id).order_by("-seq")[:limit])
