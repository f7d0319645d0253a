"""Benchmark: what capture costs on PostgreSQL, and where the time goes.

(a) one credential update through its service (load, edit, save, commit), with capture vs
    with capture off (no receivers, ``Model.save`` without the audited wrapper): the added
    wall time per write, then a breakdown of it, from instrumented rounds;
(b) ``QuerySet.update()`` of 10,000 audited rows (one entry per row) vs a plain update, on
    rows just written and again after VACUUM; the statements that write entries, and the
    floor: the same 10,000 entries written alone.

Rounds of both variants are interleaved, so that the noise of a shared machine hits both
alike; the figures are medians. The load average is printed with them.

Run: .venv/bin/python bench/capture_overhead.py             # on an empty scratch database
     .venv/bin/python bench/capture_overhead.py --existing  # on DATABASE_URL as it is
DATABASE_URL names a PostgreSQL database. Without ``--existing`` the bench creates and drops
the scratch database ``test_<name>``. With it, it works in that database (e.g. 10M entries
from ``bench/seed_entries.py``), in its biggest tenant, and leaves its rows there: a team
with a credential (made once, reused), a team of 10,000 stories per run, and the entries of
every run (about 160,000).
"""

import argparse
import contextlib
import os
import statistics
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "audit_project.settings.test")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench")

import django

django.setup()

from django.db import DEFAULT_DB_ALIAS, connection, connections, models, transaction  # noqa: E402
from django.db.models import Count, signals  # noqa: E402
from django.test.runner import DiscoverRunner  # noqa: E402

from auditlog import signals as capture  # noqa: E402
from auditlog.models import AuditLogEntry  # noqa: E402
from tenants import services  # noqa: E402
from tenants.models import Credential, Story, Team, Tenant  # noqa: E402

SINGLE_ROUNDS = 1000
BREAKDOWN_ROUNDS = 400
CPU_BLOCK = 200  # CPU clocks tick every 10 ms: time blocks of writes
CPU_BLOCKS = 6
BULK_ROWS = 10_000
BULK_ROUNDS = 7
ENTRIES = AuditLogEntry._meta.db_table


@contextmanager
def capture_off(model: type[models.Model]) -> Iterator[None]:
    """The model as if it were not audited: no receivers, the plain ``Model.save``."""
    uid = f"auditlog.{model._meta.label}"
    signals.post_init.disconnect(sender=model, dispatch_uid=f"{uid}.init")
    signals.post_save.disconnect(sender=model, dispatch_uid=f"{uid}.save")
    model.save = models.Model.save
    try:
        yield
    finally:
        del model.save
        signals.post_init.connect(capture.take_snapshot, sender=model, dispatch_uid=f"{uid}.init")
        signals.post_save.connect(capture.record_save, sender=model, dispatch_uid=f"{uid}.save")


class Probe:
    """Seconds spent in named parts of one round: SQL by kind, COMMIT, the receivers."""

    def __init__(self) -> None:
        self.parts: dict[str, float] = defaultdict(float)
        self.counts: dict[str, int] = defaultdict(int)

    def statement(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.parts[_kind(sql)] += time.perf_counter() - started
            self.counts[_kind(sql)] += 1

    def timed(self, name: str, fn: Callable) -> Callable:
        def wrapper(*args, **kwargs):
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.parts[name] += time.perf_counter() - started

        return wrapper


def _kind(sql: str) -> str:
    if sql.startswith(("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO")):
        return "savepoint"
    if ENTRIES in sql:
        return "entries sql"
    return "other sql"


@contextmanager
def probed(probe: Probe, model: type[models.Model] | None = None) -> Iterator[None]:
    """Time statements and COMMIT; with ``model``, also its capture receivers."""
    uid = f"auditlog.{model._meta.label}" if model else ""
    receivers = [
        (signals.post_init, "init", capture.take_snapshot, "snapshot on load"),
        (signals.post_save, "save", capture.record_save, "record_save"),
    ]
    if model:
        for signal, suffix, receiver, name in receivers:
            signal.disconnect(sender=model, dispatch_uid=f"{uid}.{suffix}")
            wrapped = probe.timed(name, receiver)
            signal.connect(wrapped, sender=model, weak=False, dispatch_uid=f"{uid}.{suffix}")
    db = connections[DEFAULT_DB_ALIAS]
    db.commit = probe.timed("commit", db.commit)
    try:
        with db.execute_wrapper(probe.statement):
            yield
    finally:
        del db.commit  # the class's method again
        if model:
            for signal, suffix, receiver, _ in receivers:
                signal.disconnect(sender=model, dispatch_uid=f"{uid}.{suffix}")
                signal.connect(receiver, sender=model, dispatch_uid=f"{uid}.{suffix}")


def timed(fn: Callable[[int], None], i: int) -> float:
    started = time.perf_counter()
    fn(i)
    return time.perf_counter() - started


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.3f} ms"


