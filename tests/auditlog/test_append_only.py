"""Entries can never be altered: the database, the model and the queryset all refuse."""

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from django.db.migrations.executor import MigrationExecutor

from auditlog import clock, triggers
from auditlog.context import audit_context
from auditlog.models import AppendOnlyError, AuditLogEntry
from tenants import services

from .. import factories

pytestmark = pytest.mark.django_db

postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="TRUNCATE and partitions: PostgreSQL only"
)


def assert_refused(sql: str) -> None:
    """The database refuses ``sql`` with the append-only error (and the test goes on)."""
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql)


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE auditlog_auditlogentry SET operation_name = 'Forged'",
        "UPDATE auditlog_auditlogentry SET user_id = NULL",
        "DELETE FROM auditlog_auditlogentry",
        *[
            pytest.param(sql, marks=postgres_only)
            for sql in (
                "TRUNCATE auditlog_auditlogentry",
                "TRUNCATE auditlog_auditlogentry RESTART IDENTITY CASCADE",
                # Reaches the entries through their foreign key to the tenant.
                "TRUNCATE tenants_tenant CASCADE",
            )
        ],
    ],
)
def test_raw_sql_cannot_change_entries(world_a, sql):
    before = list(AuditLogEntry.objects.values())
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            # As if the rows were committed: TRUNCATE refuses tables with pending FK checks.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    assert_refused(sql)
    assert before
    assert list(AuditLogEntry.objects.values()) == before


def test_model_and_queryset_refuse_changes(world_a):
    entry = AuditLogEntry.objects.first()
    entry.operation_name = "Forged"
    with pytest.raises(AppendOnlyError):
        entry.save()
    with pytest.raises(AppendOnlyError):
        entry.delete()
    with pytest.raises(AppendOnlyError):
        AuditLogEntry.objects.all().update(operation_name="Forged")
    with pytest.raises(AppendOnlyError):
        AuditLogEntry.objects.all().delete()
    assert not AuditLogEntry.objects.filter(operation_name="Forged").exists()


def test_deleting_objects_and_removing_users_keeps_their_entries(world_a):
    story = factories.story(world_a.team)
    services.story_archive(story=story)
    by_story = AuditLogEntry.objects.filter(story_id=story.pk).order_by("id")
    by_member = AuditLogEntry.objects.filter(user=world_a.member).order_by("id")
    story_entries = list(by_story.values())
    with audit_context(actor=world_a.member, actor_type="user"):
        services.api_key_create(user=world_a.member, name="another")
    member_entries = list(by_member.values())
    assert member_entries
    services.story_delete(story=story)
    services.user_remove(user=world_a.member)
    assert list(by_story.values())[:-1] == story_entries
    assert list(by_member.values()) == member_entries
    assert AuditLogEntry.objects.filter(
        operation_name="UserDeletion", target_id=str(world_a.member.pk)
    ).exists()


def trigger_names(table: str) -> set[str]:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT tgname FROM pg_trigger WHERE tgrelid = %s::regclass AND NOT tgisinternal",
                [table],
            )
        else:
            cursor.execute(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = %s", [table]
            )
        return {name for (name,) in cursor.fetchall()}


@postgres_only
def test_every_partition_of_a_partitioned_table_gets_the_same_triggers(db):
    """What a monthly-partitioned entries table will do: install on the parent and each part."""
    parts = ["scratch_entries_2026_01", "scratch_entries_default"]
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE scratch_entries (id bigint, created_at date)"
            " PARTITION BY RANGE (created_at)"
        )
        cursor.execute(
            f"CREATE TABLE {parts[0]} PARTITION OF scratch_entries"
            " FOR VALUES FROM ('2026-01-01') TO ('2026-02-01')"
        )
        cursor.execute(f"CREATE TABLE {parts[1]} PARTITION OF scratch_entries DEFAULT")
        cursor.execute("INSERT INTO scratch_entries VALUES (1, '2026-01-15'), (2, '2027-01-01')")
    for table in ["scratch_entries", *parts, *parts]:  # twice: install is idempotent
        triggers.install(connection, table)
    for table in ["scratch_entries", *parts]:
        for sql in (f"UPDATE {table} SET id = 3", f"DELETE FROM {table}", f"TRUNCATE {table}"):  # noqa: S608
            assert_refused(sql)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM scratch_entries")
        assert cursor.fetchone() == (2,)

    for table in ["scratch_entries", *parts]:
        triggers.remove(connection, table)
        assert trigger_names(table) == set()
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {parts[0]}")
        cursor.execute("DELETE FROM scratch_entries")


