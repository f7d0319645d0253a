"""The application's database role (PostgreSQL): it can read and append history, never change it.

Why a second role
-----------------
Triggers refuse UPDATE, DELETE and TRUNCATE of entries, but the owner of a table can
``ALTER TABLE ... DISABLE TRIGGER``, drop or replace the trigger function, and a superuser can
``SET session_replication_role = replica``. So migrations run as the owner and the web,
worker and beat processes connect as an application role that owns nothing and holds only:

- the entries table and each of its partitions: SELECT, INSERT (COPY needs only INSERT),
  and only at the database's time (``auditlog/clock.py``: no backdated entry);
- ``django_migrations``: SELECT, so a readiness check can see unapplied migrations;
- every other table of an installed model: SELECT, INSERT, UPDATE, DELETE;
- the schema's sequences: USAGE, SELECT; the schema: USAGE; the database: CONNECT.

``app_role_grant`` (the ``audit_db_grant_app_role`` command), run as the owner after every
``migrate``, creates the role if needed and converges its privileges in one transaction: it
revokes everything on the schema's tables and sequences first, then grants the list above, so
a stray grant is taken back by the next run. It then asks PostgreSQL itself
(``has_table_privilege`` and friends, which count PUBLIC and role memberships) whether the
role could change history; if so it fails and the transaction rolls back.

No ``ALTER DEFAULT PRIVILEGES``: a table created later (a new model's, or a new monthly
partition of the entries table) gets nothing for the role until the command runs again. A
default grant broad enough for new domain tables would hand UPDATE and DELETE to every new
partition; a forgotten re-run fails loudly instead (permission denied), and inserts through
the partitioned parent never need a grant on the partition.

The password comes from the caller (the command reads ``AUDIT_DB_APP_PASSWORD``) and never
leaves the process: libpq turns it into a SCRAM-SHA-256 verifier, which is what is sent, on a
raw cursor that Django's query log never sees.
"""

from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.migrations.recorder import MigrationRecorder
from psycopg import sql

from . import clock
from .triggers import FUNCTION, IDENTIFIER, ROW_TRIGGER, TABLE, TRUNCATE_TRIGGER

# Yes/no questions to PostgreSQL, each a problem if the answer is yes: these about the role
# (``r`` is its pg_roles row) ...
ROLE_CHECKS = {
    "is a SUPERUSER": "r.rolsuper",
    "has CREATEROLE": "r.rolcreaterole",
    "has CREATEDB": "r.rolcreatedb",
    "has REPLICATION": "r.rolreplication",
    "has BYPASSRLS": "r.rolbypassrls",
    "owns objects in this database": (
        "EXISTS (SELECT 1 FROM pg_shdepend d, pg_database db WHERE d.deptype = 'o'"
        " AND d.refobjid = r.oid AND db.datname = current_database()"
        " AND d.dbid IN (0, db.oid))"
    ),
    "can CREATE in the schema (perhaps through PUBLIC)": (
        "has_schema_privilege(r.oid, %(schema)s, 'CREATE')"
    ),
    "can CREATE schemas in the database": (
        "has_database_privilege(r.oid, current_database(), 'CREATE')"
    ),
    "is a member of the role that owns the trigger function": (
        "pg_has_role(r.oid, (SELECT p.proowner FROM pg_proc p"
        " WHERE p.oid = %(function)s::regprocedure), 'MEMBER')"
    ),
    "is a member of the role that owns the created_at trigger function": (
        "pg_has_role(r.oid, (SELECT p.proowner FROM pg_proc p"
        " WHERE p.oid = to_regprocedure(%(clock_function)s)), 'MEMBER')"
    ),
}
# ... and these about each entries table (its name follows the question).
ENTRIES_CHECKS = {
    "can UPDATE (columns of)": "has_any_column_privilege(r.oid, %(table)s, 'UPDATE')",
    "can DELETE from": "has_table_privilege(r.oid, %(table)s, 'DELETE')",
    "can TRUNCATE": "has_table_privilege(r.oid, %(table)s, 'TRUNCATE')",
    "can create triggers on": "has_table_privilege(r.oid, %(table)s, 'TRIGGER')",
    "is a member of the role that owns": (
        "pg_has_role(r.oid, (SELECT c.relowner FROM pg_class c"
        " WHERE c.oid = %(table)s::regclass), 'MEMBER')"
    ),
    "cannot SELECT from": "NOT has_table_privilege(r.oid, %(table)s, 'SELECT')",
    "cannot INSERT into": "NOT has_table_privilege(r.oid, %(table)s, 'INSERT')",
}
SKIPS_TRIGGERS = "has_parameter_privilege(r.oid, 'session_replication_role', 'SET')"


class RoleError(Exception):
    """The role cannot be set up, or could change history once set up."""


@dataclass(frozen=True)
class AppRoleGrants:
    """What ``app_role_grant`` did, for the command to report (never the password)."""

    role: str
    created: bool
    password_set: bool
    entries_tables: list[str]
    domain_tables: list[str]


