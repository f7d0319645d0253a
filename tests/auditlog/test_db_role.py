"""``audit_db_grant_app_role``: the application role gets exactly what it needs, no more.

Roles are cluster-wide, so each test's role is named after this run's test database and is
created inside the test's transaction: the rollback at the end of the test removes it.
"""

import base64
import hashlib
import hmac
import logging
import secrets
from datetime import UTC, datetime
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from auditlog import clock, partitions, triggers

from .. import factories

pytestmark = pytest.mark.django_db

postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="database roles: PostgreSQL only"
)


def role_name(suffix: str = "app") -> str:
    return factories.role_name(suffix)


def grant(role: str, **env) -> str:
    """Run the command as the tables' owner (the test connection); return what it printed."""
    out = StringIO()
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        call_command("audit_db_grant_app_role", role=role, stdout=out)
    return out.getvalue()


def sql(query: str, params=None):
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return cursor.fetchall()


def table_privileges(role: str, table: str) -> set[str]:
    kinds = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")
    row = sql(
        "SELECT " + ", ".join(f"has_table_privilege(%s, %s, '{kind}')" for kind in kinds),
        [role, table] * len(kinds),
    )[0]
    return {kind for kind, has in zip(kinds, row, strict=True) if has}


@pytest.mark.skipif(connection.vendor != "sqlite", reason="the SQLite refusal")
def test_on_sqlite_the_command_refuses_with_a_clear_message():
    with pytest.raises(CommandError, match="need PostgreSQL; SQLite has no roles"):
        grant("audit_app")


@postgres_only
def test_the_role_can_read_and_append_entries_and_nothing_more():
    role = role_name()
    out = grant(role)
    assert f"Created role {role}" in out
    assert table_privileges(role, triggers.TABLE) == {"SELECT", "INSERT"}
    assert table_privileges(role, "django_migrations") == {"SELECT"}
    for table in ("tenants_tenant", "tenants_credential", "django_session", "exports_exportstate"):
        assert table_privileges(role, table) == {"SELECT", "INSERT", "UPDATE", "DELETE"}
    ((flags),) = sql(
        "SELECT rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls, rolcanlogin"
        " FROM pg_roles WHERE rolname = %s",
        [role],
    )
    assert flags == (False, False, False, False, False, True)
    assert sql(
        "SELECT has_schema_privilege(%s, current_schema(), 'CREATE'),"
        " has_schema_privilege(%s, current_schema(), 'USAGE')",
        [role, role],
    ) == [(False, True)]
    if connection.pg_version >= 150000:
        assert sql(
            "SELECT has_parameter_privilege(%s, 'session_replication_role', 'SET')", [role]
        ) == [(False,)]
    assert sql("SELECT count(*) FROM pg_class WHERE relowner = %s::regrole", [role]) == [(0,)]


@postgres_only
def test_a_rerun_takes_back_stray_grants_and_later_tables_get_nothing():
    role = role_name()
    grant(role)
    with connection.cursor() as cursor:
        cursor.execute(f'GRANT UPDATE, DELETE, TRUNCATE ON {triggers.TABLE} TO "{role}"')
        cursor.execute(f'GRANT UPDATE (operation_name) ON {triggers.TABLE} TO "{role}"')
        cursor.execute(f'GRANT CREATE ON SCHEMA public TO "{role}"')
    assert "UPDATE" in table_privileges(role, triggers.TABLE)

    out = grant(role)
    assert f"Updated role {role}" in out
    assert table_privileges(role, triggers.TABLE) == {"SELECT", "INSERT"}
    assert sql(
        "SELECT has_any_column_privilege(%s, %s, 'UPDATE'),"
        " has_schema_privilege(%s, 'public', 'CREATE')",
        [role, triggers.TABLE, role],
    ) == [(False, False)]

    # No default privileges: a table created after the grant (a new partition, say) gets
    # nothing for the role until the command runs again.
    sql_create = f"CREATE TABLE {triggers.TABLE}_2099_01 (LIKE {triggers.TABLE})"
    with connection.cursor() as cursor:
        cursor.execute(sql_create)
    assert table_privileges(role, f"{triggers.TABLE}_2099_01") == set()
    assert sql("SELECT count(*) FROM pg_default_acl") == [(0,)]


