"""Benchmark: what capture costs on PostgreSQL.

(a) one credential update through its service, with capture vs with capture disconnected;
(b) ``QuerySet.update()`` of 10,000 audited rows with capture vs a plain update, and how
many INSERT statements capture issues for the batch.

Run: .venv/bin/python bench/capture_overhead.py  (DATABASE_URL: a PostgreSQL server's URL)
It creates and drops a scratch database (``test_<name>``) and prints its figures.
"""

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "audit_project.settings.test")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench")

import django

django.setup()

from django.db import connection, models, transaction  # noqa: E402
from django.db.models import signals  # noqa: E402
from django.test.runner import DiscoverRunner  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from auditlog import signals as capture  # noqa: E402
from auditlog.models import AuditLogEntry  # noqa: E402
from tenants import services  # noqa: E402
from tenants.models import Credential, Story  # noqa: E402

SINGLE_ROUNDS = 400
BULK_ROWS = 10_000
BULK_ROUNDS = 5


class capture_off:
    """Disconnect the save receivers of one model for the block (the bench's baseline)."""

    def __init__(self, model: type[models.Model]) -> None:
        self.uid = f"auditlog.{model._meta.label}"
        self.model = model

    def __enter__(self) -> None:
        signals.post_save.disconnect(sender=self.model, dispatch_uid=f"{self.uid}.save")

    def __exit__(self, *exc: object) -> None:
        signals.post_save.connect(
            capture.record_save, sender=self.model, dispatch_uid=f"{self.uid}.save"
        )


def timed(fn, rounds: int) -> list[float]:
    out = []
    for i in range(rounds):
        start = time.perf_counter()
        fn(i)
        out.append(time.perf_counter() - start)
    return out


def single_update() -> None:
    tenant = services.tenant_create(name="Bench")
    team = services.team_create(tenant=tenant, name="Bench team")
    cred = services.credential_create(team=team, name="c", value="initial-secret")

    def update(i: int) -> None:
        fresh = Credential.objects.get(pk=cred.pk)
        services.credential_update(credential=fresh, description=f"round {i}-{time.time()}")

    for _ in range(50):  # warm up connections, caches, the Fernet key
        update(0)
    baseline, captured = [], []
    for _ in range(SINGLE_ROUNDS):  # interleaved, so that machine noise hits both alike
        with capture_off(Credential):
            baseline += timed(update, 1)
        captured += timed(update, 1)
    b, c = statistics.median(baseline), statistics.median(captured)
    print(f"(a) single credential update via service, {SINGLE_ROUNDS} rounds each")
    print(f"    without capture: median {b * 1000:.3f} ms  p95 {p95(baseline) * 1000:.3f} ms")
    print(f"    with capture:    median {c * 1000:.3f} ms  p95 {p95(captured) * 1000:.3f} ms")
    print(f"    ratio (median):  {c / b:.2f}x   target <= 1.3x")


def bulk_update() -> None:
    tenant = services.tenant_create(name="Bulk bench")
    team = services.team_create(tenant=tenant, name="Bulk team")
    Story.objects.bulk_create(
        [Story(tenant=tenant, team=team, name=f"story {i}") for i in range(BULK_ROWS)],
        batch_size=2000,
    )
    rows = Story.objects.filter(tenant=tenant)

    def plain(i: int) -> None:
        with transaction.atomic():
            models.QuerySet.update(rows, description=f"plain {i}")

    def audited(i: int) -> None:
        with transaction.atomic():
            rows.update(description=f"audited {i}")

    plain(-1)
    baseline = timed(plain, BULK_ROUNDS)
    before = AuditLogEntry.objects.count()
    with CaptureQueriesContext(connection) as ctx:
        captured = timed(audited, BULK_ROUNDS)
    writes = [q for q in ctx.captured_queries if "auditlog_auditlogentry" in q["sql"]]
    recorded = AuditLogEntry.objects.count() - before
    b, c = statistics.median(baseline), statistics.median(captured)
    print(f"(b) QuerySet.update() of {BULK_ROWS:,} stories, {BULK_ROUNDS} rounds each")
    print(f"    plain update:    median {b * 1000:.1f} ms")
    print(f"    audited update:  median {c * 1000:.1f} ms")
    print(f"    ratio (median):  {c / b:.2f}x   target <= 2x")
    print(
        f"    entries recorded: {recorded:,}; statements writing entries: "
        f"{len(writes) / BULK_ROUNDS:.0f} per update of {BULK_ROWS:,} rows"
    )


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1]


def main() -> None:
    runner = DiscoverRunner(verbosity=0, interactive=False)
    old = runner.setup_databases()
    try:
        print(f"database: {connection.vendor} {connection.settings_dict['NAME']}")
        single_update()
        bulk_update()
    finally:
        runner.teardown_databases(old)


if __name__ == "__main__":
    main()
