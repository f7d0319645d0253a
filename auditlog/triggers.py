"""Database triggers that make the entries table append-only, on PostgreSQL and SQLite.

Every statement that could take an entry away is refused by the database itself, whoever
sends it: UPDATE and DELETE by a row trigger, TRUNCATE (which row triggers never see, and
which ``TRUNCATE <parent table> CASCADE`` reaches too) by a statement trigger. SQLite has no
TRUNCATE: ``DELETE FROM`` without ``WHERE`` still fires its row triggers.

``install`` and ``remove`` take the table, so that each partition of a partitioned entries
table gets the same triggers: PostgreSQL clones a parent's row triggers onto its partitions
(``install`` leaves those clones alone) but not its TRUNCATE trigger, and
``TRUNCATE <partition>`` fires only the partition's own.
"""

import re
from collections.abc import Callable
from typing import Any

# Table names are put into DDL as they are, so only plain lowercase identifiers are accepted.
IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,62}")
TABLE = "auditlog_auditlogentry"
MESSAGE = "audit log entries are append-only"
FUNCTION = "auditlog_refuse_change"
ROW_TRIGGER = "auditlog_append_only"
TRUNCATE_TRIGGER = "auditlog_no_truncate"


def _postgres_install(cursor: Any, table: str) -> None:
    cursor.execute(
        f"""
        CREATE OR REPLACE FUNCTION {FUNCTION}() RETURNS trigger AS $$
        BEGIN
            RAISE EXCEPTION '{MESSAGE} (% refused)', TG_OP
                USING ERRCODE = 'integrity_constraint_violation';
        END
        $$ LANGUAGE plpgsql
        """
    )
    # A partition already has its parent's row trigger as a clone, which cannot be replaced.
    if _row_trigger_clone(cursor, table) is not True:
        cursor.execute(
            f"CREATE OR REPLACE TRIGGER {ROW_TRIGGER} BEFORE UPDATE OR DELETE ON {table}"
            f" FOR EACH ROW EXECUTE FUNCTION {FUNCTION}()"
        )
    cursor.execute(
        f"CREATE OR REPLACE TRIGGER {TRUNCATE_TRIGGER} BEFORE TRUNCATE ON {table}"
        f" FOR EACH STATEMENT EXECUTE FUNCTION {FUNCTION}()"
    )


def _postgres_remove(cursor: Any, table: str) -> None:
    cursor.execute(f"DROP TRIGGER IF EXISTS {TRUNCATE_TRIGGER} ON {table}")
    # A clone goes with its parent's trigger; only the table's own can be dropped.
    if _row_trigger_clone(cursor, table) is False:
        cursor.execute(f"DROP TRIGGER {ROW_TRIGGER} ON {table}")


def _row_trigger_clone(cursor: Any, table: str) -> bool | None:
    """Whether ``table``'s row trigger is a partition's clone of its parent's (None: absent)."""
    cursor.execute(
        "SELECT tgparentid <> 0 FROM pg_trigger WHERE tgrelid = %s::regclass AND tgname = %s",
        [table, ROW_TRIGGER],
    )
    row = cursor.fetchone()
    return None if row is None else row[0]


def _sqlite_install(cursor: Any, table: str) -> None:
    for statement in [
        f"""
        CREATE TRIGGER IF NOT EXISTS {table}_no_update BEFORE UPDATE ON {table}
        BEGIN SELECT RAISE(ABORT, '{MESSAGE} (UPDATE refused)'); END
        """,
        f"""
        CREATE TRIGGER IF NOT EXISTS {table}_no_delete BEFORE DELETE ON {table}
        BEGIN SELECT RAISE(ABORT, '{MESSAGE} (DELETE refused)'); END
        """,
    ]:
        cursor.execute(statement)


def _sqlite_remove(cursor: Any, table: str) -> None:
    names = [f"{table}_no_update", f"{table}_no_delete"]
    if table == TABLE:
        # The names before the triggers took a table; db.sqlite3 files from then still have them.
        names += ["auditlog_no_update", "auditlog_no_delete"]
    for name in names:
        cursor.execute(f"DROP TRIGGER IF EXISTS {name}")


def _run(connection: Any, table: str, steps: dict[str, Callable[[Any, str], None]]) -> None:
    if connection.vendor not in steps:
        raise NotImplementedError(f"no append-only triggers for {connection.vendor}")
    if not IDENTIFIER.fullmatch(table):
        raise ValueError(f"not a plain table name: {table!r}")
    with connection.cursor() as cursor:
        steps[connection.vendor](cursor, table)


def install(connection: Any, table: str = TABLE) -> None:
    """Make ``table`` append-only (idempotent): UPDATE, DELETE and TRUNCATE are refused."""
    _run(connection, table, {"postgresql": _postgres_install, "sqlite": _sqlite_install})


def remove(connection: Any, table: str = TABLE) -> None:
    """Lift the triggers from ``table`` (migrating backwards; flushing a test database).

    The shared function stays: other tables (partitions) may still use it, and
    ``install`` replaces it anyway.
    """
    _run(connection, table, {"postgresql": _postgres_remove, "sqlite": _sqlite_remove})
