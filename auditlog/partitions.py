"""Monthly partitions of the entries table (PostgreSQL): layout, months ahead, DEFAULT drained.

Layout
------
``auditlog_auditlogentry`` is range-partitioned on ``created_at``: one partition per calendar
month in UTC, ``auditlog_auditlogentry_pYYYY_MM`` holding ``[first of the month, first of the
next)``, plus ``auditlog_auditlogentry_default`` for every other instant. The DEFAULT
partition is what keeps capture independent of maintenance: capture is fail-closed, so
without it an entry whose month has no partition (a clock jump, a missed maintenance run, an
import of old history) would fail its write, and with it every write of the product.

The table's primary key is ``(id, created_at)``: PostgreSQL requires the partition key in
every unique index of a partitioned table, so no index can enforce ``id`` alone across
partitions. ``id`` is unique all the same: the parent's identity sequence hands out every id
and nothing writes an id of its own, except the draining below, which moves existing rows
with theirs. Django keeps ``id`` as the model's primary key field, so lookups by id (detail,
cursor, the export's positions) and everything user-visible are unchanged. SQLite has no
partitions: there the table stays one table, the readiness check reports nothing and the
maintenance functions refuse (``PartitionError``; the daily task logs it and returns).

Append-only on every partition
------------------------------
PostgreSQL clones the parent's row trigger (UPDATE, DELETE) onto every partition, but not its
TRUNCATE trigger, and ``TRUNCATE <partition>`` fires only the partition's own: every partition
made here is armed with ``triggers.install`` in the transaction that creates it. It also gets
``SELECT, INSERT`` (never more) for each role that holds them on the parent, i.e. the
application role, as ``audit_db_grant_app_role`` would grant; no trigger is ever disabled.

Draining DEFAULT without a way around append-only
-------------------------------------------------
Rows in DEFAULT are reported (a warning in the log, ``default_partition`` in ``/readyz``) and
moved by the next maintenance run, in ONE transaction of the table's owner: DETACH the DEFAULT
partition (an ACCESS EXCLUSIVE lock on the parent, held to the end: no other session reads or
writes entries meanwhile, so nothing can see the table half-moved or slip a change in), create
the monthly partitions its rows need, ``INSERT INTO`` the parent ``SELECT`` every column of
the detached table (same ids, same values), ``DROP`` the detached table (a DROP is not a
DELETE and needs no trigger lifted), and create a fresh, armed, empty DEFAULT. Any failure
rolls all of it back, leaving DEFAULT as it was.

Who runs maintenance, and how long others wait
----------------------------------------------
Creating, detaching and dropping partitions is DDL, which only the table's owner may run: the
application role (``auditlog/db_role.py``) cannot, by design. Maintenance (this module and
``auditlog.retention``) therefore runs on the ``maintenance`` database alias
(``DATABASE_MAINTENANCE_URL``, the owner's credentials) when it is configured, and on
``default`` otherwise (a deployment with one role). Web processes never use that alias.
Maintenance runs are serialised by a transaction-level advisory lock. Each DDL transaction
sets a short ``lock_timeout`` and is retried: PostgreSQL queues new lock requests behind a
waiting ACCESS EXCLUSIVE one, so DDL waiting on a long read would otherwise stall every
capture behind it; with the timeout a writer waits at most about ``LOCK_TIMEOUT_MS`` plus the
statement itself (catalog changes, no table scan while DEFAULT is empty).
"""

import logging
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, OperationalError, connections, transaction
from django.utils import timezone

from . import triggers

logger = logging.getLogger(__name__)

TABLE = triggers.TABLE
DEFAULT = f"{TABLE}_default"
MONTHLY = re.compile(rf"{TABLE}_p(\d{{4}})_(\d{{2}})")
MAINTENANCE_ALIAS = "maintenance"
MONTHS_AHEAD = 3
LOCK_TIMEOUT_MS = 200
ATTEMPTS = 30
# Any fixed number: maintenance runs (partitions and retention) take it one at a time.
ADVISORY_LOCK = 0x4155_4449_5450  # "AUDITP"
LOCK_NOT_AVAILABLE = "55P03"
READINESS_COUNT_CAP = 10_000

T = TypeVar("T")


class PartitionError(Exception):
    """Maintenance could not run (wrong database, or the locks could not be had)."""


@dataclass(frozen=True)
class Partition:
    """One monthly partition: its table and the half-open range ``[start, end)`` it holds."""

    name: str
    start: datetime
    end: datetime


