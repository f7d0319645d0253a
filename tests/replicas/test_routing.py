"""The read path against a real streaming replica: who answers, and never a stale answer.

Which server ran a query is read from each connection's own query log; that the replica
really lags is shown by reading it directly while its replay is paused.
"""

import contextlib
import socket
import time
from dataclasses import dataclass, field

import pytest
from django.db import InternalError, connections
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from auditlog import routing
from auditlog.models import AuditLogEntry
from auditlog.services import record
from exports import selectors as export_selectors
from exports.delivery import export_run
from tenants import services
from tenants.models import Team

from ..exports.helpers import exported_ids
from . import pair

pytestmark = pair.MARKS

ENTRY_TABLE = f'"{AuditLogEntry._meta.db_table}"'


@dataclass
class EntryReads:
    """The reads of the entries table each server answered inside a block."""

    primary: list[str] = field(default_factory=list)
    replica: list[str] = field(default_factory=list)

    @property
    def served_by(self) -> str:
        assert bool(self.primary) != bool(self.replica), self
        return "replica" if self.replica else "primary"


@contextlib.contextmanager
def entry_reads():
    reads = EntryReads()
    with (
        CaptureQueriesContext(connections[routing.PRIMARY]) as on_primary,
        CaptureQueriesContext(connections[routing.REPLICA]) as on_replica,
    ):
        yield reads
    for captured, found in ((on_primary, reads.primary), (on_replica, reads.replica)):
        found.extend(
            q["sql"]
            for q in captured.captured_queries
            if ENTRY_TABLE in q["sql"] and not q["sql"].startswith(("INSERT", "COPY"))
        )


def replica_has(entry_id: int) -> bool:
    return AuditLogEntry.objects.using(routing.REPLICA).filter(pk=entry_id).exists()


def change(tenant, note: str) -> int:
    """A committed entry written by the system (nobody's reads are pinned by it)."""
    record(operation_name="TenantConfigChange", tenant_id=tenant.pk, target_repr=note)
    return AuditLogEntry.objects.filter(tenant_id=tenant.pk).latest("id").pk


@pytest.fixture
def reader_api(api, world_a):
    """The reader's API client, its key already used (recording that use is a write)."""
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {world_a.keys['reader']}")
    assert api.get("/api/v1/audit_logs").status_code == 200
    pair.wait_until_caught_up()
    return api


def listed_ids(response) -> list[int]:
    assert response.status_code == 200, response.content[:500]
    return [entry["id"] for entry in response.json()["audit_logs"]]


# --- the pair itself -----------------------------------------------------------------------


def test_the_pair_is_a_streaming_primary_and_a_read_only_standby(world_a):
    assert pair.is_standby()
    with connections[routing.PRIMARY].cursor() as cursor:
        cursor.execute("SELECT state FROM pg_stat_replication")
        assert [row[0] for row in cursor.fetchall()] == ["streaming"]
    entry_id = change(world_a.tenant, "streamed")
    pair.wait_until_caught_up()
    assert replica_has(entry_id)
    with pytest.raises(InternalError, match="read-only transaction"):
        Team.objects.using(routing.REPLICA).filter(pk=world_a.team.pk).update(name="x")


# --- every read surface goes to a caught-up replica ------------------------------------------


def api_list(ctx):
    return ctx.reader_api.get("/api/v1/audit_logs", {"per_page": 100})


def api_detail(ctx):
    return ctx.reader_api.get(f"/api/v1/audit_logs/{ctx.entry_id}")


def tab(ctx):
    return ctx.reader_client.get(reverse("audit_logs"))


def entry_page(ctx):
    return ctx.reader_client.get(reverse("audit_log_detail", args=[ctx.entry_id]))


def download(ctx):
    response = ctx.reader_client.get(reverse("audit_log_download"), {"format": "ndjson"})
    # Streamed inside the caller's block, so the query log sees where it was read.
    response.body = b"".join(response.streaming_content)
    return response


