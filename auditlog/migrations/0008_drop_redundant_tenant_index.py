"""Drop the entries' index on ``tenant_id`` alone: every other index is led by the tenant.

On the partitioned table it was one more index per partition to plan, build and write on
every capture, and the planner picked it for counts (a bitmap scan) over the better
``(tenant, -created_at, -id)``. Only the index goes: Django's AlterField would also drop and
re-add the foreign key, re-checking every entry under an exclusive lock, for nothing.
"""

import django.db.models.deletion
from django.db import migrations, models

INDEX = "auditlog_auditlogentry_tenant_id_a6478757"


class Migration(migrations.Migration):
    dependencies = [
        ("auditlog", "0007_partition_by_month"),
        ("tenants", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="auditlogentry",
                    name="tenant",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="tenants.tenant",
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    f"DROP INDEX IF EXISTS {INDEX}",
                    f"CREATE INDEX IF NOT EXISTS {INDEX} ON auditlog_auditlogentry (tenant_id)",
                ),
            ],
        ),
    ]
