"""Without a replica nothing changes: the read path asks nothing and reads the primary.

The routing itself, against a real streaming replica, is tested in tests/replicas.
"""

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from audit_project.settings.base import replica_database
from auditlog.routing import PRIMARY, read_database
from auditlog.selectors import audit_log_entries_for


def test_without_a_replica_the_read_path_reads_the_primary_and_asks_nothing(
    world_a, django_assert_num_queries
):
    assert "replica" not in settings.DATABASES
    with django_assert_num_queries(0):
        assert read_database(world_a.reader) == PRIMARY
        assert audit_log_entries_for(world_a.reader).db == PRIMARY


@pytest.mark.parametrize(
    ("primary", "replica"),
    [
        ("django.db.backends.sqlite3", "django.db.backends.postgresql"),
        ("django.db.backends.postgresql", "django.db.backends.sqlite3"),
    ],
)
def test_a_replica_is_refused_unless_both_databases_are_postgresql(primary, replica):
    with pytest.raises(ImproperlyConfigured, match="DATABASE_REPLICA_URL"):
        replica_database({"ENGINE": primary}, {"ENGINE": replica})


def test_the_replica_alias_reads_in_autocommit_and_gives_up_connecting_quickly():
    replica = replica_database(
        {"ENGINE": "django.db.backends.postgresql"},
        {"ENGINE": "django.db.backends.postgresql", "ATOMIC_REQUESTS": True},
    )
    assert replica["ATOMIC_REQUESTS"] is False
    assert replica["OPTIONS"]["connect_timeout"] == 2
