"""Benchmark: dropping the oldest month of a seeded, partitioned log while writers capture.

Run after ``bench/seed_entries.py`` (partitioned) against the same DATABASE_URL:
    .venv/bin/python bench/prune_latency.py [--writers 4]

Sets the retention window so that exactly the oldest monthly partition lies outside it,
starts ``--writers`` threads that each record one entry per transaction as fast as they can
(their own connections, as web processes would), runs ``retention.prune()`` as the daily
task does, and prints the prune's time, how many entries went, and the writers' longest and
99th-percentile wait. Target: no writer fails, the longest wait <= 1 s. Each run drops a
month of the scratch database for good.
"""

import argparse
import os
import statistics
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "audit_project.settings.test")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench_list")

import django
from django.conf import settings

django.setup()

from django.db import connection, connections, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from auditlog import partitions, retention  # noqa: E402
from auditlog.services import record  # noqa: E402


def writer(stop: threading.Event, waits: list[float], errors: list[str], tenant_id: int) -> None:
    try:
        while not stop.is_set():
            started = time.monotonic()
            with transaction.atomic():
                record(operation_name="TenantConfigChange", tenant_id=tenant_id)
            waits.append(time.monotonic() - started)
    except Exception as exc:  # a failed capture is the benchmark's failure
        errors.append(f"{type(exc).__name__}: {exc}")
    finally:
        connections.close_all()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--writers", type=int, default=4)
    args = parser.parse_args()
    with connection.cursor() as cursor:
        months = partitions.monthly_partitions(cursor)
        oldest = months[0]
        # The writers write as the last tenant, not the big one list_latency.py reads.
        cursor.execute(f"SELECT count(*), max(tenant_id) FROM {oldest.name}")
        rows, tenant_id = cursor.fetchone()
    # Only the oldest month lies entirely outside the window.
    settings.AUDIT_LOG_RETENTION_DAYS = (timezone.now() - oldest.end).days
    print(
        f"{len(months)} monthly partitions; dropping {oldest.name} ({rows:,} entries);"
        f" {args.writers} writers; load {os.getloadavg()[0]:.1f}"
    )
    stop = threading.Event()
    waits: list[float] = []
    errors: list[str] = []
    threads = [
        threading.Thread(target=writer, args=(stop, waits, errors, tenant_id or 1))
        for _ in range(args.writers)
    ]
    for thread in threads:
        thread.start()
    time.sleep(2)
    before = len(waits)
    started = time.monotonic()
    candidates = retention.prune()
    elapsed = time.monotonic() - started
    during = waits[before:]
    time.sleep(2)
    stop.set()
    for thread in threads:
        thread.join()
    dropped = [c for c in candidates if c.removed]
    removed = sum(sum(c.removed.values()) for c in dropped)
    print(f"prune: {elapsed * 1000:,.0f} ms; dropped {[c.partition.name for c in dropped]}")
    print(f"entries removed: {removed:,}; load {os.getloadavg()[0]:.1f}")
    print(
        f"writers: {len(waits):,} writes, {len(errors)} failed; during the prune {len(during)}:"
        f" longest {max(during or [0]) * 1000:,.0f} ms,"
        f" p99 {statistics.quantiles(during, n=100)[98] * 1000 if len(during) > 1 else 0:,.0f} ms;"
        f" overall longest {max(waits or [0]) * 1000:,.0f} ms,"
        f" median {statistics.median(waits or [0]) * 1000:,.1f} ms"
    )
    for error in errors[:5]:
        print(f"  error: {error}")
    if timedelta(seconds=max(during or [0])) > timedelta(seconds=1) or errors:
        print("  > target (no failure, longest wait <= 1 s)")


if __name__ == "__main__":
    main()
