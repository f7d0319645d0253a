"""Retention: whole months older than the window are dropped, never an undelivered entry.

The window and what is removed
------------------------------
The database keeps ``AUDIT_LOG_RETENTION_DAYS`` (default 400) of entries; the tenant's bucket
keeps everything (the S3 export is for long-term retention). ``prune`` (the daily task and
``manage.py prune_audit_log``) removes a monthly partition only when its whole range ends at
or before ``now - window``, by detaching and dropping the table: reclaiming a month costs the
same however many entries it holds, and no row is ever deleted (the append-only triggers stay
as they are). The DEFAULT partition is never pruned: maintenance empties it into months.

Retention holds: never drop an undelivered entry
------------------------------------------------
Other apps register a *hold provider* here (``register_hold``), the way audited models
register with the capture registry, so ``auditlog`` never imports them. A provider answers,
for a given instant, every tenant that has an entry older than it which must not be removed
yet, and the oldest such entry's time: ``exports`` answers the oldest entry not yet
delivered to each tenant whose export is enabled (a disabled export holds nothing back). A
partition ``[start, end)`` is *held* while any hold's time is before ``end``: everything
from that entry on is kept. Holds are asked twice: once to plan (what the command reports:
which tenant holds which partition back, since when), and again inside the transaction that
detaches the partition, after its ACCESS EXCLUSIVE lock is granted, so an export switched on
or a destination changed meanwhile is still honoured (the lock is taken before the detach,
so the partition's rows are still part of the table when they are asked).

How a prune stays out of capture's way
--------------------------------------
``DETACH PARTITION ... CONCURRENTLY`` is not allowed while the table has a DEFAULT partition,
so the detach is a plain one: it needs ACCESS EXCLUSIVE on the parent for a catalog change.
It runs with a short ``lock_timeout`` and retries (``partitions.run_ddl``), so a writer waits
at most about that timeout plus the statement; the hold check inside it is one indexed lookup
per enabled tenant. The partition is dropped in a second transaction that locks nothing
anyone else uses (the detached table is no longer part of the log). Between the two, or
after a crash between them, the detached table is a *leftover*: the next prune finishes it
before anything else.

Each drop is recorded: one ``AuditLogRetentionPrune`` entry per tenant that had entries in
the partition (actor ``system``; the partition's range, the tenant's first and last removed
entry and their count), written in the transaction that drops the table, so the record and
the removal commit together. Its ``created_at`` is stamped right before that commit, and that
transaction is short, far inside the export's settle window, which the export relies on since
it cannot see the maintenance role's open transactions.

SQLite has no partitions: ``prune`` refuses there, with a clear message, and changes nothing.
"""

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connections
from django.utils import timezone

from . import partitions
from .context import ACTOR_SYSTEM, audit_context
from .models import AuditLogEntry
from .services import entry_row

logger = logging.getLogger(__name__)

PRUNE_OPERATION = "AuditLogRetentionPrune"
DETACHED = f"{partitions.TABLE}_detached_"


class RetentionError(Exception):
    """Pruning cannot run here (SQLite, or the table is not partitioned)."""


@dataclass(frozen=True)
class Hold:
    """A tenant's entries from ``since`` on must stay (e.g. not yet delivered to its bucket)."""

    tenant_id: int
    since: datetime
    reason: str


HoldProvider = Callable[[datetime, str], Iterable[Hold]]
_providers: list[HoldProvider] = []


def register_hold(provider: HoldProvider) -> None:
    """Add ``provider(before, using)``: the holds on entries older than ``before``."""
    if provider not in _providers:
        _providers.append(provider)


def holds(before: datetime, *, using: str) -> list[Hold]:
    """Every registered hold on entries older than ``before``, oldest first."""
    found = [hold for provider in _providers for hold in provider(before, using)]
    return sorted(found, key=lambda hold: (hold.since, hold.tenant_id))


def window_days() -> int | None:
    """The retention window in days where it is enforced (PostgreSQL); None: kept forever."""
    if connections["default"].vendor != "postgresql":
        return None
    return settings.AUDIT_LOG_RETENTION_DAYS


def window_start(now: datetime | None = None) -> datetime:
    """Entries older than this are outside the retention window."""
    return (now or timezone.now()) - timedelta(days=settings.AUDIT_LOG_RETENTION_DAYS)


@dataclass
class Candidate:
    """A partition entirely outside the window, and the holds that keep it (if any)."""

    partition: partitions.Partition
    held_by: list[Hold] = field(default_factory=list)
    removed: dict[int, int] = field(default_factory=dict)  # tenant id -> entries


def plan(*, now: datetime | None = None, using: str | None = None) -> list[Candidate]:
    """The partitions outside the window, oldest first, each with what holds it back."""
    alias = using or partitions.maintenance_alias()
    _refuse_unpartitioned(alias)
    cutoff = window_start(now)
    with connections[alias].cursor() as cursor:
        expired = [p for p in partitions.monthly_partitions(cursor) if p.end <= cutoff]
    if not expired:
        return []
    found = holds(expired[-1].end, using=alias)
    return [Candidate(p, [hold for hold in found if hold.since < p.end]) for p in expired]


