"""The export run against a real S3/STS server (moto with IAM enforcement).

First what a run delivers (the wire format, bounded objects, the lease, destinations), then
failure and concurrency: S3 down mid-run, racing runs, a long-open transaction, Celery.
"""

import contextlib
import gzip
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import redis
from django.conf import settings as django_settings
from django.db import connection, transaction

from auditlog.models import AuditLogEntry
from auditlog.serializers import entry_to_json
from exports import delivery, layout
from exports.models import ExportBatch, ExportManifest, ExportState
from exports.settings import export_settings_ensure, export_settings_update

from ..servers import shared_database_url
from .helpers import add_entries, db_ids, exported_ids, verify, watermark

ROOT = Path(__file__).resolve().parents[2]


# Concurrent connections (threads, a worker process) to one test database: PostgreSQL only;
# SQLite's test database is in memory, private to this process.
postgres_only = pytest.mark.skipif(
    "postgresql" not in django_settings.DATABASES["default"]["ENGINE"],
    reason="needs concurrent connections to one database: PostgreSQL only",
)


@pytest.mark.django_db
def test_happy_path_exports_every_entry_once_with_the_wire_format(s3, configure, world_a):
    config = configure(world_a.tenant)
    result = delivery.export_run(tenant_id=world_a.tenant.pk)
    assert result.status == "ok", result.error
    ids = exported_ids(s3, config)
    # The configuration change itself is an entry; it may be just inside or after the cutoff.
    assert sorted(ids) == db_ids(world_a.tenant)[: len(ids)]
    assert len(ids) == len(set(ids)) == result.entries >= len(db_ids(world_a.tenant)) - 1
    root = layout.full_key(config, layout.tenant_root(world_a.tenant.pk))
    objects = s3.objects(root + "/")
    batch = ExportBatch.objects.get(tenant_id=world_a.tenant.pk)
    body = objects[layout.full_key(config, batch.key)]
    first = json.loads(gzip.decompress(body).splitlines()[0])
    assert first == json.loads(json.dumps(entry_to_json(AuditLogEntry.objects.get(pk=first["id"]))))
    assert batch.key.startswith(f"audit-logs/tenant={world_a.tenant.pk}/")
    assert batch.key.endswith(f"/{1:012d}-{batch.first_id}-{batch.last_id}.ndjson.gz")
    report = verify(s3, config)
    assert report.ok, report.problems
    assert report.entries == len(ids)


@pytest.mark.django_db
def test_rerun_exports_nothing_new_but_still_writes_a_signed_manifest(s3, configure, world_a):
    config = configure(world_a.tenant)
    delivery.export_run(tenant_id=world_a.tenant.pk)
    delivery.export_run(tenant_id=world_a.tenant.pk)  # picks up the config-change entry
    again = delivery.export_run(tenant_id=world_a.tenant.pk)
    assert again.status == "ok"
    assert again.entries == 0
    assert ExportManifest.objects.filter(tenant_id=world_a.tenant.pk).count() == 3
    ids = exported_ids(s3, config)
    assert sorted(ids) == db_ids(world_a.tenant)
    report = verify(s3, config)
    assert report.ok, report.problems
    assert report.manifests == 3


@pytest.mark.django_db
def test_backlog_goes_out_in_bounded_objects(s3, configure, world_a, settings):
    settings.AUDIT_EXPORT_MAX_ENTRIES_PER_OBJECT = 7
    config = configure(world_a.tenant)
    add_entries(world_a.tenant, 30)
    result = delivery.export_run(tenant_id=world_a.tenant.pk)
    assert result.status == "ok", result.error
    counts = list(
        ExportBatch.objects.filter(tenant_id=world_a.tenant.pk).values_list("count", flat=True)
    )
    assert max(counts) == 7
    assert len(counts) == result.batches >= 5
    assert sorted(exported_ids(s3, config)) == db_ids(world_a.tenant)
    assert verify(s3, config).ok


@pytest.mark.django_db
def test_role_without_put_object_shows_the_error_loses_nothing_then_delivers_once(
    s3, configure, world_a, settings
):
    settings.AUDIT_EXPORT_MAX_ENTRIES_PER_OBJECT = 5
    config = export_settings_ensure(tenant_id=world_a.tenant.pk)
    no_put = s3.create_role(external_id=config.external_id, actions=("s3:GetObject",))
    config = configure(world_a.tenant, role_arn=no_put)
    failed = delivery.export_run(tenant_id=world_a.tenant.pk)
    assert failed.status == "failed"
    assert "does not allow s3:PutObject" in failed.error
    assert "AccessDenied" in failed.error
    state = ExportState.objects.get(tenant_id=world_a.tenant.pk)
    assert watermark(world_a.tenant) is None
    assert "AccessDenied" in state.last_error
    assert state.lease_token == ""
    assert exported_ids(s3, config) == []
    # The one frozen batch waits; nothing new is frozen while it is undelivered.
    assert ExportBatch.objects.filter(tenant_id=world_a.tenant.pk).count() == 1
    delivery.export_run(tenant_id=world_a.tenant.pk)
    assert ExportBatch.objects.filter(tenant_id=world_a.tenant.pk).count() == 1

    good = s3.create_role(external_id=config.external_id, prefix=config.prefix)
    config = export_settings_update(config=config, role_arn=good)
    fixed = delivery.export_run(tenant_id=world_a.tenant.pk)
    assert fixed.status == "ok", fixed.error
    delivery.export_run(tenant_id=world_a.tenant.pk)
    assert sorted(exported_ids(s3, config)) == db_ids(world_a.tenant)
    state.refresh_from_db()
    assert state.last_error == ""
    assert state.last_success_at is not None
    assert verify(s3, config).ok


