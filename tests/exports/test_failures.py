"""S3 failing at PutObject: throttling, 5xx, wrong region, timeouts, a worker killed mid-upload.

Each must leave the watermark where it was, say what went wrong in words, and deliver every
entry exactly once after the destination works again.
"""

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from botocore.config import Config
from django.conf import settings as django_settings
from django.utils import timezone

from exports import aws
from exports.delivery import export_run
from exports.models import ExportBatch, ExportManifest, ExportState
from exports.settings import export_settings_update

from ..servers import shared_database_url
from .faults import FaultProxy
from .helpers import add_entries, db_ids, exported_ids, verify, watermark

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def proxy(s3, monkeypatch):
    """The fault proxy in front of the S3 server; the exporter talks to it."""
    proxy = FaultProxy(s3.endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
    # Seconds, not a minute: the timeout case waits for it (twice, with the one retry).
    monkeypatch.setattr(
        aws,
        "BOTO_CONFIG",
        Config(connect_timeout=2, read_timeout=1, retries={"max_attempts": 1, "mode": "standard"}),
    )
    yield proxy
    proxy.close()


def _assert_held_back(tenant, words):
    state = ExportState.objects.get(tenant_id=tenant.pk)
    assert watermark(tenant) is None  # the watermark did not move
    assert words in state.last_error
    assert state.lease_token == ""
    assert state.last_success_at is None
    assert not ExportManifest.objects.filter(tenant_id=tenant.pk, delivered_at__isnull=False)
    return state


def _assert_all_delivered_once(s3, config, tenant):
    for _ in range(2):  # the second run picks up the entries the runs themselves wrote
        result = export_run(tenant_id=tenant.pk)
        assert result.status == "ok", result.error
    ids = exported_ids(s3, config)
    assert len(ids) == len(set(ids))
    assert sorted(ids) == db_ids(tenant)
    report = verify(s3, config)
    assert report.ok, report.problems
    state = ExportState.objects.get(tenant_id=tenant.pk)
    assert state.last_error == ""
    assert watermark(tenant) is not None


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fault", "words"),
    [
        ("slowdown", "S3 is throttling requests (SlowDown); the export will retry"),
        ("internal", "S3 had an internal error; the export will retry"),
        ("timeout", "AWS did not answer in time; the export will retry"),
    ],
)
def test_put_object_failure_after_one_object_keeps_the_watermark_then_delivers_once(
    proxy, s3, configure, world_a, settings, fault, words
):
    settings.AUDIT_EXPORT_MAX_ENTRIES_PER_OBJECT = 5
    config = configure(world_a.tenant)
    add_entries(world_a.tenant, 12)
    proxy.after, proxy.fault = proxy.puts + 1, fault  # the first object gets through
    failed = export_run(tenant_id=world_a.tenant.pk)
    assert failed.status == "failed"
    assert words in failed.error
    assert "while writing to the bucket" in failed.error
    assert "AWS error" in failed.error
    assert proxy.faulted >= 2  # botocore retried (with backoff), then gave up
    _assert_held_back(world_a.tenant, words)
    batches = list(ExportBatch.objects.filter(tenant_id=world_a.tenant.pk))
    assert [b.delivered_at is not None for b in batches] == [True, False]
    assert len(exported_ids(s3, config)) == 5

    # Still failing: the same undelivered batch is retried, nothing new is frozen.
    again = export_run(tenant_id=world_a.tenant.pk)
    assert again.status == "failed"
    assert ExportBatch.objects.filter(tenant_id=world_a.tenant.pk).count() == 2

    proxy.fault = None
    proxy.release.set()
    _assert_all_delivered_once(s3, config, world_a.tenant)


@pytest.mark.django_db
def test_wrong_region_keeps_the_watermark_names_the_problem_then_delivers_once(
    proxy, s3, configure, world_a, settings
):
    """The bucket answers PermanentRedirect and botocore cannot learn the right region
    (a PutObject-only role may not HeadBucket): the configured region is wrong."""
    settings.AUDIT_EXPORT_MAX_ENTRIES_PER_OBJECT = 5
    config = configure(world_a.tenant)
    add_entries(world_a.tenant, 7)
    config = export_settings_update(config=config, region="eu-west-1")
    proxy.fault = "wrong_region"
    failed = export_run(tenant_id=world_a.tenant.pk)
    assert failed.status == "failed"
    words = "the bucket is in another region than the one configured"
    assert words in failed.error
    assert "PermanentRedirect" in failed.error
    _assert_held_back(world_a.tenant, words)
    assert exported_ids(s3, config) == []

    proxy.fault = None
    config = export_settings_update(config=config, region=s3.region)
    _assert_all_delivered_once(s3, config, world_a.tenant)


postgres_only = pytest.mark.skipif(
    "postgresql" not in django_settings.DATABASES["default"]["ENGINE"],
    reason="a second process shares the test database: PostgreSQL only",
)


@postgres_only
def test_worker_killed_mid_upload_loses_nothing_and_duplicates_nothing(
    transactional_db, proxy, s3, configure, world_a, settings, tmp_path
):
    """``run_audit_export`` is SIGKILLed while S3 holds the acknowledgement of an object it
    has already stored; the next run (once the dead run's lease expired) resends it, S3
    answers 412 (already there), and everything is delivered exactly once."""
    config = configure(world_a.tenant)
    add_entries(world_a.tenant, 12)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "audit_project.settings.test",
        "DATABASE_URL": shared_database_url(),
        "AUDIT_EXPORT_MAX_ENTRIES_PER_OBJECT": "5",
        "AWS_ENDPOINT_URL": proxy.endpoint,
        "PYTHONPATH": str(ROOT),
    }
    proxy.after, proxy.fault = proxy.puts + 1, "ack_lost"  # the second object hangs
    worker = subprocess.Popen(  # noqa: S603
        [sys.executable, "manage.py", "run_audit_export", "--tenant", str(world_a.tenant.pk)],
        cwd=ROOT,
        env=env,
        stdout=open(tmp_path / "export.log", "w"),  # noqa: SIM115
        stderr=subprocess.STDOUT,
    )
    try:
        assert proxy.in_flight.wait(60), (tmp_path / "export.log").read_text()
        worker.send_signal(signal.SIGKILL)
        assert worker.wait(10) == -signal.SIGKILL
    finally:
        if worker.poll() is None:
            worker.kill()
    proxy.fault = None
    proxy.release.set()

    state = ExportState.objects.get(tenant_id=world_a.tenant.pk)
    assert watermark(world_a.tenant) is None
    assert state.lease_token  # the dead run still holds the lease ...
    batches = list(ExportBatch.objects.filter(tenant_id=world_a.tenant.pk))
    assert [b.delivered_at is not None for b in batches] == [True, False]
    # ... the object itself reached the bucket; only the answer was lost.
    assert len(exported_ids(s3, config)) == 10
    assert export_run(tenant_id=world_a.tenant.pk).status == "skipped"

    ExportState.objects.filter(pk=state.pk).update(lease_until=timezone.now() - timedelta(1))
    started = time.monotonic()
    _assert_all_delivered_once(s3, config, world_a.tenant)
    assert time.monotonic() - started < 30
