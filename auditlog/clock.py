"""The database refuses an entry whose ``created_at`` is not its own time (PostgreSQL).

Why
---
The application role may INSERT entries (it must, to capture), so without a check it could
write one for any tenant at any time of its choosing: a backdated entry that looks as old as
the history around it. A row trigger refuses every INSERT whose ``created_at`` lies outside
``[now() - SKEW, clock_timestamp() + SKEW]``: ``now()`` is the transaction's start, so rows
stamped (by the application's clock) late in a long transaction still pass, and
``clock_timestamp()`` is the moment of the insert. ``SKEW`` (60 seconds) allows for the
application hosts' clocks differing from the database's; an NTP-synchronised host is well
within it.

It refuses rather than overrides: a BEFORE trigger on a partitioned table may not move a row
to another partition, and a corrected time could do exactly that.

Who is exempt
-------------
Members of the role that owns the table being written (so the owner, and every superuser):
the maintenance paths that move existing rows with their times run as the owner (draining
DEFAULT in ``auditlog.partitions``, the conversion of migration 0007), as do the bench seed
tools and test factories. The owner can drop the trigger anyway, so exempting it gives
nothing away. The timestamp is checked first: the common, in-skew INSERT costs no role
lookup. The owner is the partition's being written (``TG_RELID``), never a table looked up by
name, which a session could shadow with a temporary table of its own.

Where it applies
----------------
A row trigger on the partitioned parent is cloned by PostgreSQL onto every partition, the
DEFAULT one and those created later included, and cannot be dropped from a partition alone.
The application role owns neither the table nor the function, so it can neither drop nor
replace them (``auditlog/db_role.py`` checks). SQLite has no trigger: it is the single-user
embedded default, with no roles and no application role to guard against.
"""

from typing import Any

from .triggers import TABLE

SKEW_SECONDS = 60
FUNCTION = "auditlog_refuse_foreign_time"
TRIGGER = "auditlog_database_time"
MESSAGE = "audit log entries must carry the database clock time"


def install(connection: Any) -> None:
    """Create the function and the row trigger on the entries table (PostgreSQL; idempotent)."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            CREATE OR REPLACE FUNCTION {FUNCTION}() RETURNS trigger AS $$
            BEGIN
                IF (NEW.created_at < pg_catalog.now() - interval '{SKEW_SECONDS} seconds'
                    OR NEW.created_at > pg_catalog.clock_timestamp()
                        + interval '{SKEW_SECONDS} seconds')
                   AND NOT pg_catalog.pg_has_role(
                       current_user,
                       (SELECT c.relowner FROM pg_catalog.pg_class c WHERE c.oid = TG_RELID),
                       'MEMBER')
                THEN
                    RAISE EXCEPTION '{MESSAGE} (created_at % is more than {SKEW_SECONDS} s'
                        ' from it)', NEW.created_at
                        USING ERRCODE = 'check_violation';
                END IF;
                RETURN NEW;
            END
            $$ LANGUAGE plpgsql
            """  # noqa: S608 (constants of this module only)
        )
        cursor.execute(
            f"CREATE OR REPLACE TRIGGER {TRIGGER} BEFORE INSERT ON {TABLE}"
            f" FOR EACH ROW EXECUTE FUNCTION {FUNCTION}()"
        )


def remove(connection: Any) -> None:
    """Drop the trigger (its clones on the partitions go with it) and the function."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TRIGGER IF EXISTS {TRIGGER} ON {TABLE}")
        cursor.execute(f"DROP FUNCTION IF EXISTS {FUNCTION}()")
