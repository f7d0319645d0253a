"""Benchmark: server time of ``GET /api/v1/audit_logs`` for the big tenant of a seeded database.

For the first page and for a page 100,000 entries deep (via ``cursor``, with the naive
``page=`` OFFSET equivalent beside it), with no filter and with each filter, it prints
p50/p95 over ``--rounds`` requests (in-process Django test client, API key auth, everything
from URL resolution to the rendered JSON; no network). Target: p95 <= 30 ms.

Then the Settings -> Audit logs tab (target p95 <= 100 ms) for each time range the chart
can be asked to draw, with its activity chart and without it (the same page with the chart
switched off in this process), and the chart's one aggregate query alone.

Run after ``bench/seed_entries.py`` against the same DATABASE_URL:
    .venv/bin/python bench/list_latency.py [--rounds 50] [--depth 100000]
"""

import argparse
import json
import os
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

from datetime import timedelta  # noqa: E402
from zoneinfo import ZoneInfo  # noqa: E402

from django.test import Client  # noqa: E402
from django.utils import timezone  # noqa: E402

from auditlog import views  # noqa: E402
from auditlog.activity import activity  # noqa: E402
from auditlog.filters import AuditLogEntryFilterSet  # noqa: E402
from auditlog.models import AuditLogEntry  # noqa: E402
from auditlog.pagination import encode_cursor  # noqa: E402
from tenants.models import ApiKey  # noqa: E402

STATE_FILE = Path(__file__).resolve().parent / f".{settings.DATABASES['default']['NAME']}.json"
PER_PAGE = 20
SLOW_CASE_BUDGET_S = 15.0  # a case that is this slow in total stops early (fewer rounds)


def filters_for(tenant_id: int, depth: int) -> list[tuple[str, dict[str, str]]]:
    """One realistic value per filter, read from the big tenant's own newest entries."""
    newest = AuditLogEntry.objects.filter(tenant_id=tenant_id).order_by("-created_at", "-id")
    # Seeded entries (each has a user), not ones another bench wrote since.
    sample = newest.filter(user_id__isnull=False).values(
        "operation_name", "user_id", "target_type", "target_id", "request_ip", "request_id"
    )[500]
    # ``after`` keeps the newest ``2 * depth`` entries, ``before`` all the older ones.
    split = newest.values_list("created_at", flat=True)[2 * depth]
    return [
        ("none", {}),
        ("operation_name", {"operation_name": sample["operation_name"]}),
        ("user_id", {"user_id": str(sample["user_id"])}),
        ("before", {"before": split.isoformat()}),
        ("after", {"after": split.isoformat()}),
        ("target_type", {"target_type": sample["target_type"]}),
        ("target_id", {"target_id": sample["target_id"]}),
        ("request_ip", {"request_ip": sample["request_ip"]}),
        ("request_id", {"request_id": sample["request_id"]}),
    ]


def measure(
    client: Client, headers: dict, params: dict, rounds: int, url: str = "/api/v1/audit_logs"
) -> tuple[list[float], int]:
    times: list[float] = []
    spent = 0.0
    count = 0
    measure.cut_off = 0
    for _ in range(rounds):
        started = time.perf_counter()
        response = client.get(url, params, headers=headers)
        elapsed = time.perf_counter() - started
        assert response.status_code == 200, response.content[:300]
        if url.startswith("/api/"):
            count = len(response.json()["audit_logs"])
        else:
            count = response.content.count(b"<tr") - 1  # rows of the table, less the header
            measure.cut_off += b"too many entries to chart" in response.content
        times.append(elapsed * 1000)
        spent += elapsed
        if spent > SLOW_CASE_BUDGET_S and len(times) >= 3:
            break
    return times, count


