"""Partition the entries table by month (PostgreSQL), online, keeping every row as it was.

Capture goes on during the copy; writes wait only for the last moment. As the table's owner:

1. A copy ``LIKE`` the table (columns, defaults, identity), ``PARTITION BY RANGE
   (created_at)``, with a partition for every month from the oldest entry's to three months
   ahead, and the DEFAULT partition.
2. The position ``S`` of the id sequence is read, then every transaction holding a lock on
   the table is waited for (as ``CREATE INDEX CONCURRENTLY`` does). An INSERT locks the table
   before it takes an id, so once they are gone every id up to ``S`` belongs to a committed
   (or rolled back) row: entries are append-only, so rows ``id <= S`` can no longer change
   or appear.
3. Rows ``id <= S`` are copied in chunks (``INSERT ... SELECT`` of every column: same ids,
   same values), each chunk its own transaction, while capture goes on; both sides are
   counted afterwards and must agree.
4. The primary key ``(id, created_at)`` (PostgreSQL needs the partition key in it), the old
   table's foreign keys and indexes (by their definitions) are built on the copy, and it is
   vacuumed and analyzed, still without any lock on the old table.
5. One short transaction: ``LOCK ... IN EXCLUSIVE MODE`` (writes wait, reads go on), the
   rows ``id > S`` written meanwhile are copied, the copy's sequence is set past the old
   one's, then the swap under ACCESS EXCLUSIVE: the old table is dropped (a DROP, not a
   DELETE: no trigger is ever lifted), the copy takes its name and its keys' and indexes'
   names, gets the append-only triggers (on the table and on every partition) and the old
   table's grants (the application role's SELECT, INSERT; on each partition too).

An interrupted run leaves the old table as it was and a half-built copy, which the next run
drops first. Backwards is the same into a plain table. SQLite has no partitions: nothing
happens there. Figures and how to run it: README, "Deploying"; bench/convert_partitions.py.
"""

import re
import time

from django.db import migrations, transaction

from auditlog import partitions, triggers

TABLE = triggers.TABLE
BUILDING = f"{TABLE}_building"
ON_TABLE = re.compile(rf"INDEX \S+ ON (ONLY )?(\S+\.)?{TABLE} ")
CHUNK = 500_000
WAIT_SECONDS = 600


def _fetch(cursor, sql, params=()):
    cursor.execute(sql, params)
    return cursor.fetchall()


def _sequence(cursor, table):
    cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
    return cursor.fetchone()[0]


def _wait_for_writers(cursor):
    """Wait until every transaction holding a lock on the table now has ended."""
    ((holders,),) = _fetch(
        cursor,
        "SELECT coalesce(array_agg(DISTINCT virtualtransaction), '{}') FROM pg_locks"
        " WHERE locktype = 'relation' AND relation = %s::regclass AND pid <> pg_backend_pid()",
        [TABLE],
    )
    deadline = time.monotonic() + WAIT_SECONDS
    while holders:
        ((holders,),) = _fetch(
            cursor,
            "SELECT coalesce(array_agg(virtualxid), '{}') FROM pg_locks"
            " WHERE locktype = 'virtualxid' AND virtualxid = ANY(%s)",
            [holders],
        )
        if holders and time.monotonic() > deadline:
            raise RuntimeError(f"transactions {holders} kept the entries table; nothing changed")
        time.sleep(0.1)


def _copy(cursor, columns, where, params):
    cursor.execute(
        f"INSERT INTO {BUILDING} ({columns}) SELECT {columns} FROM {TABLE} WHERE {where}", params
    )


def _rebuild(connection, *, partitioned):
    with connection.cursor() as cursor:
        ((kind,),) = _fetch(cursor, "SELECT relkind FROM pg_class WHERE oid = %s::regclass", [TABLE])
        if (kind == "p") == partitioned:
            return
        cursor.execute(f"DROP TABLE IF EXISTS {BUILDING}")  # an interrupted run's copy
        try:
            _build_and_swap(connection, cursor, partitioned)
        except BaseException:
            if not connection.in_atomic_block:
                cursor.execute(f"DROP TABLE IF EXISTS {BUILDING}")
            raise


