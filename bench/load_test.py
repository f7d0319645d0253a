"""Load test: the Procfile's web process (gunicorn, production settings) on PostgreSQL + Redis.

``--clients`` concurrent clients (default 50) for ``--duration`` seconds (default 120), each
a tenant owner with its own API key and signed-in session, in a closed loop (the next
request leaves when the last answer arrived, no think time):

- 70% ``GET /api/v1/audit_logs``: no filter, by operation, by user, ``after`` a recent time
  (a SIEM collector's poll), by target type, or the previous answer's ``next_cursor``;
- 20% domain writes through the API: create a credential, create a story, rename a story;
- 10% Settings pages: the Audit logs tab (with and without a filter), an entry's detail,
  the export settings page.

It prints throughput, p50/p95/p99 per kind, errors by status, and checks that every write
that succeeded left exactly one entry of its operation (by request id, naming the object it
created) and that every refused write left none.

Why a small threaded script rather than locust: it needs nothing beyond the standard
library, so it is as light as a load generator can be on a machine it shares with the
server; the clients spend their time waiting on sockets, so threads are enough; and the
same script has to prepare the database, start gunicorn and count the entries afterwards,
which a locust file would do around locust anyway.

The scratch database (``DATABASE_URL``, default postgres://postgres@127.0.0.1:5432/bench_load;
its name must start with "bench") is dropped, created, migrated and seeded on each run:
seed_demo's two tenants, ``--prefill`` older entries per tenant, one owner per client.
``REDIS_URL`` (default redis://127.0.0.1:6379/0) is the server's cache and broker.
With ``DATABASE_REPLICA_URL`` set, the server gets it too (for the read-replica router) and
the run reports how the transactions split between the primary and the replica.

    .venv/bin/python bench/load_test.py                         # 50 clients, 2 minutes
    .venv/bin/python bench/load_test.py --clients 5 --duration 10   # a smoke run
"""

import argparse
import contextlib
import http.client
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "audit_project.settings.test")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench_load")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")

import django
import psycopg
from django.conf import settings

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test import Client  # noqa: E402
from seed_entries import create_database, drop_database  # noqa: E402

from auditlog.context import ACTOR_SYSTEM, audit_context  # noqa: E402
from auditlog.models import AuditLogEntry  # noqa: E402
from auditlog.services import entry_row, record_rows  # noqa: E402
from tenants import services  # noqa: E402
from tenants.models import Team, Tenant, User  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
KINDS = ("list", "write", "settings")
WEIGHTS = (70, 20, 10)
WRITE_OPERATIONS = {
    "credential_create": "CredentialSave",
    "story_create": "StoryCreation",
    "story_rename": "StoryNameChange",
}
REQUEST_TIMEOUT = 30


@dataclass
class Identity:
    """What one client acts as."""

    user_id: int
    tenant_id: int
    team_id: int
    key: str
    session: str