def admin_changelist(ctx):
    return ctx.owner_client.get("/admin/auditlog/auditlogentry/")


@dataclass
class Surfaces:
    reader_api: object
    reader_client: object
    owner_client: object
    entry_id: int


@pytest.fixture
def surfaces(reader_api, client, world_a):
    client.force_login(world_a.reader)
    owner_client = Client()
    owner_client.force_login(world_a.owner)
    entry_id = change(world_a.tenant, "the entry to show")
    pair.wait_until_caught_up()
    return Surfaces(reader_api, client, owner_client, entry_id)


READS = [api_list, api_detail, tab, entry_page, download, admin_changelist]


@pytest.mark.parametrize("read", READS, ids=lambda f: f.__name__)
def test_a_caught_up_replica_serves_every_read_surface(surfaces, read):
    with entry_reads() as reads:
        response = read(surfaces)
    assert response.status_code == 200
    assert reads.served_by == "replica"
    body = response.body if response.streaming else response.content
    assert str(surfaces.entry_id).encode() in body


@pytest.mark.parametrize("read", READS, ids=lambda f: f.__name__)
def test_a_lagging_replica_serves_no_read_surface(surfaces, world_a, read):
    with pair.paused():
        surfaces.entry_id = change(world_a.tenant, "written while the replica is paused")
        assert not replica_has(surfaces.entry_id)
        with entry_reads() as reads:
            response = read(surfaces)
    assert response.status_code == 200
    assert reads.served_by == "primary"
    body = response.body if response.streaming else response.content
    assert str(surfaces.entry_id).encode() in body


# --- after=<now> never misses an entry because the replica lags ------------------------------


def test_polling_with_after_misses_nothing_while_the_replica_lags(reader_api, world_a):
    since = timezone.now()
    with pair.paused():
        written = [change(world_a.tenant, f"entry {i}") for i in range(3)]
        assert not any(replica_has(pk) for pk in written)
        with entry_reads() as reads:
            during = listed_ids(reader_api.get("/api/v1/audit_logs", {"after": since}))
        assert reads.served_by == "primary"
    assert sorted(during) == written
    pair.wait_until_caught_up()
    with entry_reads() as reads:
        after = listed_ids(reader_api.get("/api/v1/audit_logs", {"after": since}))
    assert reads.served_by == "replica"
    assert after == during


# --- read-your-writes ------------------------------------------------------------------------


def test_a_person_who_just_wrote_reads_the_primary_until_the_pin_expires(
    client, reader_api, world_a, settings
):
    settings.AUDIT_LOG_READ_YOUR_WRITES_SECONDS = 3
    client.force_login(world_a.owner)  # signing in is a write of theirs too (Login)
    owner_api = APIClient()
    owner_api.credentials(HTTP_AUTHORIZATION=f"Bearer {world_a.keys['owner']}")
    created = owner_api.post(
        "/api/v1/credentials/",
        {"team": world_a.team.pk, "name": "Pinned", "value": "v", "credential_type": "text"},
        format="json",
    )
    assert created.status_code == 201, created.content
    written_at = time.monotonic()
    pair.wait_until_caught_up()  # the replica has the change: only the pin keeps them off it

    with CaptureQueriesContext(connections[routing.REPLICA]) as on_replica:
        page = client.get(reverse("audit_logs"))
    assert b"Pinned" in page.content
    assert time.monotonic() - written_at < settings.AUDIT_LOG_READ_YOUR_WRITES_SECONDS
    assert on_replica.captured_queries == []  # pinned: the replica is not even asked

    # Someone who wrote nothing meanwhile reads the replica.
    with entry_reads() as reads:
        assert listed_ids(reader_api.get("/api/v1/audit_logs"))
    assert reads.served_by == "replica"

    time.sleep(
        max(0.0, written_at + settings.AUDIT_LOG_READ_YOUR_WRITES_SECONDS - time.monotonic())
    )
    with entry_reads() as reads:
        assert b"Pinned" in client.get(reverse("audit_logs")).content
    assert reads.served_by == "replica"


