"""Shared fixtures: two tenants with an owner, a reader and a member each."""

import io
import secrets
import uuid
from dataclasses import dataclass

import pytest
from django.core.management import call_command
from django.db import connection, connections, transaction
from django.db.backends.base.operations import BaseDatabaseOperations
from rest_framework.test import APIClient

from audit_project.celery import app as celery_app
from auditlog import partitions, triggers
from tenants import services
from tenants.models import Membership

from . import factories

# The S3/STS stand-in's fixtures (s3_server, s3, configure), for every test that exports.
pytest_plugins = ["tests.s3"]


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
    DELETE on SQLite, which the append-only triggers refuse. The flush lifts them, from the
    entries table and every partition of it (TRUNCATE of the parent fires each partition's
    own trigger), empties the tables and puts them back in one transaction, so no other
    statement ever sees a table without them. The product has no such way round the triggers.
    """
    flush = BaseDatabaseOperations.execute_sql_flush

    def execute_sql_flush(ops, sql_list):
        with transaction.atomic(using=ops.connection.alias):
            tables = partitions.entries_tables(ops.connection)
            for table in tables:
                triggers.remove(ops.connection, table)
            flush(ops, sql_list)
            for table in tables:
                triggers.install(ops.connection, table)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(BaseDatabaseOperations, "execute_sql_flush", execute_sql_flush)
        yield


@pytest.fixture(autouse=True)
def _private_cache(settings):
    """Every test counts sign-in failures and API requests from zero.

    Its own key prefix in the suite's cache (Redis when ``REDIS_URL`` is set) rather than
    a flush: the same Redis may be the Celery broker, and other runs may share it.
    """
    settings.CACHES = {
        "default": {**settings.CACHES["default"], "KEY_PREFIX": f"test-{uuid.uuid4().hex}"}
    }


@pytest.fixture(scope="module")
def app_role(django_db_setup, django_db_blocker):
    """For a whole test module, the product connects as the application role (PostgreSQL).

    The role is made as in a deployment: ``audit_db_grant_app_role`` run by the tables'
    owner, with a password from the environment. Its name is this test database's, since
    roles are cluster-wide and other runs share the server. The default connection then
    logs in as it, so every query of the module's tests (fixtures included) runs with the
    role's privileges. Transactional tests cannot be among them: flushing needs the owner.
    """
    if connection.vendor != "postgresql":
        pytest.skip("database roles: PostgreSQL only")
    name = factories.role_name("app_role")
    password = secrets.token_urlsafe(24)
    with django_db_blocker.unblock(), pytest.MonkeyPatch.context() as patch:
        patch.setenv("AUDIT_DB_APP_PASSWORD", password)
        call_command("audit_db_grant_app_role", role=name, stdout=io.StringIO())
    owner = {key: connection.settings_dict[key] for key in ("USER", "PASSWORD")}
    connections.close_all()  # a test mirror (the replica alias) shares these settings
    connection.settings_dict.update(USER=name, PASSWORD=password)
    try:
        yield name
    finally:
        connections.close_all()
        connection.settings_dict.update(owner)
        with django_db_blocker.unblock(), connection.cursor() as cursor:
            cursor.execute(f'DROP OWNED BY "{name}"')
            cursor.execute(f'DROP ROLE "{name}"')


@pytest.fixture
def worker_in_process():
    """Celery runs a queued task at once, where it is queued (the test, or its live server).

    So the test sees what the task did; the real worker is tested in tests/exports/.
    """
    conf = celery_app.conf
    saved = conf.task_always_eager, conf.task_eager_propagates
    conf.task_always_eager = conf.task_eager_propagates = True
    yield
    conf.task_always_eager, conf.task_eager_propagates = saved
