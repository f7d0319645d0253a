"""Reads of the exporter.

The exporter reads a whole tenant's entries as the system, not on behalf of a user, so it
reads ``auditlog.selectors.tenant_entries(tenant_id)`` rather than
``audit_log_entries_for(user)`` (on PostgreSQL the same ``tenant_id`` condition, as SQL that
builds each NDJSON line); nothing here is shown to a user except counts and the tenant's
own configuration.

Everything here reads the primary (``tenant_entries`` and the default ``connection``), never
the read replica: the cutoff is held back to the primary's oldest open transaction, and a
lagging replica could lack committed entries below it, which the export would then skip.
"""

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import connection, transaction
from django.db.models import OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from auditlog import retention
from auditlog.models import AuditLogEntry
from auditlog.selectors import tenant_entries
from auditlog.serializers import ENTRY_COLUMNS, entry_to_json

from .models import ExportBatch, ExportSettings, ExportState, ExportStream

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
    return tenant_entries(tenant_id).order_by("created_at", "id")


# One exported line: the NDJSON text of ``entry_to_json(entry)``, which starts with
# ``{"id":<id>,"created_at":"<rfc3339>"``.
Line = str

_TIMESTAMP = """to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""
# ``entry_to_json`` turns a falsy outputs/changes value into ``{}``.
_FALSY_JSON = """IN ('null', 'false', '0', '""', '[]', '{}')"""


def _string(column: str) -> str:
    return f"coalesce(to_json({column}), 'null')"


def _number(column: str) -> str:
    return f"coalesce({column}::text, 'null')"


def _object(column: str) -> str:
    return f"CASE WHEN {column} {_FALSY_JSON} THEN '{{}}' ELSE {column}::text END"


# PostgreSQL writes each line itself, in ``entry_to_json``'s key order and formats, with the
# jsonb columns spliced in as text: decoding and re-encoding them in Python took most of the
# export's time. tests/exports/test_lines.py holds the two to the same output.
_LINE_PARTS = (
    ("id", "id::text"),
    ("created_at", f"'\"' || {_TIMESTAMP} || '\"'"),
    ("updated_at", f"'\"' || {_TIMESTAMP} || '\"'"),
    ("operation_name", _string("operation_name")),
    ("inputs", "coalesce(inputs::text, 'null')"),
    ("outputs", _object("outputs")),
    ("request_ip", _string("request_ip")),
    ("request_user_agent", _string("request_user_agent")),
    ("tenant_id", "tenant_id::text"),
    ("user_id", _number("user_id")),
    ("user_email", _string("user_email")),
    ("user_name", _string("user_name")),
    ("story_id", _number("story_id")),
    (
        "target",
        f"concat('{{\"type\":', {_string('target_type')}, ',\"id\":', "
        f"{_string('target_id')}, ',\"name\":', {_string('target_repr')}, '}}')",
    ),
    ("changes", _object("changes")),
    ("request_id", _string("request_id")),
    ("client_request_id", _string("client_request_id")),
    ("actor_type", _string("actor_type")),
    (
        "api_key",
        "CASE WHEN api_key_id <> 0 THEN concat('{\"id\":', api_key_id, ',\"name\":', "
        f"{_string('api_key_name')}, '}}') ELSE 'null' END",
    ),
)


def _line_sql() -> str:
    pieces = []
    for i, (name, expression) in enumerate(_LINE_PARTS):
        opening = "{" if i == 0 else ","
        pieces.append(f"'{opening}\"{name}\":', {expression}")
    return "concat(" + ", ".join(pieces) + ", '}')"


LINE_SQL = _line_sql()
_ENTRY_TABLE = AuditLogEntry._meta.db_table
LINE_CHUNK = 5000


def _lines_postgresql(where: str, params: list[Any], limit: int | None) -> Iterator[list[Line]]:
    # Only constants of this module are interpolated; values go in as parameters.
    sql = (
        f"SELECT {LINE_SQL} FROM {_ENTRY_TABLE} WHERE {where}"  # noqa: S608
        " ORDER BY created_at, id"
    )
    if limit is not None:
        sql += " LIMIT %s"
        params = [*params, limit]
    # A server-side cursor streams the rows; it lives only inside a transaction.
    with transaction.atomic(), connection.chunked_cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(LINE_CHUNK):
            yield [row[0] for row in rows]


def _lines_python(qs: QuerySet) -> Iterator[list[Line]]:
    chunk: list[Line] = []
    for row in qs.values(*ENTRY_COLUMNS).iterator(chunk_size=FETCH_CHUNK):
        chunk.append(json.dumps(entry_to_json(row), ensure_ascii=False, separators=(",", ":")))
        if len(chunk) >= LINE_CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def entry_lines(
    *,
    tenant_id: int,
    after: tuple[datetime, int] | None,
    before: datetime,
    limit: int,
    fast: bool = True,
) -> Iterator[list[Line]]:
    """Up to ``limit`` entries after ``after`` in (created_at, id) order, older than ``before``.

    Yields chunks of lines; ``fast=False`` forces the portable (Python) encoder.
    """
    if fast and connection.vendor == "postgresql":
        where, params = "tenant_id = %s AND created_at < %s", [tenant_id, before]
        if after is not None:
            where += " AND (created_at, id) > (%s, %s)"
            params += list(after)
        return _lines_postgresql(where, params, limit)
    qs = _entries(tenant_id).filter(created_at__lt=before)
    if after is not None:
        at, pk = after
        qs = qs.filter(created_at__gte=at).filter(Q(created_at__gt=at) | Q(id__gt=pk))
    return _lines_python(qs[:limit])


def batch_lines(batch: ExportBatch, *, fast: bool = True) -> Iterator[list[Line]]:
    """The lines of a frozen batch, in the order they were written."""
    first = (batch.first_created_at, batch.first_id)
    last = (batch.last_created_at, batch.last_id)
    if fast and connection.vendor == "postgresql":
        return _lines_postgresql(
            "tenant_id = %s AND (created_at, id) >= (%s, %s) AND (created_at, id) <= (%s, %s)",
            [batch.tenant_id, *first, *last],
            None,
        )
    qs = (
        _entries(batch.tenant_id)
        .filter(created_at__gte=first[0], created_at__lte=last[0])
        .filter(Q(created_at__gt=first[0]) | Q(id__gte=first[1]))
        .filter(Q(created_at__lt=last[0]) | Q(id__lte=last[1]))
    )
    return _lines_python(qs)


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


UNDELIVERED = "not yet delivered to its S3 export"


def retention_holds(before: datetime, using: str) -> list[retention.Hold]:
    """The export's retention hold: per enabled tenant, its oldest undelivered entry, if older
    than ``before``.

    Undelivered means at or after the watermark (``cutoff``) of the stream of the configured
    destination; a destination with no stream yet will receive the tenant's whole history,
    so all of it is undelivered. A disabled export holds nothing back (the settings page
    says so). One indexed lookup per enabled tenant.
    """
    stream_cutoff = ExportStream.objects.filter(
        tenant_id=OuterRef("tenant_id"), bucket=OuterRef("bucket"), prefix=OuterRef("prefix")
    ).values("cutoff")[:1]
    oldest = (
        AuditLogEntry.objects.filter(
            tenant_id=OuterRef("tenant_id"),
            created_at__lt=before,
            created_at__gte=Coalesce(OuterRef("watermark"), datetime.min.replace(tzinfo=UTC)),
        )
        .order_by("created_at")
        .values("created_at")[:1]
    )
    rows = (
        ExportSettings.objects.using(using)
        .filter(enabled=True)
        .annotate(watermark=Subquery(stream_cutoff))
        .annotate(since=Subquery(oldest))
        .filter(since__isnull=False)
        .values_list("tenant_id", "since")
    )
    return [retention.Hold(tenant_id, since, UNDELIVERED) for tenant_id, since in rows]


@dataclass(frozen=True)
class ExportStatus:
    """What the settings page and the API say about a tenant's export."""

    last_success_at: datetime | None
    last_attempt_at: datetime | None
    last_error: str
    backlog_count: int
    backlog_count_capped: bool
    backlog_oldest_at: datetime | None
    # The oldest undelivered entry, when it is old enough to keep the database from dropping
    # its month (outside the retention window): retention waits for this export.
    retention_held_since: datetime | None = None
    # When the run that holds the tenant's lease started; ``None`` while none does.
    running_since: datetime | None = None

    def as_json(self) -> dict[str, Any]:
        """The ``status`` object of the API."""
        return {
            "last_success_at": self.last_success_at,
            "last_attempt_at": self.last_attempt_at,
            "last_error": self.last_error or None,
            "backlog_count": self.backlog_count,
            "backlog_count_is_lower_bound": self.backlog_count_capped,
            "backlog_oldest_at": self.backlog_oldest_at,
            "retention_held_since": self.retention_held_since,
        }