def row(label: str, times: list[float], count: int, target_ms: float = 30) -> str:
    p50 = statistics.median(times)
    p95 = statistics.quantiles(times, n=20)[-1] if len(times) >= 2 else times[0]
    flag = "" if p95 <= target_ms else f"  > {target_ms:g} ms"
    return (
        f"  {label:<44} p50 {p50:8.1f} ms  p95 {p95:8.1f} ms  n={len(times):<3} rows={count}{flag}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--depth", type=int, default=100_000)
    parser.add_argument("--only", choices=["api", "tab"], help="run one half of the benchmark")
    parser.add_argument(
        "--conn-max-age",
        type=int,
        default=60,
        help="seconds a connection is kept, as production's CONN_MAX_AGE (0: one per request)",
    )
    args = parser.parse_args()
    # Production keeps connections (CONN_MAX_AGE=60): a new backend per request pays for
    # loading the catalog of every partition and index into its cache (tens of ms).
    settings.DATABASES["default"]["CONN_MAX_AGE"] = args.conn_max_age
    state = json.loads(STATE_FILE.read_text())
    tenant_id = state["tenant_id"]
    settings.AUDIT_LOG_API_RATE = "100000000/min"
    settings.ALLOWED_HOSTS = ["testserver"]
    client = Client()
    headers = {"Authorization": f"Bearer {state['reader_key']}"}
    client.get("/api/v1/audit_logs", headers=headers)  # records the key's use once; warms up
    total = AuditLogEntry.objects.filter(tenant_id=tenant_id).count()
    print(
        f"big tenant {tenant_id}: {total:,} entries; per_page={PER_PAGE}; rounds={args.rounds};"
        f" CONN_MAX_AGE={args.conn_max_age}; load {os.getloadavg()[0]:.1f}"
    )

    for name, params in filters_for(tenant_id, args.depth) if args.only != "tab" else []:
        print(f"filter: {name} {params or ''}")
        base = {**params, "per_page": str(PER_PAGE)}
        times, count = measure(client, headers, base, args.rounds)
        print(row("first page", times, count))

        matching = AuditLogEntry.objects.filter(tenant_id=tenant_id)
        if "operation_name" in params:
            matching = matching.filter(operation_name=params["operation_name"])
        if "user_id" in params:
            matching = matching.filter(user_id=int(params["user_id"]))
        if "before" in params:
            matching = matching.filter(created_at__lt=params["before"])
        if "after" in params:
            matching = matching.filter(created_at__gt=params["after"])
        for field in ("target_type", "target_id", "request_ip", "request_id"):
            if field in params:
                matching = matching.filter(**{field: params[field]})
        matching = matching.order_by("-created_at", "-id")
        edge = list(matching.values("created_at", "id")[args.depth - 1 : args.depth])
        if not edge:
            print(f"  (fewer than {args.depth:,} matching entries: no deep page)")
            continue
        cursor = encode_cursor(edge[0]["created_at"], edge[0]["id"])
        times, count = measure(client, headers, {**base, "cursor": cursor}, args.rounds)
        print(row(f"{args.depth:,} deep via cursor", times, count))
        page = args.depth // PER_PAGE + 1
        times, count = measure(client, headers, {**base, "page": str(page)}, args.rounds)
        print(row(f"{args.depth:,} deep via page={page} (OFFSET)", times, count))

    if args.only == "api":
        return
    # The Settings -> Audit logs tab, signed in as the same reader (target: p95 <= 100 ms).
    reader = ApiKey.objects.get(key_hash=ApiKey.hash_key(state["reader_key"])).user
    client.force_login(reader)
    client.cookies["tz"] = "Europe/Paris"
    tab = "/settings/audit-logs/"
    deep = AuditLogEntry.objects.filter(tenant_id=tenant_id).order_by("-created_at", "-id")
    edge = deep.values("created_at", "id")[args.depth - 1]
    year_ago = (timezone.now() - timedelta(days=365)).isoformat()
    deep_cursor = encode_cursor(edge["created_at"], edge["id"])
    cases = [
        ("no filter (chart: last 7 days)", {}),
        ("range=24h", {"range": "24h"}),
        ("range=7d", {"range": "7d"}),
        ("range=30d", {"range": "30d"}),
        ("after=a year ago", {"after": year_ago}),
        (f"{args.depth:,} deep via cursor", {"cursor": deep_cursor}),
    ]
    print("Settings -> Audit logs tab (HTML, 50 rows a page, Europe/Paris)")
    charted = views.activity
    for label, params in cases:
        times, count = measure(client, {}, params, args.rounds, url=tab)
        print(row(f"{label}, with chart", times, count, target_ms=100))
        if measure.cut_off:
            print(
                f"    (no chart in {measure.cut_off} of {len(times)}: estimated above"
                f" {settings.AUDIT_LOG_CHART_MAX_ENTRIES:,} entries or cut off at"
                f" {settings.AUDIT_LOG_CHART_TIMEOUT_MS} ms)"
            )
        views.activity = lambda *a, **k: None
        try:
            times, count = measure(client, {}, params, args.rounds, url=tab)
        finally:
            views.activity = charted
        print(row(f"{label}, without chart", times, count, target_ms=100))

    print("the chart's aggregate query alone (no time limit, no estimate gate)")
    settings.AUDIT_LOG_CHART_TIMEOUT_MS = 0
    settings.AUDIT_LOG_CHART_MAX_ENTRIES = 2**62
    zone = ZoneInfo("Europe/Paris")
    for label, params in cases[:5]:
        filterset = AuditLogEntryFilterSet(
            params, queryset=AuditLogEntry.objects.filter(tenant_id=tenant_id), naive_zone=zone
        )
        assert filterset.is_valid(), filterset.errors
        times = []
        for _ in range(args.rounds):
            started = time.perf_counter()
            chart = activity(
                filterset.qs, filterset.form.cleaned_data, zone, timezone.now(), lambda a, b: ""
            )
            times.append((time.perf_counter() - started) * 1000)
            if sum(times) > SLOW_CASE_BUDGET_S * 1000 and len(times) >= 3:
                break
        print(row(f"{label} ({chart.unit}s, {len(chart.bars)} bars)", times, chart.total, 100))


if __name__ == "__main__":
    main()
