"""Export throughput: N entries of one tenant to the local moto S3 server, end to end.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/exports_bench \
        .venv/bin/python bench/export_throughput.py --entries 1000000

Seeds the entries in a child process (so its memory does not count), starts the moto
server (tests/s3server.py), configures a PutObject-only role, then runs the real export
(``exports.services.export_run``) once and prints entries/s and the peak RSS of this process.
Targets: >= 50,000 entries/s and < 200 MB peak, for 1,000,000 and 5,000,000 entries.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "audit_project.settings.test")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/exports_bench")
os.environ.setdefault("AUDIT_EXPORT_SETTLE_SECONDS", "0")


def setup_django() -> None:
    import django

    django.setup()


def ensure_database() -> None:
    import psycopg
    from django.conf import settings

    db = settings.DATABASES["default"]
    if "postgresql" not in db["ENGINE"]:
        return
    with psycopg.connect(
        host=db["HOST"] or "127.0.0.1", user=db["USER"], dbname="postgres", autocommit=True
    ) as conn:
        if not conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [db["NAME"]]
        ).fetchone():
            conn.execute(f'CREATE DATABASE "{db["NAME"]}"')


def seed(entries: int) -> None:
    """Child process: a fresh tenant with ``entries`` entries; prints its id."""
    setup_django()
    from django.core.management import call_command
    from django.db import transaction

    from auditlog.services import entry_row, record_rows, stamp
    from tenants import services

    call_command("migrate", verbosity=0)
    tenant = services.tenant_create(name=f"Bench {time.time():.0f}")
    shared = stamp()
    chunk = 20_000
    for start in range(0, entries, chunk):
        rows = [
            entry_row(
                operation_name="CredentialSave",
                tenant_id=tenant.pk,
                target_type="credential",
                target_id=i,
                target_repr=f"credential {i}",
                inputs={"inputs": {"name": f"credential {i}", "value": "REDACTED"}},
                changes={"name": [f"old {i}", f"credential {i}"]},
                shared=shared,
            )
            for i in range(start, min(start + chunk, entries))
        ]
        with transaction.atomic():
            record_rows(rows)
    print(tenant.pk)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--seed-only", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.seed_only is not None:
        seed(args.seed_only)
        return

    setup_django()
    ensure_database()
    started = time.monotonic()
    out = subprocess.run(  # noqa: S603
        [sys.executable, __file__, "--seed-only", str(args.entries)],
        check=True,
        capture_output=True,
        text=True,
    )
    tenant_id = int(out.stdout.strip().splitlines()[-1])
    print(f"seeded {args.entries:,} entries in {time.monotonic() - started:.1f}s")

    server = subprocess.Popen(  # noqa: S603
        [sys.executable, str(ROOT / "tests" / "s3server.py")],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        info = json.loads(server.stdout.readline())
        os.environ.update(
            AWS_ENDPOINT_URL=info["endpoint"],
            AWS_ACCESS_KEY_ID=info["exporter"]["AccessKeyId"],
            AWS_SECRET_ACCESS_KEY=info["exporter"]["SecretAccessKey"],
            AWS_DEFAULT_REGION=info["region"],
        )
        from tests.exports.conftest import S3Server

        s3 = S3Server(
            endpoint=info["endpoint"],
            bucket=info["bucket"],
            region=info["region"],
            account=info["account"],
            admin_keys=info["admin"],
            exporter_keys=info["exporter"],
            process=server,
        )
        from exports import services

        config = services.export_settings_ensure(tenant_id=tenant_id)
        services.export_settings_update(
            config=config,
            enabled=True,
            bucket=s3.bucket,
            region=s3.region,
            prefix="bench",
            role_arn=s3.create_role(external_id=config.external_id, prefix="bench"),
        )
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        started = time.monotonic()
        result = services.export_run(tenant_id=tenant_id)
        elapsed = time.monotonic() - started
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        assert result.status == "ok", result.error
        print(
            f"exported {result.entries:,} entries in {result.batches} objects in {elapsed:.1f}s:"
            f" {result.entries / elapsed:,.0f} entries/s; peak RSS {peak:.0f} MB"
            f" ({before:.0f} MB before the export)"
        )
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
