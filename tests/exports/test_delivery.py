"""Failure and concurrency: S3 down mid-run, racing runs, a long-open transaction, Celery."""

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import redis
from django.conf import settings as django_settings
from django.db import connection, transaction

from auditlog.models import AuditLogEntry
from exports import services
from exports.models import ExportBatch, ExportManifest, ExportState

from ..servers import shared_database_url
from .helpers import add_entries, db_ids, exported_ids, verify, watermark

ROOT = Path(__file__).resolve().parents[2]


# Concurrent connections (threads, a worker process) to one test database: PostgreSQL only;
# SQLite's test database is in memory, private to this process.
postgres_only = pytest.mark.skipif(
    "postgresql" not in django_settings.DATABASES["default"]["ENGINE"],
    reason="needs concurrent connections to one database: PostgreSQL only",
)


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
    deliver = services._deliver_batch
    delivered = []

    def deliver_then_cut(dest, batch, body=None):
        deliver(dest, batch, body)
        delivered.append(batch.seq)
        proxy.stop()  # the network goes away after the first accepted object

    monkeypatch.setattr(services, "_deliver_batch", deliver_then_cut)
    try:
        failed = services.export_run(tenant_id=world_a.tenant.pk)
    finally:
        monkeypatch.setattr(services, "_deliver_batch", deliver)
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
    again = services.export_run(tenant_id=world_a.tenant.pk)
    assert again.status == "ok", again.error
    services.export_run(tenant_id=world_a.tenant.pk)
    ids = exported_ids(s3, config)
    assert sorted(ids) == db_ids(world_a.tenant)
    assert len(ids) == len(set(ids))
    assert verify(s3, config).ok
    proxy.stop()


@postgres_only
def test_two_exports_racing_for_one_tenant(transactional_db, s3, configure, world_a, monkeypatch):
    config = configure(world_a.tenant)
    deliver = services._deliver_batch

    def slow_deliver(*args, **kwargs):
        time.sleep(0.5)
        deliver(*args, **kwargs)

    monkeypatch.setattr(services, "_deliver_batch", slow_deliver)
    barrier = threading.Barrier(2)
    results = []

    def run():
        try:
            barrier.wait()
            results.append(services.export_run(tenant_id=world_a.tenant.pk).status)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["ok", "skipped"]
    monkeypatch.setattr(services, "_deliver_batch", deliver)
    services.export_run(tenant_id=world_a.tenant.pk)
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
    first = services.export_run(tenant_id=world_a.tenant.pk)
    assert first.status == "ok", first.error
    newer = db_ids(world_a.tenant)[-3:]
    exported = exported_ids(s3, config)
    assert exported
    assert late["id"] not in exported
    assert not set(newer) & set(exported)  # held back to the open transaction's start

    release.set()
    thread.join()
    time.sleep(1.2)
    second = services.export_run(tenant_id=world_a.tenant.pk)
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
