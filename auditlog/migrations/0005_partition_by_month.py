"""Partition the entries table by month (PostgreSQL), keeping every row exactly as it was.

One transaction, as the table's owner:

1. ``LOCK ... IN EXCLUSIVE MODE``: writes wait (capture queues, it does not fail), reads go on.
2. A new table ``LIKE`` the old one (columns, defaults, identity), ``PARTITION BY RANGE
   (created_at)``, with a monthly partition for every month from the oldest entry's to three
   months ahead, and the DEFAULT partition.
3. ``INSERT INTO new SELECT <every column> FROM old``: ids, ``created_at`` and every other
   value are copied, nothing is computed. The row count is checked.
4. The new identity sequence continues past the old one (and past the highest id), so no id
   is ever handed out twice.
5. The primary key ``(id, created_at)`` (PostgreSQL needs the partition key in it), the old
   table's other constraints (the foreign keys) and indexes (by their definitions) are built
   on the copy, while reads still go to the old table.
6. The swap, a moment under ACCESS EXCLUSIVE: the old table is dropped (a DROP, not a
   DELETE: no trigger is ever lifted), the copy takes its name and the names of its keys and
   indexes; then the append-only triggers on the table and on every partition, the old
   table's grants (the application role's SELECT, INSERT, also on each partition) and
   ``ANALYZE``.

Backwards does the same into a plain table. SQLite has no partitions: nothing happens there.
How long it takes and how to run it: README, "Deploying"; ``bench/convert_partitions.py``.
"""

import re

from django.db import migrations

from auditlog import partitions, triggers

TABLE = triggers.TABLE
BUILDING = f"{TABLE}_building"
ON_TABLE = re.compile(rf"INDEX \S+ ON (ONLY )?(\S+\.)?{TABLE} ")


def _fetch(cursor, sql, params=()):
    cursor.execute(sql, params)
    return cursor.fetchall()


def _rebuild(connection, *, partitioned):
    with connection.cursor() as cursor:
        ((kind,),) = _fetch(cursor, "SELECT relkind FROM pg_class WHERE oid = %s::regclass", [TABLE])
        if (kind == "p") == partitioned:
            return
        # Writes wait from here to the commit; reads go on until the swap at the end.
        cursor.execute(f"LOCK TABLE {TABLE} IN EXCLUSIVE MODE")
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
        grants = _fetch(
            cursor,
            "SELECT a.grantee::regrole::text, string_agg(a.privilege_type, ', ')"
            " FROM pg_class c, aclexplode(c.relacl) a"
            " WHERE c.oid = %s::regclass AND a.grantee NOT IN (0, c.relowner) GROUP BY 1",
            [TABLE],
        )
        old_sequence = _sequence(cursor, TABLE)
        ((next_id, rows, oldest, now),) = _fetch(
            cursor,
            "SELECT greatest((SELECT CASE WHEN is_called THEN last_value + 1 ELSE last_value END"
            f" FROM {old_sequence}), coalesce(max(id), 0) + 1), count(*), min(created_at), now()"
            f" FROM {TABLE}",
        )

        partition_by = " PARTITION BY RANGE (created_at)" if partitioned else ""
        cursor.execute(
            f"CREATE TABLE {BUILDING} (LIKE {TABLE} INCLUDING DEFAULTS INCLUDING IDENTITY"
            f" INCLUDING STORAGE){partition_by}"
        )
        if partitioned:
            # Final names already: they clash with nothing of the old table.
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
        cursor.execute(f"INSERT INTO {BUILDING} ({columns}) SELECT {columns} FROM {TABLE}")
        if cursor.rowcount != rows:
            raise RuntimeError(f"copied {cursor.rowcount} of {rows} entries; nothing was changed")
        cursor.execute(f"SELECT setval('{_sequence(cursor, BUILDING)}', %s, false)", [next_id])

        # Keys and indexes are built on the copy under short temporary names (the old ones
        # are still taken), and renamed once the old table is gone.
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

        # The swap: a moment under ACCESS EXCLUSIVE. DROP, not DELETE: no trigger is lifted.
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
            for (name,) in _fetch(
                cursor,
                "SELECT relid::regclass::text FROM pg_partition_tree(%s) WHERE isleaf",
                [TABLE],
            ):
                partitions.arm(cursor, name)
        cursor.execute(f"ANALYZE {TABLE}")


def _sequence(cursor, table):
    cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
    return cursor.fetchone()[0]


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        _rebuild(schema_editor.connection, partitioned=True)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        _rebuild(schema_editor.connection, partitioned=False)


class Migration(migrations.Migration):
    dependencies = [("auditlog", "0004_refuse_truncate")]

    operations = [migrations.RunPython(forwards, backwards)]