def maintenance_alias() -> str:
    """The owner's connection for DDL: ``maintenance`` when configured, else ``default``."""
    return MAINTENANCE_ALIAS if MAINTENANCE_ALIAS in settings.DATABASES else DEFAULT_DB_ALIAS


def month_of(instant: datetime) -> datetime:
    """Midnight UTC of the first day of ``instant``'s month."""
    instant = instant.astimezone(UTC)
    return datetime(instant.year, instant.month, 1, tzinfo=UTC)


def add_months(month: datetime, count: int) -> datetime:
    """The first of the month ``count`` months after ``month`` (a first of a month, UTC)."""
    index = month.year * 12 + month.month - 1 + count
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def monthly(month: datetime) -> Partition:
    """The partition that holds ``month``."""
    start = month_of(month)
    return Partition(f"{TABLE}_p{start.year:04d}_{start.month:02d}", start, add_months(start, 1))


def named(name: str) -> Partition | None:
    """The monthly partition a table name stands for (None: not a monthly partition's name)."""
    match = MONTHLY.fullmatch(name)
    return monthly(datetime(int(match[1]), int(match[2]), 1, tzinfo=UTC)) if match else None


def is_partitioned(connection: Any) -> bool:
    """Whether the entries table is partitioned here (PostgreSQL after the migration)."""
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT relkind = 'p' FROM pg_class WHERE oid = to_regclass(%s)", [TABLE])
        row = cursor.fetchone()
    return bool(row and row[0])


def entries_tables(connection: Any) -> list[str]:
    """The entries table and, where it is partitioned, each of its partitions."""
    if not is_partitioned(connection):
        return [TABLE]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_partition_tree(%s) t JOIN pg_class c ON c.oid = t.relid"
            " WHERE t.isleaf ORDER BY c.relname",
            [TABLE],
        )
        return [TABLE, *(name for (name,) in cursor.fetchall())]


def monthly_partitions(cursor: Any) -> list[Partition]:
    """The monthly partitions attached to the table, oldest first."""
    cursor.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = %s::regclass",
        [TABLE],
    )
    found = [named(name) for (name,) in cursor.fetchall()]
    return sorted(filter(None, found), key=lambda partition: partition.start)


def arm(cursor: Any, table: str) -> None:
    """Make a new partition append-only and grant it what the parent's readers hold.

    Only SELECT and INSERT are copied, and only to roles that hold them on the parent: a new
    partition never gets UPDATE, DELETE or TRUNCATE for anyone but its owner.
    """
    triggers.install(cursor.db, table)
    cursor.execute(
        "SELECT a.grantee::regrole::text, string_agg(DISTINCT a.privilege_type, ', ')"
        " FROM pg_class c, aclexplode(c.relacl) a"
        " WHERE c.oid = %s::regclass AND a.grantee NOT IN (0, c.relowner)"
        " AND a.privilege_type IN ('SELECT', 'INSERT') GROUP BY a.grantee",
        [TABLE],
    )
    for role, privileges in cursor.fetchall():
        cursor.execute(f"GRANT {privileges} ON {table} TO {role}")


def create_monthly(cursor: Any, partition: Partition) -> bool:
    """Create and arm ``partition`` unless it exists; whether it was created."""
    cursor.execute("SELECT to_regclass(%s) IS NULL", [partition.name])
    if not cursor.fetchone()[0]:
        return False
    cursor.execute(
        f"CREATE TABLE {partition.name} PARTITION OF {TABLE} FOR VALUES FROM (%s) TO (%s)",
        [partition.start, partition.end],
    )
    arm(cursor, partition.name)
    return True


def create_default(cursor: Any) -> None:
    """Create and arm the DEFAULT partition."""
    cursor.execute(f"CREATE TABLE {DEFAULT} PARTITION OF {TABLE} DEFAULT")
    arm(cursor, DEFAULT)


def run_ddl(work: Callable[[Any], T], *, using: str | None = None) -> T:
    """Run ``work(cursor)`` in one owner transaction with a short lock timeout, retrying.

    Refuses where the table is not partitioned (SQLite, or before the migration).
    """
    alias = using or maintenance_alias()
    connection = connections[alias]
    if not is_partitioned(connection):
        raise PartitionError(
            "the audit log is not partitioned on this database (partitions need PostgreSQL "
            "and the auditlog migrations); nothing was changed"
        )
    for attempt in range(1, ATTEMPTS + 1):
        try:
            with transaction.atomic(using=alias), connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ADVISORY_LOCK])
                cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT_MS}ms'")
                return work(cursor)
        except OperationalError as exc:
            if getattr(exc.__cause__, "sqlstate", None) != LOCK_NOT_AVAILABLE:
                raise
            logger.info("audit log partitions: lock busy, attempt %d of %d", attempt, ATTEMPTS)
            time.sleep(min(2.0, 0.05 * 2**attempt) * random.uniform(0.5, 1.0))  # noqa: S311
    raise PartitionError(f"the entries table stayed locked through {ATTEMPTS} attempts")


