"""``prune_audit_log [--dry-run]``: drop whole months older than AUDIT_LOG_RETENTION_DAYS.

Says, for every month outside the window, whether it is dropped or which tenant holds it
back and since when (an entry not yet delivered to the tenant's enabled S3 export). See
``auditlog.retention``. Refuses on SQLite, where the log has no partitions.
"""

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from auditlog import retention
from auditlog.context import ACTOR_SYSTEM, audit_context


class Command(BaseCommand):
    help = (
        "Drop the audit log's monthly partitions that lie entirely outside the retention "
        "window (AUDIT_LOG_RETENTION_DAYS), except those holding undelivered entries."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="only say what would be dropped or kept"
        )

    def handle(self, *args: Any, dry_run: bool = False, **options: Any) -> None:
        try:
            with audit_context(actor_type=ACTOR_SYSTEM):
                candidates = retention.plan() if dry_run else retention.prune()
        except retention.RetentionError as exc:
            raise CommandError(str(exc)) from None
        window = retention.window_start()
        self.stdout.write(
            f"Retention: {settings.AUDIT_LOG_RETENTION_DAYS} days (entries before "
            f"{window.isoformat()} are outside the window)"
        )
        if not candidates:
            self.stdout.write("No month lies entirely outside the window: nothing to drop.")
        for candidate in candidates:
            name = candidate.partition.name
            span = f"{candidate.partition.start:%Y-%m}"
            if candidate.held_by:
                self.stdout.write(f"Kept {name} ({span}):")
                for hold in candidate.held_by:
                    self.stdout.write(
                        f"  held back by tenant {hold.tenant_id}: {hold.reason} since "
                        f"{hold.since.isoformat()}"
                    )
            elif dry_run:
                self.stdout.write(f"Would drop {name} ({span})")
            else:
                self.stdout.write(
                    f"Dropped {name} ({span}): {sum(candidate.removed.values())} entries of "
                    f"{len(candidate.removed)} tenants"
                )
