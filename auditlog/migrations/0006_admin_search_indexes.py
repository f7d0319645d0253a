"""Indexes for the admin console's search: a prefix of a user's email or a target's name.

The search is ``UPPER(col::text) LIKE 'PREFIX%'`` (Django's ``istartswith`` on PostgreSQL);
an expression index on exactly that expression with ``text_pattern_ops`` turns the prefix
into an index range, whatever the database's collation, led by the tenant. SQLite has no
operator classes: its ``LIKE`` (case-insensitive for ASCII) uses an index on the column
with ``COLLATE NOCASE``. Only indexes are added: no entry is read or changed.
"""

from django.db import migrations

INDEXES = {
    "postgresql": [
        "CREATE INDEX IF NOT EXISTS auditlog_tenant_email_prefix ON auditlog_auditlogentry "
        "(tenant_id, (UPPER(user_email::text)) text_pattern_ops)",
        "CREATE INDEX IF NOT EXISTS auditlog_tenant_target_prefix ON auditlog_auditlogentry "
        "(tenant_id, (UPPER(target_repr::text)) text_pattern_ops)",
    ],
    "sqlite": [
        "CREATE INDEX IF NOT EXISTS auditlog_tenant_email_prefix ON auditlog_auditlogentry "
        "(tenant_id, user_email COLLATE NOCASE)",
        "CREATE INDEX IF NOT EXISTS auditlog_tenant_target_prefix ON auditlog_auditlogentry "
        "(tenant_id, target_repr COLLATE NOCASE)",
    ],
}
NAMES = ("auditlog_tenant_email_prefix", "auditlog_tenant_target_prefix")


def create(apps, schema_editor):
    for statement in INDEXES.get(schema_editor.connection.vendor, []):
        schema_editor.execute(statement)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor in INDEXES:
        for name in NAMES:
            schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("auditlog", "0005_actor_filter_indexes")]

    operations = [migrations.RunPython(create, drop)]