@postgres_only
def test_every_partition_gets_select_insert_and_one_made_by_hand_gets_nothing():
    """Each partition (monthly, DEFAULT) is an entries table; maintenance arms those it makes."""
    role = role_name()
    parts = partitions.entries_tables(connection)[1:]
    assert f"{triggers.TABLE}_default" in parts
    assert len(parts) >= 1 + partitions.MONTHS_AHEAD + 1  # this month, three ahead, DEFAULT

    out = grant(role)
    assert f"SELECT, INSERT on {triggers.TABLE}, {', '.join(parts)}" in out
    for table in [triggers.TABLE, *parts]:
        assert table_privileges(role, table) == {"SELECT", "INSERT"}

    by_hand = f"{triggers.TABLE}_p2099_01"
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE {by_hand} PARTITION OF {triggers.TABLE}"
            " FOR VALUES FROM ('2099-01-01') TO ('2099-02-01')"
        )
    assert table_privileges(role, by_hand) == set()
    # Until its TRUNCATE trigger is installed, the command refuses to call the role safe.
    with pytest.raises(CommandError, match=f"{by_hand} has no enabled trigger"):
        grant(role)
    triggers.install(connection, by_hand)
    grant(role)
    assert table_privileges(role, by_hand) == {"SELECT", "INSERT"}

    # Made by maintenance: armed and granted what the parent's readers hold, no more.
    later = partitions.monthly(datetime(2099, 3, 1, tzinfo=UTC))
    with connection.cursor() as cursor:
        assert partitions.create_monthly(cursor, later)
    assert table_privileges(role, later.name) == {"SELECT", "INSERT"}
    assert f"SELECT, INSERT on {triggers.TABLE}" in grant(role)


@postgres_only
@pytest.mark.parametrize(
    ("setup", "problem"),
    [
        ('CREATE ROLE "{role}" SUPERUSER', "is a SUPERUSER"),
        ('CREATE ROLE "{role}" LOGIN CREATEDB', "has CREATEDB"),
        (
            'CREATE ROLE "{role}"; CREATE TABLE {role}_own (id int); '
            'ALTER TABLE {role}_own OWNER TO "{role}"',
            "owns objects in this database",
        ),
        # A member of the tables' owner could SET ROLE to it and disable the triggers.
        ('CREATE ROLE "{role}"; GRANT "{owner}" TO "{role}"', "is a member of the role that owns"),
        (f"DROP TRIGGER {triggers.TRUNCATE_TRIGGER} ON {triggers.TABLE}", "run migrate first"),
        (
            f"DROP TRIGGER {clock.TRIGGER} ON {triggers.TABLE}",
            f"no enabled trigger {clock.TRIGGER}",
        ),
    ],
)
def test_a_role_that_could_change_history_is_refused_and_nothing_is_granted(setup, problem):
    role = role_name("unsafe")
    owner = sql("SELECT current_user")[0][0]
    with connection.cursor() as cursor:
        for statement in setup.format(role=role, owner=owner).split("; "):
            cursor.execute(statement)
    with pytest.raises(CommandError, match=problem):
        grant(role)
    # Nothing was granted: the command's transaction rolled back, with a role it created.
    ((acl,),) = sql("SELECT relacl::text FROM pg_class WHERE oid = %s::regclass", [triggers.TABLE])
    assert f"{role}=" not in (acl or "")
    exists = bool(sql("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]))
    assert exists == setup.startswith("CREATE ROLE")


@postgres_only
def test_running_it_as_the_application_role_itself_is_refused():
    owner = sql("SELECT current_user")[0][0]
    with pytest.raises(CommandError, match="run this as the owner of the tables"):
        grant(owner)


@postgres_only
@pytest.mark.parametrize("role", ['app"; DROP TABLE x; --', "App", "a-b", ""])
def test_a_role_name_that_is_not_a_plain_identifier_is_refused(role):
    with pytest.raises(CommandError, match="not a plain role name"):
        grant(role)


@postgres_only
def test_the_password_is_stored_as_a_scram_verifier_and_never_logged(capsys, caplog, settings):
    role = role_name()
    password = secrets.token_urlsafe(24)
    settings.DEBUG = True
    caplog.set_level(logging.DEBUG)
    with CaptureQueriesContext(connection) as queries:
        out = grant(role, AUDIT_DB_APP_PASSWORD=password)
    assert "password set" in out

    ((stored,),) = sql("SELECT rolpassword FROM pg_authid WHERE rolname = %s", [role])
    scheme, rest = stored.split("$", 1)
    assert scheme == "SCRAM-SHA-256"
    iterations_salt, keys = rest.split("$")
    iterations, salt = iterations_salt.split(":")
    stored_key = keys.split(":")[0]
    salted = hashlib.pbkdf2_hmac(
        "sha256", password.encode(), base64.b64decode(salt), int(iterations)
    )
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    assert base64.b64encode(hashlib.sha256(client_key).digest()).decode() == stored_key

    seen = out + "".join(capsys.readouterr()) + caplog.text
    seen += " ".join(query["sql"] for query in queries.captured_queries)
    assert password not in seen
    assert stored not in seen

    # A re-run without the variable keeps the password.
    assert "password set" not in grant(role)
    assert sql("SELECT rolpassword FROM pg_authid WHERE rolname = %s", [role]) == [(stored,)]
