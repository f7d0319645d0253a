"""/healthz and /readyz in-process: what they check, what they say, whom they answer."""

import logging

import pytest
from django.db.migrations.recorder import MigrationRecorder

from audit_project.health import NotReady

from .servers import free_port

UNLISTED_HOST = "10.11.12.13"  # a load balancer probing the instance by its address
READY = {
    "status": "ok",
    "checks": {
        "database": "ok",
        "migrations": "ok",
        "cache": "ok",
        "broker": "ok",
        "static_files": "ok",
    },
}


def _readiness(client, **headers):
    response = client.get("/readyz", headers=headers)
    return response.status_code, response.json()


def test_healthz_answers_without_touching_the_database(client):
    """No ``db`` fixture: pytest-django refuses any query this test would make."""
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-store" in response["Cache-Control"]


def test_readyz_names_every_check(db, client):
    assert _readiness(client) == (200, READY)


def test_probes_answer_a_load_balancer_over_http_by_address(db, client, settings):
    """Neither the HTTPS redirect nor host validation stands in the probes' way; every other
    page keeps both."""
    settings.SECURE_SSL_REDIRECT = True
    assert client.get("/healthz", headers={"Host": UNLISTED_HOST}).status_code == 200
    assert client.get("/readyz", headers={"Host": UNLISTED_HOST}).status_code == 200
    assert client.get("/login/", headers={"Host": UNLISTED_HOST}).status_code == 400
    assert client.get("/login/").status_code == 301


def test_readyz_is_503_while_a_migration_is_pending(db, client):
    MigrationRecorder.Migration.objects.filter(app="exports").delete()  # rolled back after
    status, body = _readiness(client)
    assert status == 503
    assert body["status"] == "unavailable"
    assert body["checks"]["migrations"] == "pending"
    assert body["checks"]["database"] == "ok"


def test_readyz_is_503_when_the_cache_is_unreachable(db, client, settings):
    closed = free_port()
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{closed}/0",
        }
    }
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"] == {
        "database": "ok",
        "migrations": "ok",
        "cache": "failed",
        "broker": "ok",
        "static_files": "ok",
    }
    assert str(closed).encode() not in response.content


def leaky_check() -> None:
    """A check failing with an error that names a host and a password."""
    raise RuntimeError("cannot reach redis://probe:hunter2@db-7.internal:6379/0")


def pending_check() -> None:
    raise NotReady("pending")


def test_a_failure_is_logged_with_the_password_masked_and_never_shown(db, client, settings, caplog):
    settings.READINESS_CHECKS = {
        **settings.READINESS_CHECKS,
        "partition": "tests.test_health.pending_check",
        "leaky": "tests.test_health.leaky_check",
    }
    with caplog.at_level(logging.WARNING, logger="audit_project.health"):
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["partition"] == "pending"
    assert response.json()["checks"]["leaky"] == "failed"
    for secret in (b"hunter2", b"db-7.internal", b"RuntimeError"):
        assert secret not in response.content
    assert "redis://***@db-7.internal:6379/0" in caplog.text
    assert "hunter2" not in caplog.text


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_probes_only_answer_reads(db, client, path):
    assert client.post(path).status_code == 405