@pytest.mark.django_db
def test_a_run_holding_the_lease_makes_others_skip(s3, configure, world_a):
    configure(world_a.tenant)
    from django.utils import timezone

    token = delivery._claim(world_a.tenant.pk, timezone.now())
    assert token
    assert delivery.export_run(tenant_id=world_a.tenant.pk).status == "skipped"
    delivery._release(world_a.tenant.pk, token)
    assert delivery.export_run(tenant_id=world_a.tenant.pk).status == "ok"


@pytest.mark.django_db
def test_a_new_destination_gets_the_whole_history_and_a_chain_of_its_own(
    s3, configure, world_a, settings
):
    settings.AUDIT_EXPORT_MAX_ENTRIES_PER_OBJECT = 5
    tenant = world_a.tenant
    config = configure(tenant, prefix="first")
    first_role = config.role_arn
    first = SimpleNamespace(tenant_id=tenant.pk, prefix="first")
    add_entries(tenant, 8)
    for _ in range(2):
        assert delivery.export_run(tenant_id=tenant.pk).status == "ok"
    assert sorted(exported_ids(s3, first)) == db_ids(tenant)

    second_role = s3.create_role(external_id=config.external_id, prefix="second")
    config = export_settings_update(config=config, prefix="second", role_arn=second_role)
    add_entries(tenant, 3)
    for _ in range(2):
        assert delivery.export_run(tenant_id=tenant.pk).status == "ok"
    ids = exported_ids(s3, config)
    assert len(ids) == len(set(ids))
    assert sorted(ids) == db_ids(tenant)  # the whole history, not only what came after
    report = verify(s3, config)
    assert report.ok, report.problems
    assert report.manifests == 2
    seqs = ExportBatch.objects.filter(stream__prefix="second").values_list("seq", flat=True)
    assert sorted(seqs)[0] == 1
    # The first destination is left as it was: complete up to its last manifest.
    assert verify(s3, first).ok
    assert len(exported_ids(s3, first)) < len(ids)

    # Back to the first destination: its stream resumes where it stopped, nothing twice.
    config = export_settings_update(config=config, prefix="first", role_arn=first_role)
    for _ in range(2):
        assert delivery.export_run(tenant_id=tenant.pk).status == "ok"
    ids = exported_ids(s3, first)
    assert len(ids) == len(set(ids))
    assert sorted(ids) == db_ids(tenant)
    report = verify(s3, first)
    assert report.ok, report.problems
    assert report.manifests == 4


class Proxy:
    """A TCP proxy in front of the S3 server that can be switched off and on again."""

    def __init__(self, target: str) -> None:
        host, port = target.rsplit("//", 1)[1].split(":")
        self.target = (host, int(port))
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.conns: list[socket.socket] = []
        self.running = False
        self.start()

    def start(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", self.port), reuse_port=True)
        self.listener.settimeout(0.1)
        self.running = True
        threading.Thread(target=self._accept, daemon=True).start()

    def stop(self) -> None:
        self.running = False
        self.listener.close()
        for conn in self.conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()
        self.conns.clear()

    def _accept(self) -> None:
        listener = self.listener
        while self.running:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)


