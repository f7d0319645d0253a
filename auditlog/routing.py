"""Which database answers a read of the audit log: the primary, or its streaming replica.

How a read from the replica never shows less than the primary would have
------------------------------------------------------------------------
With ``DATABASE_REPLICA_URL`` set, the read path (``audit_log_entries_for``: the Settings
tab, an entry's detail, the download, the API list and detail, the admin changelist) asks
``read_database(user)`` once per queryset. The replica answers only when all three hold, in
this order; otherwise the primary answers:

1. **The reader wrote nothing lately.** When a transaction that wrote entries of a person
   commits, their reads are pinned to the primary for ``AUDIT_LOG_READ_YOUR_WRITES_SECONDS``
   (a key per user in the cache, Redis in production), so whoever just changed something
   sees it in the tab at once, without asking the replica anything.
2. **The read's own transaction wrote nothing** (``pg_current_xact_id_if_assigned()`` is
   null on the primary). A request runs inside a transaction on the primary
   (``ATOMIC_REQUESTS``), and what it wrote (the ``AuthenticationTokenUse`` of an API key,
   say) is visible to that transaction alone.
3. **The replica has caught up with the primary as of now**: its replay position
   ``pg_last_wal_replay_lsn()`` has reached the primary's ``pg_current_wal_lsn()`` read just
   before. Every transaction that committed before the read started has its commit record
   behind that position (``synchronous_commit`` on, PostgreSQL's default), so the replica
   holds all of it, and the data query runs after the check, in autocommit, with a snapshot
   at least that fresh. A lagging (or paused) replica does not answer at all; so an API
   client polling with ``after=<now>`` never misses an entry because the replica lags.

The checks cost one trivial query on each server; the replica takes the scans and counts.
A replica that cannot be reached is left alone for ``REPLICA_RETRY_SECONDS`` (its reads go
to the primary meanwhile, with a warning in the log) rather than failing a read.

What never reads the replica: capture and every write (``PrimaryReplicaRouter`` sends every
write to the primary, even of an object loaded from the replica), every read a service makes,
and the S3 export: ``tenant_entries`` and ``exports/`` read the primary explicitly, because
the export's cutoff rests on the primary's open transactions (``exports/delivery.py``) and
a replica may not have replayed the entries below it yet. No router picks the database of a
read: ``db_for_read`` sees every read, inside write transactions too, and cannot tell the
read path from the rest; the selector can. Without a replica, ``read_database`` answers the
primary without a query, and nothing here runs. Needs PostgreSQL 13 or later (both servers).
"""

import logging
import time
from collections.abc import Iterable
from functools import partial
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, transaction

logger = logging.getLogger(__name__)

PRIMARY = DEFAULT_DB_ALIAS
REPLICA = "replica"
REPLICA_RETRY_SECONDS = 10
_PIN_KEY = "auditlog:read-primary:{}"

# Monotonic time before which an unreachable replica is not tried again (per process).
_replica_unusable_until = 0.0


def replica_configured() -> bool:
    """Whether a read replica is configured at all."""
    return REPLICA in settings.DATABASES


def read_database(user: Any) -> str:
    """The alias that answers ``user``'s read of the audit log (see the module docstring)."""
    if not replica_configured() or _pinned(user.pk):
        return PRIMARY
    with connections[PRIMARY].cursor() as cursor:
        cursor.execute(
            "SELECT pg_current_wal_lsn()::text, pg_current_xact_id_if_assigned() IS NOT NULL"
        )
        position, wrote = cursor.fetchone()
    if wrote:
        return PRIMARY
    return REPLICA if _replica_has_replayed(position) else PRIMARY


def pin_writers(user_ids: Iterable[int | None]) -> None:
    """Once the current transaction commits, pin these users' reads to the primary."""
    if not replica_configured():
        return
    pins = {_PIN_KEY.format(pk): 1 for pk in user_ids if pk is not None}
    if pins:
        # Robust: the write has committed by then; a cache outage must not fail its response
        # (Django logs the error), and rule 3 still keeps the reads correct.
        transaction.on_commit(partial(_pin, pins), using=PRIMARY, robust=True)


def _pin(pins: dict[str, int]) -> None:
    cache.set_many(pins, timeout=settings.AUDIT_LOG_READ_YOUR_WRITES_SECONDS)


def _pinned(user_id: int | None) -> bool:
    return user_id is not None and cache.get(_PIN_KEY.format(user_id)) is not None


def _replica_has_replayed(position: str) -> bool:
    global _replica_unusable_until
    if time.monotonic() < _replica_unusable_until:
        return False
    try:
        with connections[REPLICA].cursor() as cursor:
            # NULL (not a standby, e.g. promoted without recovery) counts as not caught up.
            cursor.execute(
                "SELECT coalesce(pg_last_wal_replay_lsn() >= %s::pg_lsn, false)", [position]
            )
            return cursor.fetchone()[0]
    except DatabaseError as exc:
        _replica_unusable_until = time.monotonic() + REPLICA_RETRY_SECONDS
        logger.warning(
            "Read replica unusable (%s); reading from the primary for %d s.",
            type(exc).__name__,
            REPLICA_RETRY_SECONDS,
        )
        return False


class PrimaryReplicaRouter:
    """Writes and migrations go to the primary; the replica is read only where chosen."""

    def db_for_read(self, model: Any, **hints: Any) -> str | None:
        # No opinion: a read goes to the primary unless its queryset chose the replica
        # (then related lookups of its objects follow it there).
        return None

    def db_for_write(self, model: Any, **hints: Any) -> str:
        return PRIMARY

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool | None:
        # Both aliases are the same data: relating objects loaded from either is fine.
        if {obj1._state.db, obj2._state.db} <= {PRIMARY, REPLICA}:
            return True
        return None

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool:
        # The replica receives the schema by streaming; it cannot be migrated.
        return db == PRIMARY
