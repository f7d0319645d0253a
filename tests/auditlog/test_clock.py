"""Entries carry the database's time: who may write another (auditlog/clock.py).

The application role's refusals, through its own login, are in tests/test_app_role.py; here
the tables' owner (the test connection) takes on roles with ``SET ROLE``, to show that the
exemption follows membership of the owner role, not superuser rights.
"""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import DatabaseError, connection, transaction

from auditlog import clock, partitions, triggers
from auditlog.models import AuditLogEntry
from auditlog.services import entry_row

from .. import factories

pytestmark = pytest.mark.django_db
TABLE = triggers.TABLE
LONG_AGO = datetime(2001, 1, 5, tzinfo=UTC)


def add_at(tenant_id: int, created_at: datetime) -> AuditLogEntry:
    """An entry stamped ``created_at``, as an import of old history (or a seed tool) writes it."""
    row = entry_row(operation_name="TenantConfigChange", tenant_id=tenant_id)
    return AuditLogEntry.objects.create(**{**row, "created_at": created_at})


@pytest.mark.skipif(connection.vendor != "postgresql", reason="database roles: PostgreSQL only")
@pytest.mark.parametrize(("member", "allowed"), [(True, True), (False, False)])
def test_only_members_of_the_owner_role_may_write_another_time(world_a, member, allowed):
    role = factories.role_name("clock")
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = %s", [TABLE])
        owner = cursor.fetchone()[0]
        cursor.execute(f'CREATE ROLE "{role}" NOSUPERUSER')  # rolled back with the test
        tables = ", ".join(partitions.entries_tables(connection))
        cursor.execute(f'GRANT SELECT, INSERT ON {tables} TO "{role}"')
        cursor.execute(f'GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO "{role}"')
        if member:
            cursor.execute(f'GRANT "{owner}" TO "{role}"')
        cursor.execute(f'SET ROLE "{role}"')
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
            assert cursor.fetchone() == (False,)
        now = datetime.now(UTC)
        add_at(world_a.tenant.pk, now)  # anyone with INSERT: the database's time
        for when in (LONG_AGO, now - timedelta(hours=1), now + timedelta(hours=1)):
            if allowed:
                assert add_at(world_a.tenant.pk, when).created_at == when
            else:
                with pytest.raises(DatabaseError, match=clock.MESSAGE), transaction.atomic():
                    add_at(world_a.tenant.pk, when)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET ROLE")


@pytest.mark.skipif(connection.vendor != "postgresql", reason="triggers: PostgreSQL only")
def test_every_partition_has_the_trigger_even_one_created_later():
    later = partitions.monthly(datetime(2097, 4, 1, tzinfo=UTC))
    with connection.cursor() as cursor:
        partitions.create_monthly(cursor, later)
        cursor.execute(
            "SELECT c.relname FROM pg_class c WHERE c.oid IN"
            " (SELECT relid FROM pg_partition_tree(%s)) AND NOT EXISTS (SELECT 1 FROM pg_trigger t"
            " WHERE t.tgrelid = c.oid AND t.tgname = %s AND t.tgenabled <> 'D')",
            [TABLE, clock.TRIGGER],
        )
        assert cursor.fetchall() == []
    assert later.name in partitions.entries_tables(connection)


@pytest.mark.skipif(connection.vendor != "sqlite", reason="the SQLite pass")
def test_sqlite_has_no_roles_and_no_clock_trigger(world_a):
    """The embedded single-user default: whoever opens the file owns it (documented)."""
    assert add_at(world_a.tenant.pk, LONG_AGO).created_at == LONG_AGO