def single_update(tenant: Tenant) -> None:
    team = bench_team(tenant, "Capture bench")
    cred = Credential.objects.filter(team=team).first() or services.credential_create(
        team=team, name="c", value="initial-secret"
    )

    def update(i: int) -> None:
        fresh = Credential.objects.get(pk=cred.pk)
        services.credential_update(credential=fresh, description=f"round {i}-{time.time()}")

    for i in range(50):  # warm up connections, caches, the Fernet key
        update(i)
    baseline, captured = [], []

    def without(i: int) -> float:
        with capture_off(Credential):
            return timed(update, i)

    baseline, captured = interleaved(without, lambda i: timed(update, i), SINGLE_ROUNDS)
    b, c = statistics.median(baseline), statistics.median(captured)
    paired = statistics.median(y - x for x, y in zip(baseline, captured, strict=True))
    print(f"(a) single credential update via service, {SINGLE_ROUNDS} rounds each")
    print(f"    without capture: median {ms(b)}  p95 {ms(p95(baseline))}")
    print(f"    with capture:    median {ms(c)}  p95 {ms(p95(captured))}")
    print(f"    added per write: {ms(c - b)}   ({c / b:.2f}x)   target <= 0.5 ms")
    print(f"    added per write, median of paired rounds: {ms(paired)}")
    single_breakdown(update)
    single_cpu(update)


def interleaved(a: Callable[[int], float], b: Callable[[int], float], rounds: int) -> tuple:
    """Both variants ``rounds`` times, alternating which goes first (ABBA), so that the
    drift and noise of a shared machine fall on both alike."""
    first, second = [], []
    for i in range(rounds):
        if i % 2:
            second.append(b(i))
            first.append(a(i))
        else:
            first.append(a(i))
            second.append(b(i))
    return first, second


def single_breakdown(update: Callable[[int], None]) -> None:
    """Instrumented rounds: where the added time goes (medians of per-round sums)."""
    base_parts, cap_parts = defaultdict(list), defaultdict(list)

    def without(i: int) -> float:
        probe = Probe()
        with capture_off(Credential), probed(probe):
            elapsed = timed(update, i)
        for name in ("commit", "savepoint", "other sql"):
            base_parts[name].append(probe.parts[name])
        return elapsed

    def with_capture(i: int) -> float:
        probe = Probe()
        with probed(probe, Credential):
            elapsed = timed(update, i)
        for name in ("commit", "savepoint", "other sql", "entries sql"):
            cap_parts[name].append(probe.parts[name])
        cap_parts["snapshot on load"].append(probe.parts["snapshot on load"])
        cap_parts["entry in python"].append(probe.parts["record_save"] - probe.parts["entries sql"])
        return elapsed

    base_total, cap_total = interleaved(without, with_capture, BREAKDOWN_ROUNDS)
    med = {name: statistics.median(values) for name, values in cap_parts.items()}
    base = {name: statistics.median(values) for name, values in base_parts.items()}
    added = statistics.median(cap_total) - statistics.median(base_total)
    rows = [
        ("INSERT of the entry (one round trip)", med["entries sql"]),
        ("COMMIT: deferred FK checks, more WAL", med["commit"] - base["commit"]),
        ("savepoints", med["savepoint"] - base["savepoint"]),
        ("entry in Python: diff, redaction, JSON", med["entry in python"]),
        ("snapshot on load (post_init)", med["snapshot on load"]),
        ("other statements (should be 0)", med["other sql"] - base["other sql"]),
    ]
    rest = added - sum(value for _, value in rows)
    print(f"    breakdown ({BREAKDOWN_ROUNDS} instrumented rounds; added {ms(added)}):")
    for name, value in [*rows, ("rest: signal dispatch, atomic block, noise", rest)]:
        print(f"      {name:44s} {value * 1000:7.3f} ms")


