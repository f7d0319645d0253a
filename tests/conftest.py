"""Shared fixtures: two tenants with an owner, a reader and a member each."""

from dataclasses import dataclass

import pytest
from django.db import transaction
from django.db.backends.base.operations import BaseDatabaseOperations
from rest_framework.test import APIClient

from auditlog import triggers
from tenants import services
from tenants.models import Membership

from . import factories


@dataclass
class World:
    """One tenant and its people, with an API key each."""

    tenant: object
    owner: object
    reader: object
    member: object
    team: object
    keys: dict


def _world(name: str) -> World:
    tenant = factories.tenant(name)
    owner = factories.owner(tenant)
    reader = factories.reader(tenant)
    member = factories.user(tenant)
    team = factories.team(tenant, f"{name} team")
    services.membership_add(team=team, user=member, role=Membership.Role.EDITOR)
    keys = {
        who: services.api_key_create(user=user, name=f"{who} key")[1]
        for who, user in (("owner", owner), ("reader", reader), ("member", member))
    }
    return World(tenant, owner, reader, member, team, keys)


@pytest.fixture
def world_a(db):
    return _world("Acme")


@pytest.fixture
def world_b(db):
    return _world("Globex")


@pytest.fixture
def api():
    """A DRF client; authenticate with ``api.credentials(HTTP_AUTHORIZATION=...)``."""
    return APIClient()


@pytest.fixture(scope="session", autouse=True)
def _flush_lifts_append_only():
    """Let a test database be emptied after transactional tests, and only that.

    Django flushes the database after each transactional test: TRUNCATE on PostgreSQL,
    DELETE on SQLite, which the append-only triggers refuse. The flush lifts them, empties
    the tables and puts them back in one transaction, so no other statement ever sees the
    table without them. The product has no such way round the triggers.
    """
    flush = BaseDatabaseOperations.execute_sql_flush

    def execute_sql_flush(ops, sql_list):
        with transaction.atomic(using=ops.connection.alias):
            triggers.remove(ops.connection)
            flush(ops, sql_list)
            triggers.install(ops.connection)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(BaseDatabaseOperations, "execute_sql_flush", execute_sql_flush)
        yield
