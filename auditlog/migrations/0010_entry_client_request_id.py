"""The X-Request-ID a client sent, apart from the server's own ``request_id``.

A nullable column without a default: PostgreSQL adds it to the partitioned table and every
partition as a catalog change (no row rewritten), SQLite with ``ALTER TABLE ADD COLUMN``
(no table rebuild, so its append-only triggers stay). Existing entries read NULL: no
client id was kept apart for them.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("auditlog", "0009_database_time_on_insert")]

    operations = [
        migrations.AddField(
            model_name="auditlogentry",
            name="client_request_id",
            field=models.CharField(blank=True, max_length=64, null=True),
        ),
    ]
