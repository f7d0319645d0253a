"""The product connected as the least-privilege application role (PostgreSQL).

Every test here, fixtures included, runs on a connection that logged in as the role
``audit_db_grant_app_role`` made (``app_role`` in conftest): the product's real flows work,
and every way to rewrite history is refused by PostgreSQL.
"""

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from django.core.management import call_command
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DatabaseError, connection, transaction
from django.db.migrations.recorder import MigrationRecorder
from django.test import Client
from rest_framework.test import APIClient

from auditlog import clock, partitions
from auditlog.context import audit_context
from auditlog.models import AuditLogEntry
from auditlog.triggers import FUNCTION, ROW_TRIGGER, TABLE, TRUNCATE_TRIGGER
from exports import selectors as export_selectors
from tenants.models import Story

from . import factories

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("app_role")]

META = {"REMOTE_ADDR": "198.51.100.40", "HTTP_USER_AGENT": "app-role-test/1.0"}


def test_the_connection_is_the_application_role_not_the_owner(app_role):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT session_user, current_user, rolsuper FROM pg_roles WHERE rolname = current_user"
        )
        assert cursor.fetchone() == (app_role, app_role, False)
        cursor.execute("SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = %s", [TABLE])
        assert cursor.fetchone()[0] != app_role


@pytest.mark.parametrize(
    ("sql", "refusal"),
    [
        (f"ALTER TABLE {TABLE} DISABLE TRIGGER {ROW_TRIGGER}", "must be owner"),
        (f"ALTER TABLE {TABLE} DISABLE TRIGGER ALL", "must be owner"),
        (f"DROP TRIGGER {TRUNCATE_TRIGGER} ON {TABLE}", "must be owner"),
        (f"DROP TRIGGER {clock.TRIGGER} ON {TABLE}", "must be owner"),
        (f"ALTER TABLE {TABLE} DISABLE TRIGGER {clock.TRIGGER}", "must be owner"),
        (
            f"CREATE OR REPLACE FUNCTION {clock.FUNCTION}() RETURNS trigger AS $$"
            " BEGIN RETURN NEW; END $$ LANGUAGE plpgsql",
            "permission denied for schema|must be owner",
        ),
        (
            f"CREATE OR REPLACE FUNCTION {FUNCTION}() RETURNS trigger AS $$"
            " BEGIN RETURN NEW; END $$ LANGUAGE plpgsql",
            "permission denied for schema|must be owner",
        ),
        ("SET session_replication_role = replica", "permission denied to set parameter"),
        (
            "UPDATE auditlog_auditlogentry SET operation_name = 'Forged'",
            "permission denied for table",
        ),
        ("DELETE FROM auditlog_auditlogentry", "permission denied for table"),
        (f"TRUNCATE {TABLE}", "permission denied for table"),
        ("TRUNCATE tenants_tenant CASCADE", "permission denied for table"),
        (f"ALTER TABLE {TABLE} OWNER TO CURRENT_USER", "must be owner"),
        (f"CREATE TABLE {TABLE}_shadow (id int)", "permission denied for schema"),
        ("INSERT INTO django_migrations (app, name, applied) VALUES ('x', 'y', now())", "denied"),
        ("SET ROLE {owner}", "permission denied to set role"),
    ],
)
def test_every_way_to_rewrite_history_is_refused(world_a, sql, refusal):
    before = list(AuditLogEntry.objects.order_by("id").values())
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = %s", [TABLE])
        sql = sql.replace("{owner}", connection.ops.quote_name(cursor.fetchone()[0]))
    with (
        pytest.raises(DatabaseError, match=refusal),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql)
    assert before
    assert list(AuditLogEntry.objects.order_by("id").values()) == before