def single_cpu(update: Callable[[int], None]) -> None:
    """CPU per write, ours and our PostgreSQL backend's: what a shared machine's load does
    not change (wall time on a busy machine also holds waits for a core)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = Path(f"/proc/{cursor.fetchone()[0]}/stat")
    if not backend.exists():
        print("    CPU per write: n/a (PostgreSQL runs on another host)")
        return
    tick = os.sysconf("SC_CLK_TCK")

    def cpu() -> tuple[float, float]:
        fields = backend.read_text().rsplit(")", 1)[1].split()
        return time.process_time(), (int(fields[11]) + int(fields[12])) / tick

    def block(captured: bool) -> Callable[[int], tuple[float, float]]:
        def run(i: int) -> tuple[float, float]:
            with contextlib.nullcontext() if captured else capture_off(Credential):
                ours, theirs = cpu()
                for n in range(CPU_BLOCK):
                    update(i * CPU_BLOCK + n)
                ours_after, theirs_after = cpu()
            return (ours_after - ours) / CPU_BLOCK, (theirs_after - theirs) / CPU_BLOCK

        return run

    off, on = interleaved(block(False), block(True), CPU_BLOCKS)
    python = statistics.median(c[0] for c in on) - statistics.median(c[0] for c in off)
    postgres = statistics.median(c[1] for c in on) - statistics.median(c[1] for c in off)
    print(
        f"    CPU added per write ({CPU_BLOCKS} blocks of {CPU_BLOCK} each): "
        f"Python {python * 1e6:.0f} us, PostgreSQL backend {postgres * 1e6:.0f} us "
        f"(without capture: {statistics.median(c[0] for c in off) * 1e6:.0f} us and "
        f"{statistics.median(c[1] for c in off) * 1e6:.0f} us)"
    )


def bulk_update(tenant: Tenant) -> None:
    """Both states of the updated table: rows just written (as the issue's figure was taken),
    then the same rows after VACUUM, where a plain update can be HOT and costs least."""
    team = services.team_create(tenant=tenant, name=f"Bulk bench {uuid.uuid4().hex[:8]}")
    Story.objects.bulk_create(
        [Story(tenant=tenant, team=team, name=f"story {i}") for i in range(BULK_ROWS)],
        batch_size=2000,
    )
    rows = Story.objects.filter(team=team)
    print(f"(b) QuerySet.update() of {BULK_ROWS:,} stories, {BULK_ROUNDS} rounds each")
    bulk_rounds(rows, "rows just written")
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM ANALYZE {Story._meta.db_table}")
    bulk_rounds(rows, "after VACUUM")


def bulk_rounds(rows: models.QuerySet, state: str) -> None:
    def plain(i: int) -> None:
        with transaction.atomic():
            models.QuerySet.update(rows, description=f"plain {state} {i}")

    def audited(i: int) -> None:
        with transaction.atomic():
            rows.update(description=f"audited {state} {i}")

    plain_parts, audited_parts = defaultdict(list), defaultdict(list)

    def probed_round(fn: Callable[[int], None], parts: dict) -> Callable[[int], float]:
        def round_(i: int) -> float:
            probe = Probe()
            with probed(probe):
                elapsed = timed(fn, i)
            for name in ("entries sql", "other sql", "commit"):
                parts[name].append(probe.parts[name])
            parts["entry statements"].append(probe.counts["entries sql"])
            return elapsed

        return round_

    before = AuditLogEntry.objects.order_by("-id").values_list("id", flat=True).first() or 0
    baseline, captured = interleaved(
        probed_round(plain, plain_parts), probed_round(audited, audited_parts), BULK_ROUNDS
    )
    recorded = AuditLogEntry.objects.filter(id__gt=before).count()
    b, c = statistics.median(baseline), statistics.median(captured)
    median = {name: statistics.median(v) for name, v in audited_parts.items()}
    plain_median = {name: statistics.median(v) for name, v in plain_parts.items()}
    print(f"    {state}:")
    print(f"      plain update:   median {b * 1000:.1f} ms")
    print(f"      audited update: median {c * 1000:.1f} ms")
    print(f"      ratio (median): {c / b:.2f}x   target <= 4x")
    print(
        f"      entries recorded: {recorded:,} ({recorded / BULK_ROUNDS:,.0f} per update); "
        f"statements writing entries: {median['entry statements']:.0f} per update"
    )
    lines = [
        ("the statement writing entries", median["entries sql"]),
        ("other statements", median["other sql"]),
        ("COMMIT (the entries' deferred FK checks)", median["commit"]),
        ("plain update: its UPDATE", plain_median["other sql"]),
        ("plain update: its COMMIT", plain_median["commit"]),
    ]
    for name, value in lines:
        print(f"        {name:42s} {value * 1000:7.1f} ms")
    audited(BULK_ROUNDS)  # one more, so that the newest entries are one update's
    floor = entries_alone(AuditLogEntry.objects.order_by("-id").values_list("id", flat=True)[0])
    print(
        f"      floor: the same {BULK_ROWS:,} entries written alone (INSERT ... SELECT, FK "
        f"checks included) {floor * 1000:.1f} ms = {floor / b:.2f}x the plain update, so "
        f"update + entries alone >= {(b + floor) / b:.2f}x"
    )


def entries_alone(last: int) -> float:
    """Time writing the newest update's entries again, by INSERT ... SELECT (rolled back)."""
    fields = [f for f in AuditLogEntry._meta.concrete_fields if not f.primary_key]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    times = []
    for _ in range(3):
        with transaction.atomic():
            started = time.perf_counter()
            with connection.cursor() as cursor:
                cursor.execute(
                    f"INSERT INTO {ENTRIES} ({columns}) SELECT {columns} FROM {ENTRIES} "
                    "WHERE id > %s - %s AND id <= %s",
                    [last, BULK_ROWS, last],
                )
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            times.append(time.perf_counter() - started)
            transaction.set_rollback(True)
    return statistics.median(times)


def bench_team(tenant: Tenant, name: str) -> Team:
    """The bench's team, made once: runs on a kept database reuse its rows."""
    return Team.objects.filter(tenant=tenant, name=name).first() or services.team_create(
        tenant=tenant, name=name
    )


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1]