@dataclass
class Results:
    """Every client's measurements, merged under a lock."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: Counter = field(default_factory=Counter)
    writes: list[tuple[str, str, int | None, int]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


# --- preparing the database -------------------------------------------------------------------


def prepare(clients: int, prefill: int) -> list[Identity]:
    """A fresh scratch database: migrated, seeded, one owner (key + session) per client."""
    name = settings.DATABASES["default"]["NAME"]
    if not name.startswith("bench"):
        sys.exit(f"refusing to drop {name!r}: the scratch database's name must start with bench")
    drop_database()
    create_database()
    call_command("migrate", verbosity=0)
    with open(os.devnull, "w") as quiet:
        call_command("seed_demo", stdout=quiet, stderr=quiet)
    tenants = list(Tenant.objects.order_by("pk"))
    now = datetime.now(UTC)
    with audit_context(actor_type=ACTOR_SYSTEM), transaction.atomic():
        for tenant in tenants:
            rows = []
            for i in range(prefill):
                row = entry_row(
                    operation_name="TenantConfigChange",
                    tenant_id=tenant.pk,
                    target_id=tenant.pk,
                    target_repr=tenant.name,
                    changes={"name": [f"v{i}", f"v{i + 1}"]},
                )
                row["created_at"] = now - timedelta(seconds=6 * (prefill - i))
                rows.append(row)
            record_rows(rows)
    identities = []
    browser = Client()
    with audit_context(actor_type=ACTOR_SYSTEM):
        for n in range(clients):
            tenant = tenants[n % len(tenants)]
            user = services.user_invite(
                tenant=tenant,
                email=f"load{n}@bench.test",
                name=f"Load client {n}",
                role=User.Role.OWNER,
            )
            _, key = services.api_key_create(user=user, name="load test")
            browser.force_login(user)
            identities.append(
                Identity(
                    user_id=user.pk,
                    tenant_id=tenant.pk,
                    team_id=Team.objects.filter(tenant=tenant).order_by("pk").first().pk,
                    key=key,
                    session=browser.cookies[settings.SESSION_COOKIE_NAME].value,
                )
            )
            browser.logout()
    print(
        f"prepared {name}: {len(tenants)} tenants, "
        f"{AuditLogEntry.objects.count():,} entries, {clients} client identities"
    )
    connection.close()  # the server is about to get the database
    return identities


# --- the server -------------------------------------------------------------------------------


def server_env(static_root: str, port: int, web_concurrency: int) -> dict:
    """Production settings; the secrets are the bench process's own (sessions must verify)."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "audit_project.settings.production",
        "SECRET_KEY": settings.SECRET_KEY,
        "ALLOWED_HOSTS": "127.0.0.1",
        "CREDENTIAL_ENCRYPTION_KEY": settings.CREDENTIAL_ENCRYPTION_KEY,
        "AUDIT_EXPORT_SIGNING_KEY": settings.AUDIT_EXPORT_SIGNING_KEY,
        "AUDIT_EXPORT_AWS_ACCOUNT_ID": settings.AUDIT_EXPORT_AWS_ACCOUNT_ID,
        "DATABASE_URL": os.environ["DATABASE_URL"],
        "REDIS_URL": os.environ["REDIS_URL"],
        "STATIC_ROOT": static_root,
        "SECURE_SSL_REDIRECT": "false",
        "PORT": str(port),
        "WEB_CONCURRENCY": str(web_concurrency),
        "PYTHONPATH": str(ROOT),
    }


def start_server(env: dict, log_path: Path) -> subprocess.Popen:
    """collectstatic, then gunicorn as the Procfile runs it; returns once /readyz is 200."""
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
    )
    log = open(log_path, "wb")  # noqa: SIM115
    process = subprocess.Popen(  # noqa: S603
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "--config",
            "gunicorn.conf.py",
            "audit_project.wsgi",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"gunicorn exited; see {log_path}")
        try:
            if call(int(env["PORT"]), "GET", "/readyz")[0] == 200:
                return process
        except OSError:
            pass
        time.sleep(0.5)
    process.terminate()
    sys.exit(f"gunicorn never became ready; see {log_path}")