def test_api_write_is_recorded_and_read_back_through_the_audit_log_api(world_a):
    writer = APIClient()
    writer.credentials(HTTP_AUTHORIZATION=f"Bearer {world_a.keys['member']}")
    body = {"team": world_a.team.pk, "name": "Pager", "value": "s3cr3t", "credential_type": "text"}
    created = writer.post("/api/v1/credentials/", body, format="json", **META)
    assert created.status_code == 201, created.content
    reader = APIClient()
    reader.credentials(HTTP_AUTHORIZATION=f"Bearer {world_a.keys['reader']}")
    listed = reader.get("/api/v1/audit_logs", {"operation_name": "CredentialSave"})
    assert listed.status_code == 200, listed.content
    (entry,) = listed.json()["audit_logs"]
    assert entry["target"]["id"] == str(created.json()["id"])
    assert entry["user_id"] == world_a.member.pk
    assert entry["request_ip"] == META["REMOTE_ADDR"]
    assert entry["inputs"]["inputs"]["value"] == "REDACTED"


def test_sign_in_then_the_tab_the_download_and_the_admin_console(world_a):
    client = Client()
    signed_in = client.post(
        "/login/", {"username": world_a.owner.email, "password": factories.PASSWORD}, **META
    )
    assert signed_in.status_code == 302
    login = AuditLogEntry.objects.filter(operation_name="Login", user=world_a.owner).get()
    tab = client.get("/settings/audit-logs/", **META)
    assert tab.status_code == 200
    assert f'data-entry-id="{login.pk}"' in tab.content.decode()
    download = client.get("/settings/audit-logs/download?format=csv", **META)
    assert download.status_code == 200
    rows = list(csv.DictReader(io.StringIO(b"".join(download.streaming_content).decode())))
    assert str(login.pk) in {row["id"] for row in rows}
    admin = client.get("/admin/auditlog/auditlogentry/", **META)
    assert admin.status_code == 200
    assert client.post("/logout/", **META).status_code == 302
    assert AuditLogEntry.objects.filter(operation_name="Logout", user=world_a.owner).exists()


def test_bulk_capture_goes_through_copy_with_insert_only(world_a):
    with audit_context(actor=world_a.owner, actor_type="user"):
        Story.objects.bulk_create(
            [Story(tenant=world_a.tenant, team=world_a.team, name=f"bulk {i}") for i in range(150)]
        )
    created = AuditLogEntry.objects.filter(
        tenant=world_a.tenant, operation_name="StoryCreation", target_repr__startswith="bulk "
    )
    assert created.count() == 150


def test_bulk_update_writes_its_entries_in_one_statement_with_insert_only(world_a):
    """The one-statement update updates domain rows and only inserts entries."""
    Story.objects.bulk_create(
        [Story(tenant=world_a.tenant, team=world_a.team, name=f"upd {i}") for i in range(20)]
    )
    with audit_context(actor=world_a.owner, actor_type="user"):
        count = Story.objects.filter(tenant=world_a.tenant).update(locked=True)
    assert count == 20
    locked = AuditLogEntry.objects.filter(
        tenant=world_a.tenant, operation_name="StoryLockedChange", user=world_a.owner
    )
    assert locked.count() == 20


def test_readiness_can_see_the_applied_migrations():
    call_command("migrate", check_unapplied=True, verbosity=0)  # exits non-zero if any is pending
    assert ("auditlog", "0004_refuse_truncate") in MigrationRecorder(
        connection
    ).applied_migrations()


def test_the_export_cutoff_sees_other_sessions_of_the_role(world_a):
    """Web and worker share the role: the exporter must see their open transactions."""
    params = {**connection.get_connection_params(), "autocommit": False}
    with psycopg.connect(**params) as other, other.cursor() as cursor:
        cursor.execute("SELECT transaction_timestamp()")
        (started,) = cursor.fetchone()
        assert export_selectors.oldest_open_transaction_start() == started


MAINTAINED = partitions.monthly(datetime(2095, 8, 1, tzinfo=UTC))


@pytest.fixture(scope="module")
def maintained(django_db_setup, django_db_blocker, app_role):
    """A partition made by maintenance on the owner's connection, committed before the tests
    (inside a test, that connection would be held in the test's transaction)."""
    with django_db_blocker.unblock():
        partitions.create_months(MAINTAINED.start, MAINTAINED.start, using="maintenance")
    return MAINTAINED


