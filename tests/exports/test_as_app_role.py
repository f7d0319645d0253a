"""The worker's export, run on a connection logged in as the application role (PostgreSQL).

The lease (``SELECT ... FOR UPDATE``), frozen batches, manifests, the cutoff's look at
``pg_stat_activity`` and the server-side cursor over entries all work with the role's
privileges (see ``app_role`` in tests/conftest.py).
"""

import pytest
from django.db import connection

from exports.delivery import export_run

from .helpers import add_entries, db_ids, exported_ids, verify

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("app_role")]


def test_export_delivers_every_entry_once_as_the_application_role(app_role, s3, configure, world_a):
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        assert cursor.fetchone() == (app_role,)
    config = configure(world_a.tenant)
    add_entries(world_a.tenant, 120)
    first = export_run(tenant_id=world_a.tenant.pk)
    assert first.status == "ok", first.error
    second = export_run(tenant_id=world_a.tenant.pk)
    assert second.status == "ok", second.error
    ids = exported_ids(s3, config)
    assert len(ids) == len(set(ids)) > 120
    assert sorted(ids) == db_ids(world_a.tenant)[: len(ids)]
    report = verify(s3, config)
    assert report.ok, report.problems
