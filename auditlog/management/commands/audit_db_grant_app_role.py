"""``audit_db_grant_app_role --role NAME``: the application's least-privilege database role.

Run it as the owner of the tables (the role migrations run as) after every ``migrate``; see
``auditlog.db_role`` for what the role may do and why. The password, if any, comes from
``AUDIT_DB_APP_PASSWORD`` and is never printed; without it an existing role keeps its own.
"""

import os
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, connections

from auditlog.db_role import RoleError, app_role_grant

PASSWORD_VARIABLE = "AUDIT_DB_APP_PASSWORD"  # noqa: S105 (the variable's name, not a password)


class Command(BaseCommand):
    help = (
        "Create or update the PostgreSQL role the web, worker and beat processes connect as: "
        "SELECT/INSERT on audit log entries, nothing that could change them. Run as the "
        f"tables' owner after every migrate; the password comes from {PASSWORD_VARIABLE}."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--role", required=True, help="the application role's name")
        parser.add_argument(
            "--database", default=DEFAULT_DB_ALIAS, help="database alias (default: default)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        connection = connections[options["database"]]
        try:
            grants = app_role_grant(
                connection=connection,
                role=options["role"],
                password=os.environ.get(PASSWORD_VARIABLE) or None,
            )
        except RoleError as exc:
            raise CommandError(str(exc)) from None
        entries = ", ".join(grants.entries_tables)
        self.stdout.write(
            f"{'Created' if grants.created else 'Updated'} role {grants.role}"
            f"{' (password set)' if grants.password_set else ''}:\n"
            f"  SELECT, INSERT on {entries}\n"
            f"  SELECT on django_migrations\n"
            f"  SELECT, INSERT, UPDATE, DELETE on {len(grants.domain_tables)} other tables\n"
            "  USAGE, SELECT on the schema's sequences; no CREATE, no ownership\n"
            "Checked: it cannot UPDATE, DELETE or TRUNCATE entries, disable their triggers "
            "or skip them."
        )
