"""Shared fixtures: two tenants with an owner, a reader and a member each."""

import uuid
from dataclasses import dataclass

import pytest
from django.db import connection
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


@pytest.fixture
def transactional_db(transactional_db):
    """Let transactional tests empty the append-only table afterwards.

    Flushing a test database deletes every row; on SQLite that is a DELETE, which the
    triggers refuse, so they are lifted just before the flush (PostgreSQL flushes with
    TRUNCATE, which row triggers do not see). ``_append_only`` puts them back.
    """
    yield transactional_db
    if connection.vendor == "sqlite":
        triggers.remove(connection)


@pytest.fixture(autouse=True)
def _append_only(request, django_db_blocker):
    """Every database test starts with the append-only triggers in place."""
    uses_db = {"db", "transactional_db"} & set(request.fixturenames)
    if connection.vendor == "sqlite" and (uses_db or request.node.get_closest_marker("django_db")):
        with django_db_blocker.unblock():
            triggers.install(connection)


@pytest.fixture(autouse=True)
def _private_cache(settings):
    """Every test counts sign-in failures and API requests from zero.

    Its own key prefix in the suite's cache (Redis when ``REDIS_URL`` is set) rather than
    a flush: the same Redis may be the Celery broker, and other runs may share it.
    """
    settings.CACHES = {
        "default": {**settings.CACHES["default"], "KEY_PREFIX": f"test-{uuid.uuid4().hex}"}
    }
