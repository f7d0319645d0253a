"""Seed a scratch PostgreSQL database with many audit log entries, for ``list_latency.py``.

Default: 10,000,000 entries over 100 tenants, one of which (the first, "Big") holds
2,000,000; two years of history, one entry every ~6 s overall. Rows are made by
``generate_series`` on the server (not the ORM), in chunks, with the entry table's
indexes built after the load.

Run:  .venv/bin/python bench/seed_entries.py [--total N] [--big N] [--tenants N]
      .venv/bin/python bench/seed_entries.py --unpartitioned  # the table before auditlog 0005
      .venv/bin/python bench/seed_entries.py --drop      # remove the scratch database
On the partitioned table the seeded months' partitions are created first (as
``audit_log_partitions --from`` would), so no entry lands in DEFAULT.
DATABASE_URL names the scratch database (default postgres://postgres@127.0.0.1:5432/bench_list);
it is created (and migrated) when missing, and refused if it already holds entries.
"""

import argparse
import json
import os
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "audit_project.settings.test")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench_list")

import django
import psycopg
from django.conf import settings

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402

from auditlog import partitions  # noqa: E402
from auditlog.models import AuditLogEntry  # noqa: E402
from auditlog.operations import OPERATIONS  # noqa: E402
from tenants import services  # noqa: E402
from tenants.models import AUDIT_LOG_READ, User  # noqa: E402

CHUNK = 1_000_000
# Which tenant is big and a reader's key, for list_latency.py (one file per database).
STATE_FILE = Path(__file__).resolve().parent / f".{settings.DATABASES['default']['NAME']}.json"
SECONDS_PER_ENTRY = 6  # 10M entries x 6 s ~ two years


def admin_connection() -> psycopg.Connection:
    db = settings.DATABASES["default"]
    return psycopg.connect(
        host=db["HOST"] or "127.0.0.1",
        port=db["PORT"] or 5432,
        user=db["USER"],
        password=db["PASSWORD"] or None,
        dbname="postgres",
        autocommit=True,
    )


def create_database() -> None:
    name = settings.DATABASES["default"]["NAME"]
    with admin_connection() as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            admin.execute(f'CREATE DATABASE "{name}"')
            print(f"created database {name}")


def drop_database() -> None:
    name = settings.DATABASES["default"]["NAME"]
    connection.close()
    with admin_connection() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    STATE_FILE.unlink(missing_ok=True)
    print(f"dropped database {name}")


