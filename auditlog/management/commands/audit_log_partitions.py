"""``audit_log_partitions [--from YYYY-MM]``: the daily partition maintenance, run once.

Moves any entries out of the DEFAULT partition into their months, then keeps the next three
months created ahead; ``--from`` also creates every month from the one given (before a large
import of old history, so that it never lands in DEFAULT). Runs on the owner's connection
(``DATABASE_MAINTENANCE_URL``, else ``DATABASE_URL``): see ``auditlog.partitions``.
"""

from datetime import UTC, datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from auditlog import partitions


def _month(value: str) -> datetime:
    try:
        return datetime.strptime(value, "%Y-%m").replace(tzinfo=UTC)
    except ValueError:
        raise CommandError(f"--from takes a month as YYYY-MM, not {value!r}") from None


class Command(BaseCommand):
    help = "Create the audit log's monthly partitions ahead and empty its DEFAULT partition."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--from", dest="first", type=_month, help="also create from YYYY-MM")

    def handle(self, *args: Any, first: datetime | None = None, **options: Any) -> None:
        try:
            # DEFAULT first: a month cannot be created while DEFAULT holds entries of it.
            result = partitions.maintain()
            made = partitions.create_months(first, timezone.now()) if first is not None else []
        except partitions.PartitionError as exc:
            raise CommandError(str(exc)) from None
        if first is not None:
            self.stdout.write(f"Created {len(made)} earlier partitions: {', '.join(made)}")
        moved = result["moved"]
        self.stdout.write(
            f"Moved {sum(moved.values())} entries out of DEFAULT"
            + (f" ({', '.join(f'{n}: {c}' for n, c in moved.items())})" if moved else "")
        )
        created = result["created"]
        self.stdout.write(
            f"Created {len(created)} partitions ahead"
            + (f": {', '.join(created)}" if created else " (all there)")
        )