def call(
    port: int, method: str, path: str, headers: dict | None = None, body: dict | None = None
) -> tuple[int, bytes]:
    """One request on a fresh connection (sync workers close after each answer anyway)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT)
    try:
        data = json.dumps(body).encode() if body is not None else None
        headers = {**(headers or {}), **({"Content-Type": "application/json"} if data else {})}
        conn.request(method, path, body=data, headers=headers)
        answer = conn.getresponse()
        return answer.status, answer.read()
    finally:
        conn.close()


# --- the clients ------------------------------------------------------------------------------


class LoadClient:
    """One closed-loop client: picks a kind by weight, sends it, records the outcome."""

    def __init__(self, port: int, me: Identity, results: Results, seed: int) -> None:
        self.port, self.me, self.results = port, me, results
        self.random = random.Random(seed)
        self.cursor: tuple[dict, str] | None = None  # (filters, next_cursor) of the last list
        self.stories: list[int] = []
        self.recent_entry: int | None = None

    def run(self, until: float) -> None:
        while time.monotonic() < until:
            kind = self.random.choices(KINDS, WEIGHTS)[0]
            started = time.perf_counter()
            try:
                status = getattr(self, kind)()
            except OSError as exc:
                status = type(exc).__name__
            elapsed_ms = (time.perf_counter() - started) * 1000
            with self.results.lock:
                self.results.latencies[kind].append(elapsed_ms)
                if not isinstance(status, int) or status >= 400:
                    self.results.errors[(kind, status)] += 1

    def api(self, method: str, path: str, **kwargs) -> tuple[int, bytes]:
        headers = {"Authorization": f"Bearer {self.me.key}", **kwargs.pop("headers", {})}
        return call(self.port, method, path, headers=headers, **kwargs)

    def list(self) -> int:
        if self.cursor and self.random.random() < 0.3:
            filters, cursor = self.cursor
            params = {**filters, "cursor": cursor}
        else:
            filters = self.random.choice(
                [
                    {},
                    {"operation_name": "CredentialSave"},
                    {"user_id": str(self.me.user_id)},
                    {"after": (datetime.now(UTC) - timedelta(minutes=5)).isoformat()},
                    {"target_type": "credential"},
                ]
            )
            params = filters
        status, body = self.api("GET", f"/api/v1/audit_logs?{urlencode(params)}")
        if status == 200:
            answer = json.loads(body)
            next_cursor = answer["meta"].get("next_cursor")
            self.cursor = (filters, next_cursor) if next_cursor else None
            if answer["audit_logs"]:
                self.recent_entry = answer["audit_logs"][0]["id"]
        return status

    def write(self) -> int:
        what = self.random.choices(list(WRITE_OPERATIONS), (50, 30, 20))[0]
        if what == "story_rename" and not self.stories:
            what = "story_create"
        request_id = f"load-{uuid.uuid4().hex}"
        headers = {"X-Request-ID": request_id}
        tag = uuid.uuid4().hex[:10]
        if what == "credential_create":
            body = {"team": self.me.team_id, "name": f"load {tag}", "value": "load-test-value"}
            status, answer = self.api("POST", "/api/v1/credentials/", headers=headers, body=body)
        elif what == "story_create":
            body = {"team": self.me.team_id, "name": f"load story {tag}"}
            status, answer = self.api("POST", "/api/v1/stories/", headers=headers, body=body)
        else:
            story = self.random.choice(self.stories)
            status, answer = self.api(
                "PATCH", f"/api/v1/stories/{story}/", headers=headers, body={"name": f"r {tag}"}
            )
        object_id = json.loads(answer)["id"] if status in (200, 201) else None
        if what == "story_create" and object_id:
            self.stories.append(object_id)
        with self.results.lock:
            self.results.writes.append((request_id, what, object_id, status))
        return status

    def settings(self) -> int:
        pages = ["/settings/audit-logs/", "/settings/audit-logs/?operation_name=CredentialSave"]
        pages.append("/settings/audit-logs/export/")
        if self.recent_entry:
            pages.append(f"/settings/audit-logs/{self.recent_entry}/")
        cookie = f"{settings.SESSION_COOKIE_NAME}={self.me.session}"
        return call(self.port, "GET", self.random.choice(pages), headers={"Cookie": cookie})[0]


# --- checking and reporting -------------------------------------------------------------------


def check_entries(writes: list[tuple[str, str, int | None, int]]) -> list[str]:
    """Problems: a successful write without exactly one entry of its operation, naming its
    object; a refused write with any entry at all."""
    by_request = defaultdict(list)
    # The X-Request-ID sent is kept as the entry's client_request_id (the server picks its own).
    for request_id, operation, target_id in AuditLogEntry.objects.filter(
        client_request_id__in=[w[0] for w in writes]
    ).values_list("client_request_id", "operation_name", "target_id"):
        if operation != "AuthenticationTokenUse":
            by_request[request_id].append((operation, target_id))
    problems = []
    for request_id, what, object_id, status in writes:
        found = by_request.get(request_id, [])
        expected = [(WRITE_OPERATIONS[what], str(object_id))] if object_id else []
        if found != expected:
            problems.append(f"{what} {request_id} (HTTP {status}): expected {expected}, {found}")
    return problems


def database_backends(url: str) -> list[int]:
    """Process ids of the other sessions on the database (the web workers' connections)."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
        ).fetchall()
    return [pid for (pid,) in rows]