@pytest.mark.django_db
def test_s3_down_mid_run_loses_nothing_and_redelivers_once(
    s3, configure, world_a, settings, monkeypatch
):
    settings.AUDIT_EXPORT_MAX_ENTRIES_PER_OBJECT = 5
    proxy = Proxy(s3.endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
    config = configure(world_a.tenant)
    add_entries(world_a.tenant, 12)
    deliver = delivery._deliver_batch
    delivered = []

    def deliver_then_cut(dest, batch, body=None):
        deliver(dest, batch, body)
        delivered.append(batch.seq)
        proxy.stop()  # the network goes away after the first accepted object

    monkeypatch.setattr(delivery, "_deliver_batch", deliver_then_cut)
    try:
        failed = delivery.export_run(tenant_id=world_a.tenant.pk)
    finally:
        monkeypatch.setattr(delivery, "_deliver_batch", deliver)
    assert failed.status == "failed"
    assert "could not connect" in failed.error
    state = ExportState.objects.get(tenant_id=world_a.tenant.pk)
    assert watermark(world_a.tenant) is None
    assert "could not connect" in state.last_error
    assert delivered == [1]
    assert (
        list(
            ExportBatch.objects.filter(tenant_id=world_a.tenant.pk).values_list(
                "seq", "delivered_at"
            )
        )[1][1]
        is None
    )
    assert not ExportManifest.objects.filter(tenant_id=world_a.tenant.pk).exists()

    proxy.start()
    again = delivery.export_run(tenant_id=world_a.tenant.pk)
    assert again.status == "ok", again.error
    delivery.export_run(tenant_id=world_a.tenant.pk)
    ids = exported_ids(s3, config)
    assert sorted(ids) == db_ids(world_a.tenant)
    assert len(ids) == len(set(ids))
    assert verify(s3, config).ok
    proxy.stop()


@postgres_only
def test_two_exports_racing_for_one_tenant(transactional_db, s3, configure, world_a, monkeypatch):
    config = configure(world_a.tenant)
    deliver = delivery._deliver_batch

    def slow_deliver(*args, **kwargs):
        time.sleep(0.5)
        deliver(*args, **kwargs)

    monkeypatch.setattr(delivery, "_deliver_batch", slow_deliver)
    barrier = threading.Barrier(2)
    results = []

    def run():
        try:
            barrier.wait()
            results.append(delivery.export_run(tenant_id=world_a.tenant.pk).status)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["ok", "skipped"]
    monkeypatch.setattr(delivery, "_deliver_batch", deliver)
    delivery.export_run(tenant_id=world_a.tenant.pk)
    ids = exported_ids(s3, config)
    assert sorted(ids) == db_ids(world_a.tenant)
    assert verify(s3, config).ok


@postgres_only
def test_a_long_open_transaction_across_an_export_is_not_skipped(
    transactional_db, s3, configure, world_a, settings
):
    settings.AUDIT_EXPORT_SETTLE_SECONDS = 1
    config = configure(world_a.tenant)
    time.sleep(1.2)
    opened, release = threading.Event(), threading.Event()
    late = {}

    def long_transaction():
        try:
            with transaction.atomic():
                add_entries(world_a.tenant, 1)
                late["id"] = (
                    AuditLogEntry.objects.filter(tenant_id=world_a.tenant.pk).latest("id").id
                )
                opened.set()
                release.wait(30)
        finally:
            connection.close()

    thread = threading.Thread(target=long_transaction)
    thread.start()
    assert opened.wait(10)
    add_entries(world_a.tenant, 3)  # newer ids and times, committed before the late one
    time.sleep(1.2)
    first = delivery.export_run(tenant_id=world_a.tenant.pk)
    assert first.status == "ok", first.error
    newer = db_ids(world_a.tenant)[-3:]
    exported = exported_ids(s3, config)
    assert exported
    assert late["id"] not in exported
    assert not set(newer) & set(exported)  # held back to the open transaction's start

    release.set()
    thread.join()
    time.sleep(1.2)
    second = delivery.export_run(tenant_id=world_a.tenant.pk)
    assert second.status == "ok", second.error
    ids = exported_ids(s3, config)
    assert late["id"] in ids
    assert set(newer) <= set(ids)
    assert sorted(ids) == db_ids(world_a.tenant)
    assert verify(s3, config).ok


@postgres_only
def test_real_celery_worker_and_beat_deliver_everything_once(
    transactional_db, s3, configure, world_a, tmp_path
):
    broker = os.environ.get("EXPORT_TEST_BROKER_URL", "redis://127.0.0.1:6379/11")
    redis.Redis.from_url(broker).flushdb()
    config = configure(world_a.tenant)
    add_entries(world_a.tenant, 20)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "audit_project.settings.test",
        "DATABASE_URL": shared_database_url(),
        "CELERY_BROKER_URL": broker,
        "AUDIT_EXPORT_BEAT_SECONDS": "2",
        "PYTHONPATH": str(ROOT),
    }
    worker = subprocess.Popen(  # noqa: S603
        [
            str(Path(sys.executable).parent / "celery"),
            "-A",
            "audit_project",
            "worker",
            "-B",
            "--pool",
            "solo",
            "-l",
            "info",
            "-s",
            str(tmp_path / "beat-schedule"),
        ],
        cwd=ROOT,
        env=env,
        stdout=open(tmp_path / "celery.log", "w"),  # noqa: SIM115
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 90
        expected = db_ids(world_a.tenant)
        while time.monotonic() < deadline:
            if (
                sorted(exported_ids(s3, config)) == expected
                and ExportManifest.objects.filter(
                    tenant_id=world_a.tenant.pk, delivered_at__isnull=False
                ).count()
                >= 2
            ):
                break
            time.sleep(1)
        else:
            pytest.fail(
                "the worker did not export everything:\n"
                + (tmp_path / "celery.log").read_text()[-3000:]
            )
    finally:
        worker.terminate()
        worker.wait(30)
    ids = exported_ids(s3, config)
    assert sorted(ids) == expected
    assert verify(s3, config).ok
    assert "exports.tasks.export_all_tenants" in (tmp_path / "celery.log").read_text()
    assert django_settings.CELERY_BEAT_SCHEDULE
