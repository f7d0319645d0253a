"""Database triggers that make the entries table append-only, on PostgreSQL and SQLite."""

from typing import Any

TABLE = "auditlog_auditlogentry"
MESSAGE = "audit log entries are append-only"

POSTGRES_INSTALL = [
    f"""
    CREATE OR REPLACE FUNCTION auditlog_refuse_change() RETURNS trigger AS $$
    BEGIN
        RAISE EXCEPTION '{MESSAGE} (% refused)', TG_OP
            USING ERRCODE = 'integrity_constraint_violation';
    END
    $$ LANGUAGE plpgsql
    """,
    f"""
    CREATE TRIGGER auditlog_append_only BEFORE UPDATE OR DELETE ON {TABLE}
    FOR EACH ROW EXECUTE FUNCTION auditlog_refuse_change()
    """,
]
POSTGRES_REMOVE = [
    f"DROP TRIGGER IF EXISTS auditlog_append_only ON {TABLE}",
    "DROP FUNCTION IF EXISTS auditlog_refuse_change()",
]
SQLITE_INSTALL = [
    f"""
    CREATE TRIGGER IF NOT EXISTS auditlog_no_update BEFORE UPDATE ON {TABLE}
    BEGIN SELECT RAISE(ABORT, '{MESSAGE} (UPDATE refused)'); END
    """,
    f"""
    CREATE TRIGGER IF NOT EXISTS auditlog_no_delete BEFORE DELETE ON {TABLE}
    BEGIN SELECT RAISE(ABORT, '{MESSAGE} (DELETE refused)'); END
    """,
]
SQLITE_REMOVE = [
    "DROP TRIGGER IF EXISTS auditlog_no_update",
    "DROP TRIGGER IF EXISTS auditlog_no_delete",
]


def _run(connection: Any, statements: list[str]) -> None:
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


def install(connection: Any) -> None:
    """Install the triggers for this database's vendor."""
    if connection.vendor == "postgresql":
        _run(connection, POSTGRES_INSTALL)
    elif connection.vendor == "sqlite":
        _run(connection, SQLITE_INSTALL)
    else:
        raise NotImplementedError(f"no append-only triggers for {connection.vendor}")


def remove(connection: Any) -> None:
    """Remove the triggers (migrating backwards; purging a test database)."""
    if connection.vendor == "postgresql":
        _run(connection, POSTGRES_REMOVE)
    elif connection.vendor == "sqlite":
        _run(connection, SQLITE_REMOVE)
