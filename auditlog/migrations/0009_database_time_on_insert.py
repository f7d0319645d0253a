"""Refuse an INSERT whose ``created_at`` is not the database's time, unless by the owner.

Only adds a function and a row trigger (cloned onto every partition): no row is read or
rewritten, so it runs on a populated table in a moment. Why and who is exempt:
``auditlog/clock.py``. SQLite: nothing happens.
"""

from django.db import migrations

from auditlog import clock


def install(apps, schema_editor):
    clock.install(schema_editor.connection)


def remove(apps, schema_editor):
    clock.remove(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [("auditlog", "0008_drop_redundant_tenant_index")]

    operations = [migrations.RunPython(install, remove)]
