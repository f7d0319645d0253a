"""The primary/replica pair the replica tests run against, seen from the tests.

``scripts/test`` starts the pair (``scripts/replica-pair``) and runs these tests with
``DATABASE_URL`` at its primary and ``DATABASE_REPLICA_URL`` at its replica. The helpers
read replication state with their own SQL, independently of ``auditlog.routing``.
"""

import contextlib
import os
import time
from collections.abc import Iterator

import pytest
from django.db import connections

from auditlog.routing import PRIMARY, REPLICA, replica_configured

CONFIGURED = replica_configured()
MISSING = (
    "no read replica configured: the replica tests need DATABASE_URL at a primary and "
    "DATABASE_REPLICA_URL at its streaming replica. scripts/test starts a throwaway pair "
    "(scripts/replica-pair start) and runs them; see the README."
)
# Every replica test commits for real (the replica only sees committed WAL) and may use
# both aliases. Without a replica the alias does not exist, and the tests skip or fail.
MARKS = [
    pytest.mark.replica,
    pytest.mark.django_db(transaction=True, databases=[PRIMARY, REPLICA] if CONFIGURED else None),
]
TIMEOUT = 30.0


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _one(alias: str, sql: str, params: list | None = None):
    with connections[alias].cursor() as cursor:
        cursor.execute(sql, params or [])
        return cursor.fetchone()[0]


def is_standby() -> bool:
    return _one(REPLICA, "SELECT pg_is_in_recovery()")


def caught_up() -> bool:
    """Whether the replica has replayed everything the primary has written so far."""
    position = _one(PRIMARY, "SELECT pg_current_wal_lsn()::text")
    return _one(REPLICA, "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [position])


def wait_until_caught_up() -> None:
    deadline = time.monotonic() + TIMEOUT
    while not caught_up():
        if time.monotonic() > deadline:
            pytest.fail(f"the replica did not catch up with the primary within {TIMEOUT:.0f} s")
        time.sleep(0.02)


def resume() -> None:
    _one(REPLICA, "SELECT pg_wal_replay_resume()::text")


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """The replica stops replaying WAL inside the block (it lags from now on)."""
    _one(REPLICA, "SELECT pg_wal_replay_pause()::text")
    deadline = time.monotonic() + TIMEOUT
    while _one(REPLICA, "SELECT pg_get_wal_replay_pause_state()") != "paused":
        if time.monotonic() > deadline:
            pytest.fail("the replica did not pause its replay")
        time.sleep(0.01)
    try:
        yield
    finally:
        resume()