def create_months(first: datetime, last: datetime, *, using: str | None = None) -> list[str]:
    """Create every missing monthly partition from ``first``'s month to ``last``'s."""

    def work(cursor: Any) -> list[str]:
        created = []
        month = month_of(first)
        while month <= last:
            if create_monthly(cursor, monthly(month)):
                created.append(monthly(month).name)
            month = add_months(month, 1)
        return created

    return run_ddl(work, using=using)


def default_rows(*, using: str = DEFAULT_DB_ALIAS, limit: int | None = None) -> int:
    """How many entries sit in the DEFAULT partition, counting to ``limit`` at most (0 where
    there are no partitions)."""
    if not is_partitioned(connections[using]):
        return 0
    capped = "" if limit is None else f" LIMIT {int(limit)}"
    with connections[using].cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM (SELECT 1 FROM {DEFAULT}{capped}) AS rows")  # noqa: S608
        return cursor.fetchone()[0]


def drain_default(*, using: str | None = None) -> dict[str, int]:
    """Move every entry of DEFAULT into its monthly partition (see the module docstring).

    Returns the number of entries moved per partition.
    """

    def work(cursor: Any) -> dict[str, int]:
        cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {DEFAULT})")  # noqa: S608
        if not cursor.fetchone()[0]:
            return {}
        draining = f"{TABLE}_draining"
        cursor.execute(f"ALTER TABLE {TABLE} DETACH PARTITION {DEFAULT}")
        cursor.execute(f"ALTER TABLE {DEFAULT} RENAME TO {draining}")
        cursor.execute(
            "SELECT date_trunc('month', created_at AT TIME ZONE 'UTC'), count(*)"  # noqa: S608
            f" FROM {draining} GROUP BY 1 ORDER BY 1"
        )
        moved = {}
        for month, count in cursor.fetchall():
            partition = monthly(month.replace(tzinfo=UTC))
            create_monthly(cursor, partition)
            moved[partition.name] = count
        columns = ", ".join(_columns(cursor))
        cursor.execute(
            f"INSERT INTO {TABLE} ({columns}) SELECT {columns} FROM {draining}"  # noqa: S608
        )
        cursor.execute(f"DROP TABLE {draining}")
        create_default(cursor)
        return moved

    moved = run_ddl(work, using=using)
    if moved:
        logger.warning(
            "audit log: moved %d entries out of the DEFAULT partition into %s",
            sum(moved.values()),
            ", ".join(f"{name} ({count})" for name, count in moved.items()),
        )
    return moved


def _columns(cursor: Any) -> list[str]:
    cursor.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0"
        " AND NOT attisdropped ORDER BY attnum",
        [TABLE],
    )
    return [f'"{name}"' for (name,) in cursor.fetchall()]


def maintain(*, now: datetime | None = None, using: str | None = None) -> dict[str, Any]:
    """The daily run: drain DEFAULT, then keep ``MONTHS_AHEAD`` months created ahead."""
    now = now or timezone.now()
    moved = drain_default(using=using)
    created = create_months(month_of(now), add_months(month_of(now), MONTHS_AHEAD), using=using)
    return {"moved": moved, "created": created}


def default_partition_empty() -> str | None:
    """Readiness check: entries in DEFAULT are reported, loudly, without failing readiness.

    Capture works while DEFAULT holds entries (that is what it is for), so taking web
    processes out of rotation for it would turn a maintenance gap into an outage. The state
    ``not_empty`` in ``/readyz`` and a warning line tell operators; the next
    ``audit_log_partitions`` run empties it.
    """
    # Capped: probes come every few seconds, and DEFAULT may have filled for a while.
    count = default_rows(limit=READINESS_COUNT_CAP + 1)
    if not count:
        return None
    logger.warning(
        "audit log: %s entries are in the DEFAULT partition; run "
        "`manage.py audit_log_partitions` (or wait for the daily task) to move them",
        f"more than {READINESS_COUNT_CAP}" if count > READINESS_COUNT_CAP else count,
    )
    return "not_empty"