def _build_and_swap(connection, cursor, partitioned):
    columns = ", ".join(f'"{name}"' for (name,) in _fetch(
        cursor,
        "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0"
        " AND NOT attisdropped ORDER BY attnum",
        [TABLE],
    ))
    constraints = _fetch(
        cursor,
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE conrelid = %s::regclass AND contype IN ('c', 'f') ORDER BY conname",
        [TABLE],
    )
    indexes = _fetch(
        cursor,
        "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i"
        " JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = %s::regclass"
        " AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)"
        " ORDER BY c.relname",
        [TABLE],
    )
    old_sequence = _sequence(cursor, TABLE)

    # 1. The copy, and its partitions under their final names (they clash with nothing).
    with transaction.atomic(using=connection.alias):
        ((oldest, now),) = _fetch(cursor, f"SELECT min(created_at), now() FROM {TABLE}")
        partition_by = " PARTITION BY RANGE (created_at)" if partitioned else ""
        cursor.execute(
            f"CREATE TABLE {BUILDING} (LIKE {TABLE} INCLUDING DEFAULTS INCLUDING IDENTITY"
            f" INCLUDING STORAGE){partition_by}"
        )
        if partitioned:
            month = partitions.month_of(oldest or now)
            last = partitions.add_months(partitions.month_of(now), partitions.MONTHS_AHEAD)
            while month <= last:
                cursor.execute(
                    f"CREATE TABLE {partitions.monthly(month).name} PARTITION OF {BUILDING}"
                    " FOR VALUES FROM (%s) TO (%s)",
                    [month, partitions.add_months(month, 1)],
                )
                month = partitions.add_months(month, 1)
            cursor.execute(f"CREATE TABLE {partitions.DEFAULT} PARTITION OF {BUILDING} DEFAULT")

    # 2. Every id up to ``settled`` is final once today's writers are gone.
    ((settled,),) = _fetch(
        cursor,
        f"SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END FROM {old_sequence}",
    )
    _wait_for_writers(cursor)

    # 3. The settled rows, chunk by chunk, while capture goes on; then both sides counted.
    for low in range(0, settled, CHUNK):
        _copy(cursor, columns, "id > %s AND id <= %s", [low, min(low + CHUNK, settled)])
    counts = [
        _fetch(cursor, f"SELECT count(*) FROM {table} WHERE id <= %s", [settled])[0][0]
        for table in (TABLE, BUILDING)
    ]
    if counts[0] != counts[1]:
        raise RuntimeError(f"copied {counts[1]} of {counts[0]} entries; nothing was changed")

    # 4. Keys and indexes on the copy, under short temporary names (the old ones are taken).
    key = "id, created_at" if partitioned else "id"
    renames = [("CONSTRAINT", f"{BUILDING}_pkey", f"{TABLE}_pkey")]
    cursor.execute(f"ALTER TABLE {BUILDING} ADD CONSTRAINT {BUILDING}_pkey PRIMARY KEY ({key})")
    for n, (name, definition) in enumerate(constraints):
        cursor.execute(f"ALTER TABLE {BUILDING} ADD CONSTRAINT {BUILDING}_c{n} {definition}")
        renames.append(("CONSTRAINT", f"{BUILDING}_c{n}", name))
    for n, (name, definition) in enumerate(indexes):
        # "CREATE INDEX <name> ON [ONLY] [<schema>.]<table> USING ...", for the copy.
        built, found = ON_TABLE.subn(f"INDEX {BUILDING}_i{n} ON {BUILDING} ", definition, 1)
        if not found:
            raise RuntimeError(f"unexpected definition of index {name}: {definition}")
        cursor.execute(built)
        renames.append(("INDEX", f"{BUILDING}_i{n}", name))
    # Statistics, and the visibility map that lets the read path's index-only scans skip
    # the heap (VACUUM cannot run inside a transaction: ANALYZE alone there).
    cursor.execute(f"{'ANALYZE' if connection.in_atomic_block else 'VACUUM (ANALYZE)'} {BUILDING}")

    # 5. The rest and the swap: writes wait from the LOCK, reads from the DROP, to the commit.
    with transaction.atomic(using=connection.alias):
        cursor.execute(f"LOCK TABLE {TABLE} IN EXCLUSIVE MODE")
        grants = _fetch(
            cursor,
            "SELECT a.grantee::regrole::text, string_agg(a.privilege_type, ', ')"
            " FROM pg_class c, aclexplode(c.relacl) a"
            " WHERE c.oid = %s::regclass AND a.grantee NOT IN (0, c.relowner) GROUP BY 1",
            [TABLE],
        )
        _copy(cursor, columns, "id > %s", [settled])
        ((next_id,),) = _fetch(
            cursor,
            "SELECT greatest((SELECT CASE WHEN is_called THEN last_value + 1 ELSE last_value END"
            f" FROM {old_sequence}), coalesce(max(id), 0) + 1) FROM {TABLE}",
        )
        cursor.execute(f"SELECT setval('{_sequence(cursor, BUILDING)}', %s, false)", [next_id])
        cursor.execute(f"DROP TABLE {TABLE}")
        cursor.execute(f"ALTER TABLE {BUILDING} RENAME TO {TABLE}")
        cursor.execute(
            f"ALTER SEQUENCE {_sequence(cursor, TABLE)} RENAME TO {old_sequence.split('.')[-1]}"
        )
        for what, temporary, name in renames:
            if what == "INDEX":
                cursor.execute(f'ALTER INDEX {temporary} RENAME TO "{name}"')
            else:
                cursor.execute(f'ALTER TABLE {TABLE} RENAME CONSTRAINT {temporary} TO "{name}"')
        triggers.install(connection, TABLE)
        for role, privileges in grants:
            cursor.execute(f"GRANT {privileges} ON {TABLE} TO {role}")
        if partitioned:
            for name in partitions.entries_tables(connection)[1:]:
                partitions.arm(cursor, name)


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        _rebuild(schema_editor.connection, partitioned=True)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        _rebuild(schema_editor.connection, partitioned=False)


class Migration(migrations.Migration):
    # Not one transaction: the copy commits chunk by chunk while capture goes on (above).
    atomic = False

    dependencies = [("auditlog", "0006_admin_search_indexes")]

    operations = [migrations.RunPython(forwards, backwards)]
