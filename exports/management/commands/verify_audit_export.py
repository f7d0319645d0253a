"""``verify_audit_export --bucket B --prefix P --tenant ID``: check an exported bucket.

Run with read access to the bucket (the customer's credentials, standard AWS chain).
Exit status 1 when anything is wrong; each problem is printed on its own line.
"""

from typing import Any

import boto3
from django.core.management.base import BaseCommand, CommandError

from exports import manifests
from exports.verification import verify_export


class Command(BaseCommand):
    help = "Verify the signed manifest chain and every object of a tenant's audit log export."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--bucket", required=True)
        parser.add_argument("--prefix", default="")
        parser.add_argument("--tenant", type=int, required=True)
        parser.add_argument(
            "--public-key",
            help="base64 Ed25519 public key (default: this installation's signing key's)",
        )
        parser.add_argument("--region", default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        client = boto3.session.Session().client("s3", region_name=options["region"])
        report = verify_export(
            client=client,
            bucket=options["bucket"],
            prefix=options["prefix"],
            tenant_id=options["tenant"],
            public_key=options["public_key"] or manifests.public_key_b64(),
        )
        for problem in report.problems:
            self.stdout.write(f"PROBLEM: {problem}")
        self.stdout.write(
            f"{report.manifests} manifests, {report.batches} objects, {report.entries} entries"
            f" verified; last cutoff {report.last_cutoff}"
        )
        if not report.ok:
            raise CommandError(f"{len(report.problems)} problem(s) found")
        self.stdout.write("OK: the chain is intact and every object matches its manifest")