def export_status(*, tenant_id: int) -> ExportStatus:
    """Last success/attempt/error and the backlog (entries not yet delivered, capped count)."""
    state = ExportState.objects.filter(tenant_id=tenant_id).first()
    config = export_settings_get(tenant_id=tenant_id)
    stream = (
        ExportStream.objects.filter(tenant_id=tenant_id, bucket=config.bucket, prefix=config.prefix)
        .only("cutoff")
        .first()
        if config is not None
        else None
    )
    backlog = _entries(tenant_id)
    if stream is not None and stream.cutoff is not None:
        backlog = backlog.filter(created_at__gte=stream.cutoff)
    count = backlog[: BACKLOG_COUNT_LIMIT + 1].count()
    oldest = backlog.values_list("created_at", flat=True).first()
    holding = config is not None and config.enabled and oldest is not None
    return ExportStatus(
        last_success_at=state.last_success_at if state else None,
        last_attempt_at=state.last_attempt_at if state else None,
        last_error=state.last_error if state else "",
        backlog_count=min(count, BACKLOG_COUNT_LIMIT),
        backlog_count_capped=count > BACKLOG_COUNT_LIMIT,
        backlog_oldest_at=oldest,
        retention_held_since=oldest if holding and oldest < retention.window_start() else None,
        running_since=_running_since(state),
    )


def _running_since(state: ExportState | None) -> datetime | None:
    # A lease past its end belongs to a run that died: the next run takes it over.
    if state is None or not state.lease_token or state.lease_until is None:
        return None
    return state.last_attempt_at if state.lease_until > timezone.now() else None


def export_running_since(*, tenant_id: int) -> datetime | None:
    """When the run holding the tenant's lease started, or ``None`` while no run holds it."""
    return _running_since(ExportState.objects.filter(tenant_id=tenant_id).first())


def recent_batches(*, tenant_id: int, limit: int = 20) -> list[ExportBatch]:
    """The latest batches of a tenant, newest first, with their destination."""
    return list(
        ExportBatch.objects.filter(tenant_id=tenant_id)
        .select_related("stream")
        .order_by("-pk")[:limit]
    )
