"""The partitioned entries table (PostgreSQL): conversion, append-only everywhere, maintenance.

Maintenance runs DDL on its own (owner) connection, the ``maintenance`` alias, as in
production; those tests are transactional, so what they create is committed and stays for
the rest of the run. Each test therefore uses months no other test uses.
"""

import io
import logging
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from auditlog import partitions, triggers
from auditlog.models import AuditLogEntry
from auditlog.pagination import encode_cursor
from auditlog.services import entry_row, record

from .. import factories

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="partitions: PostgreSQL only"
)
maintenance = pytest.mark.django_db(transaction=True, databases=["default", "maintenance"])
TABLE = triggers.TABLE


def at(year: int, month: int, day: int = 1, hour: int = 0) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


def add(tenant_id: int, created_at: datetime, **values) -> AuditLogEntry:
    """An entry stamped ``created_at`` (as an import of old history would write it)."""
    row = entry_row(operation_name="TenantConfigChange", tenant_id=tenant_id, **values)
    return AuditLogEntry.objects.bulk_create([AuditLogEntry(**{**row, "created_at": created_at})])[
        0
    ]


def rows(table: str = TABLE) -> list[tuple]:
    """Every column of every row, by id: what must never change."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {table} ORDER BY id")  # noqa: S608
        return cursor.fetchall()


def table_of(entry_id: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT tableoid::regclass::text FROM {TABLE} WHERE id = %s", [entry_id])  # noqa: S608
        return cursor.fetchone()[0]


def exists(table: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [table])
        return cursor.fetchone()[0]


def refused(sql: str) -> bool:
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql)
    except DatabaseError as exc:
        return "append-only" in str(exc)
    return False


@pytest.mark.django_db(transaction=True)
def test_the_migration_converts_a_populated_table_keeping_every_row_exactly():
    """Back to the unpartitioned table, entries over five months and three tenants, forward."""
    executor = MigrationExecutor(connection)
    leaves = executor.loader.graph.leaf_nodes()
    tenants = [factories.tenant(f"Converted {n}") for n in range(3)]
    target = ("auditlog", "0006_admin_search_indexes")
    old_entry = executor.loader.project_state([target]).apps.get_model("auditlog", "AuditLogEntry")

    def add_as_of_0006(tenant_id, created_at, **values):
        """An entry as 0006 knew them (no client_request_id yet)."""
        row = entry_row(operation_name="TenantConfigChange", tenant_id=tenant_id, **values)
        del row["client_request_id"]
        old_entry.objects.bulk_create([old_entry(**{**row, "created_at": created_at})])

    try:
        executor.migrate([target])
        with connection.cursor() as cursor:
            cursor.execute("SELECT relkind FROM pg_class WHERE relname = %s", [TABLE])
            assert cursor.fetchone() == ("r",)
        for n in range(60):
            tenant = tenants[n % 3]
            add_as_of_0006(
                tenant.pk,
                at(2025, 1 + n % 5, 1 + n % 28, n % 24),
                target_id=str(n),
                inputs={"n": n, "text": "é" * n},
                changes={"name": [None, f"v{n}"]},
                outputs={"ok": n % 2 == 0},
            )
        add_as_of_0006(tenants[0].pk, at(2025, 2, 1))  # on a boundary: the later month's
        before = rows()
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT nextval(pg_get_serial_sequence('{TABLE}', 'id'))")
            burnt = cursor.fetchone()[0]  # as a rolled-back insert would

        MigrationExecutor(connection).migrate(leaves)

        # Every value kept; the column added since (last) is NULL in every entry.
        assert rows() == [(*row, None) for row in before]
        assert len(before) >= 61 + 3  # the three tenants' creation entries too
        with connection.cursor() as cursor:
            cursor.execute("SELECT relkind FROM pg_class WHERE relname = %s", [TABLE])
            assert cursor.fetchone() == ("p",)
        first = next(row for row in before if row[1].year == 2025)
        assert table_of(first[0]) == f"{TABLE}_p2025_{first[1].month:02d}"
        on_boundary = max(row[0] for row in before)
        assert table_of(on_boundary) == f"{TABLE}_p2025_02"
        now = timezone.now()
        for month in range(partitions.MONTHS_AHEAD + 1):
            assert exists(partitions.monthly(partitions.add_months(now, month)).name)
        assert exists(partitions.DEFAULT)
        # New ids continue past every id the old sequence handed out.
        record(operation_name="TenantConfigChange", tenant_id=tenants[1].pk)
        newest = AuditLogEntry.objects.order_by("-id").first()
        assert newest.id > burnt
        assert AuditLogEntry.objects.get(pk=first[0]).created_at == first[1]
    finally:
        MigrationExecutor(connection).migrate(leaves)


@maintenance
def test_update_delete_truncate_are_refused_on_the_parent_and_every_kind_of_partition():
    tenant = factories.tenant("Append-only")
    later = partitions.monthly(at(2096, 3))
    assert partitions.create_months(later.start, later.start) == [later.name]
    current = add(tenant.pk, timezone.now())
    in_default = add(tenant.pk, at(1970, 6, 2))
    in_later = add(tenant.pk, at(2096, 3, 9))
    tables = {
        TABLE: current,
        table_of(current.pk): current,
        partitions.DEFAULT: in_default,
        later.name: in_later,
    }
    assert table_of(in_default.pk) == partitions.DEFAULT
    assert table_of(in_later.pk) == later.name
    before = rows()
    for table in tables:
        assert refused(f"UPDATE {table} SET operation_name = 'Forged'"), table  # noqa: S608
        assert refused(f"DELETE FROM {table}"), table  # noqa: S608
        assert refused(f"TRUNCATE {table}"), table
    assert rows() == before


@maintenance
def test_maintenance_moves_default_entries_into_new_months_and_reports_them(client, caplog):
    tenant = factories.tenant("Imported history")
    stray = [add(tenant.pk, at(1971, 3, day), target_id=str(day)) for day in (1, 15, 31)]
    stray.append(add(tenant.pk, at(1971, 7, 4, 12)))
    current = add(tenant.pk, timezone.now())
    assert {table_of(e.pk) for e in stray} == {partitions.DEFAULT}
    before = rows()

    with caplog.at_level(logging.WARNING, logger="auditlog.partitions"):
        response = client.get("/readyz")
    assert response.status_code == 200  # capture works: reported, not unready
    assert response.json()["checks"]["default_partition"] == "not_empty"
    assert "4 entries are in the DEFAULT partition" in caplog.text

    out = io.StringIO()
    with caplog.at_level(logging.WARNING, logger="auditlog.partitions"):
        call_command("audit_log_partitions", stdout=out)
    assert "Moved 4 entries out of DEFAULT" in out.getvalue()
    assert f"moved 4 entries out of the DEFAULT partition into {TABLE}_p1971_03 (3)" in caplog.text

    assert rows() == before  # same ids, same values: moved, not rewritten
    assert partitions.default_rows() == 0
    assert [table_of(e.pk) for e in stray] == [f"{TABLE}_p1971_03"] * 3 + [f"{TABLE}_p1971_07"]
    assert table_of(current.pk) == partitions.monthly(timezone.now()).name
    assert client.get("/readyz").json()["checks"]["default_partition"] == "ok"
    # The moved-into months and the fresh DEFAULT are append-only like every other.
    add(tenant.pk, at(1969, 1, 1))
    for table in (f"{TABLE}_p1971_03", f"{TABLE}_p1971_07", partitions.DEFAULT):
        assert refused(f"TRUNCATE {table}"), table
        assert refused(f"DELETE FROM {table}"), table  # noqa: S608


@maintenance
def test_maintenance_keeps_three_months_ahead_and_can_create_earlier_months():
    now = timezone.now()
    earlier = [partitions.monthly(partitions.add_months(now, -n)).name for n in (30, 29)]
    first = partitions.add_months(partitions.month_of(now), -29)
    # An entry already in DEFAULT for one of those months: it is moved first, not in the way.
    stray = add(factories.tenant("Earlier").pk, first + timedelta(days=2))
    assert table_of(stray.pk) == partitions.DEFAULT
    out = io.StringIO()
    call_command("audit_log_partitions", "--from", f"{first:%Y-%m}", stdout=out)
    assert table_of(stray.pk) == earlier[1]
    assert "Moved 1 entries out of DEFAULT" in out.getvalue()
    first = partitions.add_months(first, -1)
    out = io.StringIO()
    call_command("audit_log_partitions", "--from", f"{first:%Y-%m}", stdout=out)
    assert f"Created 1 earlier partitions: {earlier[0]}" in out.getvalue()
    for month in range(partitions.MONTHS_AHEAD + 1):
        assert exists(partitions.monthly(partitions.add_months(now, month)).name)
    assert all(exists(name) for name in earlier)
    # Two months on, the daily run adds the two months that are then ahead.
    later = [partitions.monthly(partitions.add_months(now, n)).name for n in (4, 5)]
    assert not any(exists(name) for name in later)
    assert partitions.maintain(now=partitions.add_months(partitions.month_of(now), 2)) == {
        "moved": {},
        "created": later,
    }
    again = io.StringIO()
    call_command("audit_log_partitions", stdout=again)
    assert "Created 0 partitions ahead (all there)" in again.getvalue()


def test_a_bad_month_is_a_clear_error(db):
    with pytest.raises(Exception, match="YYYY-MM"):
        call_command("audit_log_partitions", "--from", "1968-13")


PARTITION_SCANNED = re.compile(rf" on ({TABLE}_(?:p\d{{4}}_\d{{2}}|default))\b")


def scanned(sql: str) -> set[str]:
    """The partitions the plan of ``sql`` reads."""
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {sql}")
        plan = "\n".join(line for (line,) in cursor.fetchall())
    return set(PARTITION_SCANNED.findall(plan))


def entries_queries(queries) -> list[str]:
    return [q["sql"] for q in queries if q["sql"].startswith("SELECT") and TABLE in q["sql"]]


def test_time_bounded_reads_touch_only_the_partitions_they_need(world_a, api, client):
    """after, before, cursor, anchored pages and presets: EXPLAIN names only their months."""
    now = timezone.now()
    this_month = partitions.month_of(now)
    with connection.cursor() as cursor:
        for back in range(1, 14):
            partitions.create_monthly(cursor, partitions.monthly(partitions.add_months(now, -back)))
    months = {
        partitions.monthly(partitions.add_months(this_month, n)).name: n for n in range(-13, 4)
    }
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {world_a.keys['reader']}")
    old = add(world_a.tenant.pk, partitions.add_months(this_month, -6) + timedelta(days=3))

    def plans(path: str, getter=api.get, kinds: bool = False) -> list[set[str]]:
        with CaptureQueriesContext(connection) as queries:
            response = getter(path)
        assert response.status_code == 200, response.content
        sqls = entries_queries(queries.captured_queries)
        if kinds:  # the page's query, then the count's
            sqls = sorted(sqls, key=lambda sql: "COUNT(" in sql)[:: len(sqls) - 1]
        found = [scanned(sql) for sql in sqls]
        assert found
        return found

    def offsets(names: set[str]) -> set[int]:
        assert names <= {*months, partitions.DEFAULT}
        return {months[name] for name in names if name in months}

    after = (now - timedelta(days=40)).strftime("%Y-%m-%dT%H:%M:%SZ")
    for plan in plans(f"/api/v1/audit_logs?after={after}"):
        assert offsets(plan) <= {-2, -1, 0}  # anchored at now: nothing ahead either
    before = partitions.add_months(this_month, -5).strftime("%Y-%m-%dT%H:%M:%SZ")
    for plan in plans(f"/api/v1/audit_logs?before={before}"):
        assert max(offsets(plan)) <= -6
    deep = api.get(f"/api/v1/audit_logs?before={before}&per_page=1").json()
    assert deep["audit_logs"][0]["id"] == old.pk
    cursor = encode_cursor(old.created_at, old.pk + 1)  # as meta.next_cursor would point
    # A cursor bounds the page, not the (capped) count of every matching entry.
    page, count = plans(f"/api/v1/audit_logs?cursor={cursor}&per_page=1", kinds=True)
    assert max(offsets(page)) <= -6
    assert len(count) > len(page)
    for plan in plans("/api/v1/audit_logs?page=2&per_page=1"):
        assert max(offsets(plan)) <= 0
    client.force_login(world_a.reader)
    for plan in plans("/settings/audit-logs/?range=24h", client.get):
        # No upper bound: the (empty) months ahead are read too, never an older one.
        assert min(offsets(plan)) >= -1
    for plan in plans(f"/api/v1/audit_logs/{old.pk}"):  # by id: every month, still one row
        assert months[table_of(old.pk)] in offsets(plan)


def test_paging_crosses_a_partition_boundary(world_a, api):
    """Cursor and page-number paging see every entry once, in order, across two months."""
    now = timezone.now()
    boundary = partitions.month_of(now)
    with connection.cursor() as cursor:
        partitions.create_monthly(cursor, partitions.monthly(partitions.add_months(now, -1)))
    stamps = [boundary + timedelta(seconds=s) for s in (-3, -2, -1, 0, 0, 1, 2)]
    made = [add(world_a.tenant.pk, stamp, target_id=str(n)) for n, stamp in enumerate(stamps)]
    assert {table_of(e.pk) for e in made} == {
        partitions.monthly(partitions.add_months(now, -1)).name,
        partitions.monthly(now).name,
    }
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {world_a.keys['reader']}")
    window = (
        f"after={(boundary - timedelta(seconds=10)).strftime('%Y-%m-%dT%H:%M:%SZ')}"
        f"&before={(boundary + timedelta(seconds=10)).strftime('%Y-%m-%dT%H:%M:%SZ')}"
    )
    expected = [e.pk for e in sorted(made, key=lambda e: (e.created_at, e.pk), reverse=True)]

    by_cursor, cursor = [], ""
    while True:
        body = api.get(f"/api/v1/audit_logs?{window}&per_page=2&cursor={cursor}").json()
        by_cursor += [entry["id"] for entry in body["audit_logs"]]
        cursor = body["meta"]["next_cursor"]
        if not cursor:
            break
    by_page = []
    for page in range(1, 5):
        body = api.get(f"/api/v1/audit_logs?{window}&per_page=2&page={page}").json()
        by_page += [entry["id"] for entry in body["audit_logs"]]
    assert by_cursor == expected
    assert by_page == expected
    assert api.get(f"/api/v1/audit_logs/{made[0].pk}").json()["id"] == made[0].pk
