"""Benchmark: the migration that partitions a populated entries table (auditlog 0007).

Run on a database seeded with the table as it was before partitioning:
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_storage \
        .venv/bin/python bench/seed_entries.py --unpartitioned
    DATABASE_URL=... .venv/bin/python bench/convert_partitions.py

It times ``migrate auditlog 0007`` while two probes run on their own connections: a reader
(the newest page of the big tenant, over and over) and a writer (one entry per attempt). It
prints the migration's time, how long the longest read and the longest write waited, and
checks the row count and the highest id before and after.
"""

import os
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "audit_project.settings.test")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench_list")

import django

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection, connections, transaction  # noqa: E402

from auditlog import partitions  # noqa: E402
from auditlog.models import AuditLogEntry  # noqa: E402
from auditlog.services import record  # noqa: E402


def probe(kind: str, stop: threading.Event, waits: list[float], tenant_id: int) -> None:
    """Read or write in a loop; ``waits`` gets the duration of each attempt."""
    try:
        while not stop.is_set():
            started = time.monotonic()
            if kind == "read":
                list(AuditLogEntry.objects.filter(tenant_id=tenant_id).order_by("-created_at")[:20])
            else:
                with transaction.atomic():
                    record(operation_name="TenantConfigChange", tenant_id=tenant_id)
            waits.append(time.monotonic() - started)
            time.sleep(0.05)
    finally:
        connections.close_all()


def main() -> None:
    if partitions.is_partitioned(connection):
        sys.exit("already partitioned: seed with bench/seed_entries.py --unpartitioned first")
    with connection.cursor() as cursor:
        # The probes write as the last tenant, not the big one list_latency.py reads.
        cursor.execute("SELECT count(*), max(id), max(tenant_id) FROM auditlog_auditlogentry")
        count, highest, tenant_id = cursor.fetchone()
    print(f"{count:,} entries, highest id {highest:,}; load: {os.getloadavg()[0]:.1f}")
    stop = threading.Event()
    waits: dict[str, list[float]] = {"read": [], "write": []}
    threads = [
        threading.Thread(target=probe, args=(kind, stop, waits[kind], tenant_id)) for kind in waits
    ]
    for thread in threads:
        thread.start()
    time.sleep(1)
    started = time.monotonic()
    call_command("migrate", "auditlog", "0007", verbosity=0)
    elapsed = time.monotonic() - started
    time.sleep(1)
    stop.set()
    for thread in threads:
        thread.join()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*), max(id) FROM auditlog_auditlogentry")
        after, after_highest = cursor.fetchone()
        cursor.execute(f"SELECT count(*) FROM {partitions.DEFAULT}")
        in_default = cursor.fetchone()[0]
    written = len(waits["write"])
    print(f"migrate auditlog 0007: {elapsed:.1f} s; load: {os.getloadavg()[0]:.1f}")
    print(f"rows: {count:,} before, {after:,} after (= before + {written} written by the probe)")
    print(f"highest id: {highest:,} before, {after_highest:,} after; in DEFAULT: {in_default}")
    for kind, times in waits.items():
        if times:
            print(f"longest {kind}: {max(times) * 1000:,.0f} ms over {len(times)} {kind}s")


if __name__ == "__main__":
    main()