def transactions(url: str) -> int:
    """Committed + rolled-back transactions of the database ``url`` names, so far."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database"
            " WHERE datname = current_database()"
        ).fetchone()
    return row[0]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (gunicorn's workers), from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time the processes have used so far."""
    ticks = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def report(results: Results, run: dict, args: argparse.Namespace) -> bool:
    total = sum(len(v) for v in results.latencies.values())
    errors = sum(results.errors.values())
    elapsed = run["elapsed"]
    print()
    print(
        f"{args.clients} clients, {elapsed:.0f} s, gunicorn {args.web_concurrency} sync workers;"
        f" {os.cpu_count()} cores shared by server, PostgreSQL, Redis, the clients and anything"
        f" else running (load average {run['load_before']:.1f} before, {os.getloadavg()[0]:.1f}"
        " after)"
    )
    print(f"requests: {total:,}  throughput: {total / elapsed:.1f} req/s  errors: {errors}")
    print(
        f"CPU during the load: web workers {run['cpu_web']:.0f} s"
        f" ({run['cpu_web'] / elapsed:.2f} cores, {run['cpu_web'] / max(total, 1) * 1000:.1f} ms"
        f" per request), their PostgreSQL backends {run['cpu_database']:.0f} s, load generator"
        f" {run['cpu_clients']:.0f} s"
    )
    print(f"{'kind':<10}{'requests':>10}{'share':>8}{'p50 ms':>10}{'p95 ms':>10}{'p99 ms':>10}")
    for kind in KINDS:
        values = results.latencies.get(kind, [])
        if values:
            print(
                f"{kind:<10}{len(values):>10,}{len(values) / total:>8.0%}"
                f"{percentile(values, 50):>10.1f}{percentile(values, 95):>10.1f}"
                f"{percentile(values, 99):>10.1f}"
            )
    for (kind, status), count in sorted(results.errors.items(), key=str):
        print(f"  error: {kind} -> {status}: {count}")
    problems = check_entries(results.writes)
    succeeded = sum(1 for w in results.writes if w[2])
    print(
        f"entry check: {succeeded:,} successful writes, {len(results.writes) - succeeded} refused;"
        f" {'every one has exactly its entry' if not problems else f'{len(problems)} PROBLEMS'}"
    )
    for problem in problems[:10]:
        print(f"  {problem}")
    if split := run["split"]:
        primary, replica = split["primary"], split["replica"]
        share = replica / (primary + replica) if primary + replica else 0
        print(
            f"transactions: primary {primary:,}, replica {replica:,} ({share:.0%} on the replica)"
        )
    else:
        print("replica: not configured (set DATABASE_REPLICA_URL to measure the split)")
    return errors == 0 and not problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--duration", type=float, default=120, help="seconds of load")
    parser.add_argument("--prefill", type=int, default=20_000, help="older entries per tenant")
    parser.add_argument(
        "--web-concurrency", type=int, default=2 * (os.cpu_count() or 1) + 1, help="workers"
    )
    args = parser.parse_args()

    identities = prepare(args.clients, args.prefill)
    replica_url = os.environ.get("DATABASE_REPLICA_URL")
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="bench-load-") as scratch:
        log_path = Path(scratch) / "gunicorn.log"
        env = server_env(str(Path(scratch) / "static"), port, args.web_concurrency)
        env["CONN_MAX_AGE"] = str(int(args.duration) + 120)
        server = start_server(env, log_path)
        try:
            before = {"primary": transactions(os.environ["DATABASE_URL"])}
            if replica_url:
                before["replica"] = transactions(replica_url)
            results = Results()
            workers = children(server.pid)
            run = {"load_before": os.getloadavg()[0], "split": {}}
            cpu_web, cpu_clients = cpu_seconds(workers), time.process_time()
            started = time.monotonic()
            until = started + args.duration
            threads = [
                threading.Thread(target=LoadClient(port, me, results, seed=n).run, args=(until,))
                for n, me in enumerate(identities)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            run["elapsed"] = time.monotonic() - started
            run["cpu_web"] = cpu_seconds(workers) - cpu_web
            run["cpu_clients"] = time.process_time() - cpu_clients
            # The workers' connections live through the whole run (CONN_MAX_AGE, below) and
            # were opened just before it: their CPU time so far is the load's.
            run["cpu_database"] = cpu_seconds(database_backends(os.environ["DATABASE_URL"]))
            time.sleep(1.5)  # PostgreSQL publishes its counters at most once a second
            if replica_url:
                run["split"] = {
                    "primary": transactions(os.environ["DATABASE_URL"]) - before["primary"],
                    "replica": transactions(replica_url) - before["replica"],
                }
        finally:
            server.terminate()
            server.wait(30)
        ok = report(results, run, args)
        if not ok:
            print(f"\ngunicorn log (last lines):\n{log_path.read_text()[-2000:]}")
    sys.exit(0 if ok else 1)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


if __name__ == "__main__":
    main()
