"""``run_audit_export [--tenant ID]``: the beat task's code path, once, synchronously."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from auditlog.context import ACTOR_TASK, audit_context
from exports import selectors
from exports.delivery import export_run


class Command(BaseCommand):
    help = "Export new audit log entries to the tenants' S3 buckets now (all enabled tenants)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--tenant", type=int, help="only this tenant id")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant_ids = [options["tenant"]] if options["tenant"] else selectors.enabled_tenant_ids()
        failed = False
        with audit_context(actor_type=ACTOR_TASK):
            for tenant_id in tenant_ids:
                result = export_run(tenant_id=tenant_id)
                line = (
                    f"tenant {tenant_id}: {result.status}, {result.entries} entries in "
                    f"{result.batches} objects"
                )
                if result.error:
                    line += f" — {result.error}"
                    failed = True
                self.stdout.write(line)
        if failed:
            raise CommandError("some exports failed (see above); they will be retried")