def test_a_change_shows_in_the_tab_at_once_while_the_replica_lags(api, client, world_a, settings):
    settings.AUDIT_LOG_READ_YOUR_WRITES_SECONDS = 5
    client.force_login(world_a.owner)
    pair.wait_until_caught_up()
    with pair.paused():
        api.force_authenticate(world_a.owner)
        created = api.post(
            "/api/v1/credentials/",
            {"team": world_a.team.pk, "name": "Fresh", "value": "v", "credential_type": "text"},
            format="json",
        )
        assert created.status_code == 201, created.content
        entry = AuditLogEntry.objects.filter(tenant_id=world_a.tenant.pk).latest("id")
        assert entry.operation_name == "CredentialSave"
        assert not replica_has(entry.pk)
        with entry_reads() as reads:
            page = client.get(reverse("audit_logs"))
        assert b"Fresh" in page.content
        assert reads.served_by == "primary"


def test_a_request_reads_its_own_uncommitted_entry_from_the_primary(api, world_a):
    _, fresh_key = services.api_key_create(user=world_a.reader, name="fresh key")
    pair.wait_until_caught_up()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {fresh_key}")
    # The key's first use records AuthenticationTokenUse inside this request's transaction.
    with entry_reads() as reads:
        response = api.get("/api/v1/audit_logs")
    assert reads.served_by == "primary"
    newest = response.json()["audit_logs"][0]
    assert newest["operation_name"] == "AuthenticationTokenUse"
    assert newest["user_id"] == world_a.reader.pk


# --- what stays on the primary ---------------------------------------------------------------


def test_a_write_of_an_object_read_from_the_replica_goes_to_the_primary(world_a):
    team = Team.objects.using(routing.REPLICA).get(pk=world_a.team.pk)
    services.team_update(team=team, name="Renamed from a replica read")
    assert Team.objects.get(pk=team.pk).name == "Renamed from a replica read"


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_unreachable_replica_sends_reads_to_the_primary(
    reader_api, world_a, caplog, monkeypatch
):
    # Whatever happens here, the next test finds the replica usable again.
    monkeypatch.setattr(routing, "_replica_unusable_until", 0.0)
    replica = connections[routing.REPLICA]
    port = replica.settings_dict["PORT"]
    replica.close()
    replica.settings_dict["PORT"] = closed_port()
    try:
        first = listed_ids(reader_api.get("/api/v1/audit_logs"))
        second = listed_ids(reader_api.get("/api/v1/audit_logs"))
    finally:
        replica.close()
        replica.settings_dict["PORT"] = port
    assert first == second
    warnings = [r for r in caplog.records if r.name == "auditlog.routing"]
    assert len(warnings) == 1  # the second read did not try the replica again
    assert "127.0.0.1" not in warnings[0].getMessage()


def test_the_export_delivers_entries_the_lagging_replica_lacks(configure, s3, world_a):
    config = configure(world_a.tenant)
    with pair.paused():
        written = [change(world_a.tenant, f"to export {i}") for i in range(3)]
        assert not any(replica_has(pk) for pk in written)
        with CaptureQueriesContext(connections[routing.REPLICA]) as on_replica:
            result = export_run(tenant_id=world_a.tenant.pk)
            status = export_selectors.export_status(tenant_id=world_a.tenant.pk)
        assert on_replica.captured_queries == []
    assert result.status == "ok", result
    exported = exported_ids(s3, config)
    assert set(written) <= set(exported)
    assert sorted(exported) == sorted(
        AuditLogEntry.objects.filter(tenant_id=world_a.tenant.pk).values_list("id", flat=True)
    )
    assert status.backlog_count == 0