def biggest_tenant() -> Tenant:
    """The tenant with the most entries (seed_entries.py's "Big"), or a new one."""
    big = Tenant.objects.filter(name="Big").first()
    if big is None:
        top = (
            AuditLogEntry.objects.values("tenant_id").annotate(n=Count("id")).order_by("-n").first()
        )
        big = Tenant.objects.get(pk=top["tenant_id"]) if top else None
    return big or services.tenant_create(name=f"Bench {uuid.uuid4().hex[:8]}")


def run(tenant: Tenant) -> None:
    entries = AuditLogEntry.objects.count()
    held = AuditLogEntry.objects.filter(tenant=tenant).count()
    print(f"database: {connection.vendor} {connection.settings_dict['NAME']}")
    print(f"entries: {entries:,} in all, {held:,} in the bench's tenant")
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    single_update(tenant)
    bulk_update(tenant)
    print(f"load average at end:   {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--existing", action="store_true", help="use DATABASE_URL as it is (no scratch database)"
    )
    args = parser.parse_args()
    if args.existing:
        run(biggest_tenant())
        return
    runner = DiscoverRunner(verbosity=0, interactive=False)
    old = runner.setup_databases()
    try:
        run(services.tenant_create(name="Bench"))
    finally:
        runner.teardown_databases(old)


if __name__ == "__main__":
    main()