def seed(total: int, big: int, tenant_count: int) -> None:
    table = AuditLogEntry._meta.db_table
    with transaction.atomic():
        tenants = [services.tenant_create(name="Big")] + [
            services.tenant_create(name=f"Tenant {n}") for n in range(2, tenant_count + 1)
        ]
        big_tenant = tenants[0]
        reader = services.user_invite(
            tenant=big_tenant,
            email="reader@big.test",
            name="Bench Reader",
            permissions=[AUDIT_LOG_READ],
            password="bench-password-not-secret",
        )
        people = [reader] + [
            services.user_invite(
                tenant=big_tenant,
                email=f"user{n}@big.test",
                name=f"User {n}",
                role=User.Role.MEMBER,
            )
            for n in range(7)
        ]
        _, key = services.api_key_create(user=reader, name="bench")
    others = [t.pk for t in tenants[1:]]
    user_ids = [p.pk for p in people]
    ops = list(OPERATIONS.values())[:24]
    # Every ``big_every``-th entry is the big tenant's; the rest round-robin over the others.
    big_every = max(1, round(total / big))
    op_names = "ARRAY[" + ",".join(f"'{op.name}'" for op in ops) + "]"
    op_targets = "ARRAY[" + ",".join(f"'{op.target_type}'" for op in ops) + "]"
    users = "ARRAY[" + ",".join(str(u) for u in user_ids) + "]"
    tenant_ids = "ARRAY[" + ",".join(str(t) for t in others) + "]"
    columns = (
        "tenant_id, created_at, operation_name, user_id, user_email, user_name, actor_type, "
        "api_key_id, api_key_name, request_ip, request_user_agent, request_id, target_type, "
        "target_id, target_repr, story_id, inputs, outputs, changes"
    )
    started = time.monotonic()
    if partitions.is_partitioned(connection):
        with connection.cursor() as cursor:
            cursor.execute("SELECT now()")
            (now,) = cursor.fetchone()
        oldest = now - timedelta(seconds=total * SECONDS_PER_ENTRY + 1)
        made = partitions.create_months(oldest, now, using="default")
        print(f"  created {len(made)} monthly partitions")
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")  # no FK checks during the load
        cursor.execute(
            f"SELECT indexname, indexdef FROM pg_indexes WHERE tablename = '{table}' "
            f"AND indexname <> '{table}_pkey'"
        )
        # A partitioned table's index is listed ``ON ONLY`` the parent: rebuilt that way it
        # would be an invalid index with none on the partitions. Built plainly, it cascades.
        indexes = [(name, sql.replace(" ON ONLY ", " ON ")) for name, sql in cursor.fetchall()]
        for name, _ in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
        for low in range(1, total + 1, CHUNK):
            high = min(total, low + CHUNK - 1)
            cursor.execute(
                f"""
                INSERT INTO {table} ({columns})
                SELECT
                    CASE WHEN i % {big_every} = 0 THEN {big_tenant.pk}
                         ELSE ({tenant_ids})[1 + i % {len(others)}] END,
                    now() - make_interval(secs => ({total} - i) * {SECONDS_PER_ENTRY}.0
                                                   + (i % 7) / 1000.0),
                    ({op_names})[1 + i % {len(ops)}],
                    CASE WHEN i % {big_every} = 0
                         THEN ({users})[1 + (i / {big_every}) % {len(user_ids)}] END,
                    'user' || (i % 50) || '@example.test',
                    'User ' || (i % 50),
                    'user', NULL, '',
                    ('10.' || (i % 200) || '.' || (i / 200 % 250) || '.' || (i % 7 + 1))::inet,
                    'Mozilla/5.0 (bench)',
                    md5(i::text),
                    ({op_targets})[1 + i % {len(ops)}],
                    (i % 5000)::text,
                    'target ' || (i % 5000),
                    CASE WHEN i % 3 = 0 THEN i % 1000 END,
                    jsonb_build_object('inputs', jsonb_build_object('n', i)),
                    '{{}}'::jsonb,
                    '{{}}'::jsonb
                FROM generate_series({low}, {high}) AS i
                """
            )
            print(f"  inserted {high:>11,} rows  ({time.monotonic() - started:.0f} s)", flush=True)
        cursor.execute("SET maintenance_work_mem = '1GB'")
        for name, definition in indexes:
            cursor.execute(definition)
            print(f"  built {name}  ({time.monotonic() - started:.0f} s)", flush=True)
        cursor.execute("SET session_replication_role = DEFAULT")
        cursor.execute(f"VACUUM ANALYZE {table}")
    STATE_FILE.write_text(json.dumps({"tenant_id": big_tenant.pk, "reader_key": key}))
    elapsed = time.monotonic() - started
    print(f"seeded {total:,} entries over {tenant_count} tenants in {elapsed:.0f} s")
    print(
        f"big tenant {big_tenant.pk}: {AuditLogEntry.objects.filter(tenant=big_tenant).count():,}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--total", type=int, default=10_000_000)
    parser.add_argument("--big", type=int, default=2_000_000)
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--drop", action="store_true", help="drop the scratch database")
    parser.add_argument(
        "--unpartitioned",
        action="store_true",
        help="seed the table as it was before partitioning (for bench/convert_partitions.py)",
    )
    args = parser.parse_args()
    if args.drop:
        drop_database()
        return
    create_database()
    call_command("migrate", verbosity=0)
    if args.unpartitioned:
        call_command("migrate", "auditlog", "0006", verbosity=0)
    if AuditLogEntry.objects.exists():
        sys.exit("the database already holds entries: run with --drop first")
    seed(args.total, args.big, args.tenants)


if __name__ == "__main__":
    main()
