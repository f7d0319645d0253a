"""Benchmark: the admin console's audit log changelist at scale, with and without a search.

For the big tenant of a database seeded by ``bench/seed_entries.py``, it signs in an owner
(created once, ``owner@big.test``) and times ``GET /admin/auditlog/auditlogentry/`` over
``--rounds`` requests (in-process test client, p50/p95), for no search and for searches
people type: a whole email, an email's start, a rare target-name prefix, an exact request
id, a term that matches nothing, and a search combined with a time range. For each it then
runs ``EXPLAIN (ANALYZE, BUFFERS)`` on every audit-log query the request made and prints
the plan's scans, so that a full scan of the table would show as ``Seq Scan``.

Run after seeding, against the same DATABASE_URL:
    .venv/bin/python bench/admin_search.py [--rounds 20]
"""

import argparse
import json
import os
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "audit_project.settings.test")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench_list")

import django
from django.conf import settings

django.setup()

from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402

from auditlog.models import AuditLogEntry  # noqa: E402
from tenants import services  # noqa: E402
from tenants.models import Tenant, User  # noqa: E402

STATE_FILE = Path(__file__).resolve().parent / f".{settings.DATABASES['default']['NAME']}.json"
URL = "/admin/auditlog/auditlogentry/"
TABLE = AuditLogEntry._meta.db_table
BUDGET_S = 15.0


def owner_of(tenant: Tenant) -> User:
    owner = User.objects.filter(email="owner@big.test").first()
    return owner or services.user_invite(
        tenant=tenant, email="owner@big.test", name="Bench Owner", role=User.Role.OWNER
    )


def cases(tenant_id: int) -> list[tuple[str, dict[str, str]]]:
    newest = AuditLogEntry.objects.filter(tenant_id=tenant_id).order_by("-created_at", "-id")
    sample = newest.values("user_email", "request_id", "target_repr")[500]
    return [
        ("no search", {}),
        ("no search, page 50", {"p": "50"}),
        ("a whole email", {"q": sample["user_email"]}),
        ("an email's start ('user1')", {"q": "user1"}),
        ("a target name's start, rare ('target 123')", {"q": "target 123"}),
        ("a whole target name", {"q": sample["target_repr"]}),
        ("an exact request id", {"q": sample["request_id"]}),
        ("nothing matches ('nobody')", {"q": "nobody"}),
        ("an email, last 7 days", {"q": sample["user_email"], "range": "7d"}),
    ]


def measure(client: Client, params: dict, rounds: int) -> tuple[list[float], int]:
    times: list[float] = []
    rows = 0
    for _ in range(rounds):
        started = time.perf_counter()
        response = client.get(URL, params)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.status_code
        rows = len(
            set(re.findall(rb"/admin/auditlog/auditlogentry/(\d+)/change/", response.content))
        )
        if sum(times) > BUDGET_S * 1000 and len(times) >= 3:
            break
    return times, rows


def plans(client: Client, params: dict) -> list[str]:
    """The scans of each audit-log query one request runs, from EXPLAIN ANALYZE run just
    before the query itself, in the same session (so under the settings it runs with)."""
    found: list[str] = []

    def explain(execute, sql, params, many, context):
        if TABLE in sql and sql.lstrip().upper().startswith("SELECT"):
            cursor = context["cursor"]
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", params)
            lines = [row[0] for row in cursor.fetchall()]
            scans = [
                re.sub(r"\s+\(cost=.*?\)\s*", " ", line.strip().removeprefix("->  "))
                for line in lines
                if "Scan" in line or "Limit" in line[:12]
            ]
            total = next(line for line in lines if line.startswith("Execution Time"))
            kind = "count" if "COUNT(" in sql.upper() else "rows"
            found.append(f"      {kind}: {total}; " + " | ".join(scans[:4]))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(explain):
        client.get(URL, params)
    return found


def row(label: str, times: list[float], rows: int) -> str:
    p50 = statistics.median(times)
    p95 = statistics.quantiles(times, n=20)[-1] if len(times) >= 2 else times[0]
    return f"  {label:<44} p50 {p50:8.1f} ms  p95 {p95:8.1f} ms  n={len(times):<3} rows={rows}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    state = json.loads(STATE_FILE.read_text())
    tenant = Tenant.objects.get(pk=state["tenant_id"])
    settings.ALLOWED_HOSTS = ["testserver"]
    client = Client()
    client.force_login(owner_of(tenant))
    total = AuditLogEntry.objects.filter(tenant_id=tenant.pk).count()
    print(f"admin changelist, big tenant {tenant.pk}: {total:,} entries; rounds={args.rounds}")
    client.get(URL)  # warm up
    for label, params in cases(tenant.pk):
        times, rows = measure(client, params, args.rounds)
        print(row(label, times, rows))
        for line in plans(client, params):
            print(line)
            if "Seq Scan" in line:
                print("      ^ a sequential scan of the entry table")


if __name__ == "__main__":
    main()
