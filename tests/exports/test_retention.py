"""Retention on the partitioned log: whole months dropped, never an undelivered entry.

Real PostgreSQL partitions (dropped for real on the maintenance connection, hence
transactional tests), a real export to the moto bucket, the real verifier afterwards. Each
test uses months of its own: partitions are DDL and stay for the rest of the run.
"""

import io
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, connections, transaction
from django.utils import timezone

from auditlog import partitions, retention
from auditlog.models import AuditLogEntry
from auditlog.services import entry_row, record
from exports import delivery, selectors
from exports.models import ExportSettings, ExportStream

from .. import factories
from .helpers import exported_ids, verify

postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="partitions: PostgreSQL only"
)
maintenance = pytest.mark.django_db(transaction=True, databases=["default", "maintenance"])
TABLE = partitions.TABLE


def at(year: int, month: int, day: int = 1) -> datetime:
    return datetime(year, month, day, 12, tzinfo=UTC)


def add(tenant, created_at: datetime, n: int = 1) -> list[int]:
    """``n`` entries of ``tenant`` stamped ``created_at`` (old history, as imported)."""
    row = entry_row(operation_name="TenantConfigChange", tenant_id=tenant.pk)
    made = AuditLogEntry.objects.bulk_create(
        [
            AuditLogEntry(**{**row, "created_at": created_at + timedelta(seconds=i)})
            for i in range(n)
        ]
    )
    return [entry.pk for entry in made]


def months(*starts: datetime) -> list[partitions.Partition]:
    """Create these months' partitions (on the maintenance connection)."""
    for start in starts:
        partitions.create_months(start, start)
    return [partitions.monthly(start) for start in starts]


def exists(table: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [table])
        return cursor.fetchone()[0]


def enable(tenant, *, cutoff: datetime | None) -> None:
    """An enabled export whose watermark (everything before it delivered) is ``cutoff``."""
    ExportSettings.objects.create(
        tenant=tenant, enabled=True, bucket="held-bucket", region="eu-west-1", prefix="p"
    )
    ExportStream.objects.create(tenant=tenant, bucket="held-bucket", prefix="p", cutoff=cutoff)


def prune_entries(tenant) -> list[AuditLogEntry]:
    return list(
        AuditLogEntry.objects.filter(
            tenant=tenant, operation_name=retention.PRUNE_OPERATION
        ).order_by("id")
    )


@postgres_only
@maintenance
def test_prune_drops_whole_months_but_never_an_undelivered_entry():
    held, free, idle = (factories.tenant(n) for n in ("Held", "Free", "Idle"))
    jan, feb, mar = months(at(2019, 1), at(2019, 2), at(2019, 3))
    add(held, at(2019, 1, 10), 3)
    add(free, at(2019, 1, 20), 2)
    add(held, at(2019, 2, 20), 2)
    add(free, at(2019, 3, 5), 4)
    add(idle, timezone.now())
    enable(held, cutoff=at(2019, 2, 15))  # delivered: all of January, half of February
    ExportSettings.objects.create(tenant=free, enabled=False, bucket="off", region="eu-west-1")
    kept_ids = set(
        AuditLogEntry.objects.filter(created_at__gte=feb.start).values_list("id", flat=True)
    )

    out = io.StringIO()
    call_command("prune_audit_log", "--dry-run", stdout=out)
    text = out.getvalue()
    assert f"Would drop {jan.name} (2019-01)" in text
    assert f"Kept {feb.name} (2019-02):" in text
    assert (
        f"held back by tenant {held.pk}: not yet delivered to its S3 export since 2019-02-20"
        in text
    )
    assert f"Kept {mar.name}" in text
    assert exists(jan.name)  # a dry run changes nothing
    assert not prune_entries(held)

    out = io.StringIO()
    call_command("prune_audit_log", stdout=out)
    assert f"Dropped {jan.name} (2019-01): 5 entries of 2 tenants" in out.getvalue()
    assert not exists(jan.name)
    assert exists(feb.name)
    assert exists(mar.name)
    assert not AuditLogEntry.objects.filter(created_at__lt=feb.start).exists()
    assert kept_ids <= set(AuditLogEntry.objects.values_list("id", flat=True))

    # One record per tenant that had entries in the month, as the system, with what went.
    (record_held,) = prune_entries(held)
    (record_free,) = prune_entries(free)
    assert not prune_entries(idle)
    assert record_held.actor_type == "system"
    assert record_held.outputs == {
        "partition_from": "2019-01-01T00:00:00+00:00",
        "partition_to": "2019-02-01T00:00:00+00:00",
        "first_removed_at": "2019-01-10T12:00:00+00:00",
        "last_removed_at": "2019-01-10T12:00:02+00:00",
        "removed_count": 3,
        "retention_days": 400,
    }
    assert record_free.outputs["removed_count"] == 2

    # Once the export has delivered everything, the held months go too.
    ExportStream.objects.filter(tenant=held).update(cutoff=timezone.now())
    call_command("prune_audit_log", stdout=io.StringIO())
    assert not exists(feb.name)
    assert not exists(mar.name)
    assert [e.outputs["removed_count"] for e in prune_entries(free)] == [2, 4]