def prune(*, now: datetime | None = None, using: str | None = None) -> list[Candidate]:
    """Detach and drop every expired partition that nothing holds back; returns the plan."""
    alias = using or partitions.maintenance_alias()
    _refuse_unpartitioned(alias)
    for leftover in _detached(alias):
        _drop(alias, leftover)
    candidates = plan(now=now, using=alias)
    for candidate in candidates:
        if candidate.held_by:
            for hold in candidate.held_by:
                logger.warning(
                    "audit log retention: %s kept: tenant %s holds it (%s since %s)",
                    candidate.partition.name,
                    hold.tenant_id,
                    hold.reason,
                    hold.since.isoformat(),
                )
            continue
        detached = _detach(alias, candidate)
        if detached is None:
            continue
        candidate.removed = _drop(alias, detached)
    return candidates


def _refuse_unpartitioned(alias: str) -> None:
    connection = connections[alias]
    if connection.vendor != "postgresql":
        raise RetentionError(
            f"prune_audit_log needs PostgreSQL: the audit log on {connection.vendor} is one "
            "table without partitions, and entries are never deleted row by row. "
            "Nothing was removed."
        )
    if not partitions.is_partitioned(connection):
        raise RetentionError("the audit log is not partitioned yet (run migrate); nothing removed")


def _detach(alias: str, candidate: Candidate) -> partitions.Partition | None:
    """Detach the partition unless a hold appeared; the detached table's new name."""
    partition = candidate.partition
    name = f"{DETACHED}{partition.name.removeprefix(partitions.TABLE + '_')}"
    detached = partitions.Partition(name, partition.start, partition.end)

    def work(cursor: Any) -> partitions.Partition | None:
        # The lock DETACH needs, taken first: no entry can be added or read meanwhile, and
        # the holds are asked again while the partition's rows are still in the table.
        cursor.execute(f"LOCK TABLE {partitions.TABLE} IN ACCESS EXCLUSIVE MODE")
        late = [hold for hold in holds(partition.end, using=alias) if hold.since < partition.end]
        if late:
            candidate.held_by = late
            raise _HeldBack
        cursor.execute(f"ALTER TABLE {partitions.TABLE} DETACH PARTITION {partition.name}")
        cursor.execute(f"ALTER TABLE {partition.name} RENAME TO {name}")
        return detached

    try:
        return partitions.run_ddl(work, using=alias)
    except _HeldBack:
        logger.warning("audit log retention: %s kept: a hold appeared", partition.name)
        return None


class _HeldBack(Exception):
    """A hold appeared between the plan and the detach: roll the detach back."""


def _detached(alias: str) -> list[partitions.Partition]:
    """Tables a prune detached but did not drop (a crash between the two steps)."""
    with connections[alias].cursor() as cursor:
        cursor.execute(
            "SELECT relname FROM pg_class WHERE relkind = 'r' AND relname LIKE %s"
            " AND relnamespace = current_schema()::regnamespace",
            [DETACHED.replace("_", r"\_") + "%"],
        )
        names = [name for (name,) in cursor.fetchall()]
    found = []
    for name in sorted(names):
        month = partitions.named(f"{partitions.TABLE}_{name.removeprefix(DETACHED)}")
        if month is not None:
            found.append(partitions.Partition(name, month.start, month.end))
    return found


def _drop(alias: str, detached: partitions.Partition) -> dict[int, int]:
    """Drop a detached partition and record, per tenant, what went with it."""
    connection = connections[alias]

    def work(cursor: Any) -> dict[int, int]:
        cursor.execute(
            "SELECT tenant_id, count(*), min(created_at), max(created_at)"  # noqa: S608
            f" FROM {detached.name} GROUP BY tenant_id ORDER BY tenant_id"
        )
        per_tenant = cursor.fetchall()
        cursor.execute(f"DROP TABLE {detached.name}")
        with audit_context(actor_type=ACTOR_SYSTEM):
            rows = [
                entry_row(
                    operation_name=PRUNE_OPERATION,
                    tenant_id=tenant_id,
                    target_type="audit_log",
                    target_repr=f"entries before {detached.end.date().isoformat()}",
                    outputs={
                        "partition_from": detached.start.isoformat(),
                        "partition_to": detached.end.isoformat(),
                        "first_removed_at": first.isoformat(),
                        "last_removed_at": last.isoformat(),
                        "removed_count": count,
                        "retention_days": settings.AUDIT_LOG_RETENTION_DAYS,
                    },
                )
                for tenant_id, count, first, last in per_tenant
            ]
        AuditLogEntry.objects.using(connection.alias).bulk_create(
            [AuditLogEntry(**row) for row in rows]
        )
        return {tenant_id: count for tenant_id, count, _, _ in per_tenant}

    removed = partitions.run_ddl(work, using=alias)
    logger.info(
        "audit log retention: dropped %s (%d entries of %d tenants)",
        detached.name.removeprefix(DETACHED),
        sum(removed.values()),
        len(removed),
    )
    return removed