def app_role_grant(*, connection: Any, role: str, password: str | None) -> AppRoleGrants:
    """Create ``role`` if missing and give it exactly the application's privileges (idempotent)."""
    if connection.vendor != "postgresql":
        raise RoleError(
            "database roles need PostgreSQL; SQLite has no roles (the embedded default is a "
            "local file that the one process owns, for local runs only)"
        )
    if not IDENTIFIER.fullmatch(role):
        raise RoleError(f"not a plain role name (lowercase letters, digits, _): {role!r}")
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_user, current_schema(), current_database(),"
            " EXISTS (SELECT 1 FROM pg_roles WHERE rolname = %s)",
            [role],
        )
        owner, schema, database, exists = cursor.fetchone()
        if role == owner:
            raise RoleError(f"connected as {role}: run this as the owner of the tables")
        quote = connection.ops.quote_name
        if not exists:
            cursor.execute(
                f"CREATE ROLE {quote(role)} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE"
                " NOREPLICATION NOBYPASSRLS"
            )
        if password:
            _set_password(connection, role, password)
        entries = _entries_tables(cursor)
        domain = sorted(
            set(
                connection.introspection.django_table_names(only_existing=True, include_views=False)
            )
            - set(entries)
        )
        who, where = quote(role), quote(schema)
        for statement in [
            f"REVOKE ALL ON ALL TABLES IN SCHEMA {where} FROM {who}",
            f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {where} FROM {who}",
            f"REVOKE CREATE ON SCHEMA {where} FROM PUBLIC, {who}",
            f"GRANT CONNECT ON DATABASE {quote(database)} TO {who}",
            f"GRANT USAGE ON SCHEMA {where} TO {who}",
            f"GRANT SELECT, INSERT ON {', '.join(map(quote, entries))} TO {who}",
            f"GRANT SELECT ON {quote(MigrationRecorder.Migration._meta.db_table)} TO {who}",
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON {', '.join(map(quote, domain))} TO {who}",
            f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {where} TO {who}",
        ]:
            cursor.execute(statement)
        if problems := _problems(cursor, role=role, schema=schema, entries=entries):
            raise RoleError("not safe to run the application as: " + "; ".join(problems))
    return AppRoleGrants(role, not exists, bool(password), entries, domain)


def _set_password(connection: Any, role: str, password: str) -> None:
    """Store a SCRAM verifier of ``password``: the password itself is never sent or logged."""
    raw = connection.connection  # Django's query log would record the statement
    verifier = raw.pgconn.encrypt_password(password.encode(), role.encode(), b"scram-sha-256")
    with raw.cursor() as cursor:
        cursor.execute(
            sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                sql.Identifier(role), sql.Literal(verifier.decode())
            )
        )


def _entries_tables(cursor: Any) -> list[str]:
    """The entries table and, once it is partitioned, every partition of it."""
    cursor.execute(
        "SELECT relname FROM pg_class WHERE oid = %(table)s::regclass OR oid IN"
        " (SELECT relid FROM pg_partition_tree(%(table)s))"  # empty unless partitioned
        " ORDER BY oid <> %(table)s::regclass, relname",
        {"table": TABLE},
    )
    return [name for (name,) in cursor.fetchall()]


def _problems(cursor: Any, *, role: str, schema: str, entries: list[str]) -> list[str]:
    """Every way ``role`` could change entries or would fail the app, as PostgreSQL answers it."""
    params = {
        "role": role,
        "schema": schema,
        "function": f"{FUNCTION}()",
        "clock_function": f"{clock.FUNCTION}()",
    }
    checks = dict(ROLE_CHECKS)
    if cursor.db.pg_version >= 150000:  # has_parameter_privilege is new in PostgreSQL 15
        checks["can SET session_replication_role (which skips triggers)"] = SKIPS_TRIGGERS
    problems = [f"{role} {name}" for name in _failed(cursor, checks, params)]
    for table in entries:
        failed = _failed(cursor, ENTRIES_CHECKS, {**params, "table": table})
        problems += [f"{role} {name} {table}" for name in failed]
        cursor.execute(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = %s::regclass AND tgenabled <> 'D'",
            [table],
        )
        armed = {name for (name,) in cursor.fetchall()}
        problems += [
            f"{table} has no enabled trigger {name} (run migrate first)"
            for name in (ROW_TRIGGER, TRUNCATE_TRIGGER, clock.TRIGGER)
            if name not in armed
        ]
    return problems


def _failed(cursor: Any, checks: dict[str, str], params: dict[str, str]) -> list[str]:
    """The names of the ``checks`` (SQL booleans about role ``r``) that are true."""
    columns = ", ".join(f"coalesce({check}, false)" for check in checks.values())
    cursor.execute(f"SELECT {columns} FROM pg_roles r WHERE r.rolname = %(role)s", params)  # noqa: S608
    return [name for name, bad in zip(checks, cursor.fetchone(), strict=True) if bad]