@postgres_only
@maintenance
def test_a_new_destination_holds_the_whole_history_and_a_disabled_export_nothing(client):
    """A destination with no stream yet is owed every entry; switching off releases it."""
    tenant = factories.tenant("Moving")
    client.force_login(factories.owner(tenant))
    (month,) = months(at(2018, 6))
    add(tenant, at(2018, 6, 3))
    ExportSettings.objects.create(
        tenant=tenant, enabled=True, bucket="new-bucket", region="eu-west-1", prefix=""
    )
    (candidate,) = [c for c in retention.prune() if c.partition == month]
    assert [hold.tenant_id for hold in candidate.held_by] == [tenant.pk]
    assert candidate.held_by[0].since == at(2018, 6, 3)
    assert exists(month.name)
    assert selectors.export_status(tenant_id=tenant.pk).retention_held_since == at(2018, 6, 3)
    page = client.get("/settings/audit-logs/export/").content.decode()
    assert 'id="retention-hold">held back: entries since <time datetime="2018-06-03' in page

    ExportSettings.objects.filter(tenant=tenant).update(enabled=False)
    assert selectors.export_status(tenant_id=tenant.pk).retention_held_since is None
    retention.prune()
    assert not exists(month.name)


@postgres_only
@maintenance
def test_a_hold_that_appears_after_the_plan_is_honoured():
    """Holds are asked again under the detach's lock, after the plan was made."""
    tenant = factories.tenant("Late hold")
    (month,) = months(at(2017, 4))
    add(tenant, at(2017, 4, 9))
    (candidate,) = [c for c in retention.plan() if c.partition == month]
    assert not candidate.held_by

    def enable_during_detach(before, using):
        if not ExportSettings.objects.using(using).filter(tenant=tenant).exists():
            ExportSettings.objects.using(using).create(
                tenant_id=tenant.pk, enabled=True, bucket="late", region="eu-west-1"
            )
        return []

    retention.register_hold(enable_during_detach)
    try:
        retention.prune()
    finally:
        retention._providers.remove(enable_during_detach)
    assert exists(month.name)
    assert AuditLogEntry.objects.filter(tenant=tenant, created_at__lt=month.end).count() == 1


@postgres_only
@maintenance
def test_concurrent_writers_never_fail_while_a_month_is_dropped():
    tenant = factories.tenant("Busy")
    (month,) = months(at(2016, 2))
    add(tenant, at(2016, 2, 1), 5000)
    stop = threading.Event()
    errors: list[BaseException] = []
    waits: list[float] = []

    def writer():
        try:
            while not stop.is_set():
                started = time.monotonic()
                with transaction.atomic():
                    record(operation_name="TenantConfigChange", tenant_id=tenant.pk)
                waits.append(time.monotonic() - started)
        except BaseException as exc:  # any failure of capture is the test's failure
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.3)
        retention.prune()
        time.sleep(0.3)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert not errors
    assert not exists(month.name)
    assert len(waits) > 8
    written = AuditLogEntry.objects.filter(tenant=tenant, operation_name="TenantConfigChange")
    assert written.filter(created_at__gte=month.end).count() == len(waits)


@postgres_only
@maintenance
def test_the_verifier_accepts_a_bucket_after_its_months_were_dropped(s3, configure):
    tenant = factories.tenant("Delivered")
    (month,) = months(at(2015, 9))
    old = add(tenant, at(2015, 9, 14), 7)
    config = configure(tenant)
    assert delivery.export_run(tenant_id=tenant.pk).status == "ok"
    exported = exported_ids(s3, config)
    assert set(old) <= set(exported)

    retention.prune()
    assert not exists(month.name)
    assert not AuditLogEntry.objects.filter(pk__in=old).exists()
    report = verify(s3, config)
    assert report.ok, report.problems
    assert report.entries == len(exported)
    # The next run carries on after the dropped month: same chain, nothing re-sent.
    assert delivery.export_run(tenant_id=tenant.pk).status == "ok"
    assert verify(s3, config).ok
    assert sorted(exported_ids(s3, config)) == sorted(set(exported_ids(s3, config)))


@postgres_only
@pytest.mark.django_db
def test_the_settings_pages_state_the_window(client, world_a, settings):
    settings.AUDIT_LOG_RETENTION_DAYS = 90
    client.force_login(world_a.owner)
    tab = client.get("/settings/audit-logs/").content.decode()
    assert "Entries are kept here for\n  <strong>90 days</strong>" in tab
    page = client.get("/settings/audit-logs/export/").content.decode()
    assert (
        "Entries older than 90 days are removed\n  from the product; your bucket keeps them."
        in page
    )


@pytest.mark.skipif(connection.vendor != "sqlite", reason="the SQLite refusal")
@pytest.mark.django_db
def test_on_sqlite_prune_refuses_and_changes_nothing(world_a):
    before = list(AuditLogEntry.objects.order_by("id").values())
    with pytest.raises(CommandError, match=r"needs PostgreSQL.*Nothing was removed"):
        call_command("prune_audit_log")
    with pytest.raises(CommandError, match="needs PostgreSQL"):
        call_command("prune_audit_log", "--dry-run")
    assert list(AuditLogEntry.objects.order_by("id").values()) == before
    with pytest.raises(CommandError, match="not partitioned"):
        call_command("audit_log_partitions")


@postgres_only
@maintenance
def test_a_month_detached_by_an_interrupted_prune_is_finished_by_the_next():
    """A crash between the detach and the drop leaves a detached table: the next run drops it
    and records it, even if the window no longer says so."""
    tenant = factories.tenant("Interrupted")
    (month,) = months(at(2014, 5))
    add(tenant, at(2014, 5, 6), 2)
    leftover = f"{retention.DETACHED}p2014_05"
    with connections["maintenance"].cursor() as cursor:
        cursor.execute(f"ALTER TABLE {TABLE} DETACH PARTITION {month.name}")
        cursor.execute(f"ALTER TABLE {month.name} RENAME TO {leftover}")
    retention.prune(now=at(2014, 6, 1))  # nothing is outside this window
    assert not exists(leftover)
    (entry,) = prune_entries(tenant)
    assert entry.outputs["removed_count"] == 2
    assert entry.outputs["partition_from"] == "2014-05-01T00:00:00+00:00"
