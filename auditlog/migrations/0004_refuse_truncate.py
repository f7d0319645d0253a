"""Refuse TRUNCATE of the entries table (PostgreSQL): row triggers never see it.

Only adds a statement trigger: no row is read or rewritten, so it runs on a populated table
in a moment. SQLite has no TRUNCATE; its triggers get the per-table names of
``auditlog.triggers`` (same statements, same refusals).
"""

from django.db import migrations

from auditlog import triggers


def install(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor == "sqlite":
        triggers.remove(connection)
    triggers.install(connection)


def remove(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                f"DROP TRIGGER IF EXISTS {triggers.TRUNCATE_TRIGGER} ON {triggers.TABLE}"
            )


class Migration(migrations.Migration):
    dependencies = [("auditlog", "0003_filter_indexes")]

    operations = [migrations.RunPython(install, remove)]