def test_flushing_a_test_database_lifts_the_triggers_only_for_the_flush(transactional_db):
    """The harness's flush (after every transactional test) empties the table, then re-arms."""
    factories.tenant("Flushed")
    assert AuditLogEntry.objects.exists()
    armed = trigger_names(triggers.TABLE)
    call_command("flush", verbosity=0, interactive=False)
    assert not AuditLogEntry.objects.exists()
    assert trigger_names(triggers.TABLE) == armed
    factories.tenant("After the flush")
    emptying = "TRUNCATE" if connection.vendor == "postgresql" else "DELETE FROM"
    assert_refused(f"{emptying} auditlog_auditlogentry")


def test_the_truncate_migration_runs_on_a_populated_table(transactional_db):
    """Back to 0003 and forward again: the trigger comes and goes, no entry changes."""
    factories.tenant("Populated")
    entries = list(AuditLogEntry.objects.order_by("id").values())
    executor = MigrationExecutor(connection)
    leaves = executor.loader.graph.leaf_nodes()
    try:
        executor.migrate([("auditlog", "0003_filter_indexes")])
        if connection.vendor == "postgresql":
            assert triggers.TRUNCATE_TRIGGER not in trigger_names(triggers.TABLE)
        else:  # as a database migrated before 0004 has them
            triggers.remove(connection)
            with connection.cursor() as cursor:
                for statement in LEGACY_SQLITE_TRIGGERS:
                    cursor.execute(statement)
        executor = MigrationExecutor(connection)
        executor.migrate([("auditlog", "0004_refuse_truncate")])
    finally:
        MigrationExecutor(connection).migrate(leaves)
    assert list(AuditLogEntry.objects.order_by("id").values()) == entries
    if connection.vendor == "postgresql":
        expected = {triggers.ROW_TRIGGER, triggers.TRUNCATE_TRIGGER, clock.TRIGGER}
    else:
        expected = {f"{triggers.TABLE}_no_update", f"{triggers.TABLE}_no_delete"}
    assert trigger_names(triggers.TABLE) == expected


def test_the_client_request_id_migration_keeps_every_entry_of_a_populated_table(
    transactional_db,
):
    """Back before the column and forward: every value kept, NULL in the new column."""
    factories.tenant("Populated")
    with audit_context(actor_type="system", request_id="server-id-1"):
        factories.tenant("Populated by a request")
    entries = list(AuditLogEntry.objects.order_by("id").values())
    assert len(entries) >= 2
    assert {entry["client_request_id"] for entry in entries} == {None}
    armed = trigger_names(triggers.TABLE)
    executor = MigrationExecutor(connection)
    leaves = executor.loader.graph.leaf_nodes()
    try:
        executor.migrate([("auditlog", "0009_database_time_on_insert")])
        columns = {
            c.name
            for c in connection.introspection.get_table_description(
                connection.cursor(), triggers.TABLE
            )
        }
        assert "client_request_id" not in columns
    finally:
        MigrationExecutor(connection).migrate(leaves)
    assert list(AuditLogEntry.objects.order_by("id").values()) == entries
    assert trigger_names(triggers.TABLE) == armed  # no table rebuilt (SQLite) without them


LEGACY_SQLITE_TRIGGERS = [
    "CREATE TRIGGER auditlog_no_update BEFORE UPDATE ON auditlog_auditlogentry"
    " BEGIN SELECT RAISE(ABORT, 'audit log entries are append-only (UPDATE refused)'); END",
    "CREATE TRIGGER auditlog_no_delete BEFORE DELETE ON auditlog_auditlogentry"
    " BEGIN SELECT RAISE(ABORT, 'audit log entries are append-only (DELETE refused)'); END",
]