def test_a_partition_made_by_maintenance_lets_the_role_only_append_and_read(maintained):
    """What maintenance creates gives the role SELECT and INSERT, as the parent, no more."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT privilege_type FROM information_schema.role_table_grants"
            " WHERE grantee = current_user AND table_name = %s ORDER BY 1",
            [maintained.name],
        )
        assert cursor.fetchall() == [("INSERT",), ("SELECT",)]
    tenant = factories.tenant("Appended")
    # A month ahead is no time for the role to write (the clock trigger's clone is there too).
    with pytest.raises(DatabaseError, match=clock.MESSAGE), transaction.atomic():
        AuditLogEntry.objects.bulk_create(
            [AuditLogEntry(tenant=tenant, created_at=maintained.start, operation_name="Login")]
        )
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {maintained.name}")  # noqa: S608
        assert cursor.fetchone() == (0,)
    for sql in (f"DELETE FROM {maintained.name}", f"TRUNCATE {maintained.name}"):  # noqa: S608
        with pytest.raises(DatabaseError, match="permission denied"), transaction.atomic():
            connection.cursor().execute(sql)


def test_the_role_cannot_run_partition_maintenance():
    later = partitions.monthly(datetime(2095, 9, 1, tzinfo=UTC))
    with pytest.raises(DatabaseError, match=r"must be owner|permission denied"):
        partitions.create_months(later.start, later.start, using="default")


def insert_entry_at(table: str, created_at: datetime, row: dict | None = None) -> None:
    """INSERT, as the connected role, a copy of an entry (by default the first) at ``created_at``.

    Straight into ``table`` (the parent or one partition), as a client of the database could.
    """
    row = dict(row or AuditLogEntry.objects.order_by("id").values().first())
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT nextval(pg_get_serial_sequence('public.{TABLE}', 'id'))")
        row.update(id=cursor.fetchone()[0], created_at=created_at)
        columns = ", ".join(f'"{name}"' for name in row)
        cursor.execute(
            f"INSERT INTO {table} ({columns}) SELECT {columns}"  # noqa: S608
            f" FROM jsonb_populate_record(NULL::public.{TABLE}, %s::jsonb)",
            [json.dumps(row, cls=DjangoJSONEncoder)],
        )


def the_partitions() -> list[str]:
    return [TABLE, *partitions.entries_tables(connection)[1:]]


@pytest.mark.parametrize(
    "offset", [timedelta(hours=-1), timedelta(hours=1)], ids=["past", "future"]
)
def test_an_entry_at_a_time_of_the_app_roles_choosing_is_refused(world_a, offset):
    before = AuditLogEntry.objects.count()
    when = datetime.now(UTC) + offset
    tables = the_partitions()
    assert len(tables) > 3  # the parent, monthly partitions and DEFAULT
    for table in tables:
        with pytest.raises(DatabaseError, match=clock.MESSAGE), transaction.atomic():
            insert_entry_at(table, when)
    with pytest.raises(DatabaseError, match=clock.MESSAGE), transaction.atomic():
        AuditLogEntry.objects.create(
            tenant=world_a.tenant, created_at=when, operation_name="Login", actor_type="user"
        )
    assert AuditLogEntry.objects.count() == before


def test_an_entry_within_the_skew_is_accepted(world_a):
    before = AuditLogEntry.objects.count()
    for seconds in (-clock.SKEW_SECONDS + 5, clock.SKEW_SECONDS - 5):
        insert_entry_at(TABLE, datetime.now(UTC) + timedelta(seconds=seconds))
    assert AuditLogEntry.objects.count() == before + 2


def test_a_temporary_table_cannot_stand_in_for_the_owners(world_a):
    """The exemption asks who owns the partition written to, not a table found by name."""
    row = AuditLogEntry.objects.order_by("id").values().first()
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TEMPORARY TABLE {TABLE} (id int)")
        try:
            with pytest.raises(DatabaseError, match=clock.MESSAGE), transaction.atomic():
                insert_entry_at(f"public.{TABLE}", datetime.now(UTC) - timedelta(days=400), row)
        finally:
            cursor.execute(f"DROP TABLE pg_temp.{TABLE}")
