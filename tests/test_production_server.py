"""gunicorn with production settings, as the Procfile's web process runs it, on PostgreSQL and
Redis: readiness, hashed static files, the API, the 404 page, JSON log lines.

The servers use the test database (``transactional_db`` commits what a test creates) and
``SECURE_SSL_REDIRECT=false`` from the environment, as an operator behind a TLS-terminating
proxy would set it; static files are collected once, as a deploy does.
"""

import json
import re
import secrets
import time
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connection

from .servers import BIN, free_port, product_env, run, serving, shared_database_url
from .test_health import READY

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="production runs on PostgreSQL: PostgreSQL pass only"
)

SECRET_KEY = "production-test-secret-key-" + "x" * 30


def production_env(static_root: Path, **overrides: str) -> dict:
    """What an operator sets for the production settings (see .env.example)."""
    return product_env(
        **{
            "DJANGO_SETTINGS_MODULE": "audit_project.settings.production",
            "SECRET_KEY": SECRET_KEY,
            "ALLOWED_HOSTS": "127.0.0.1",
            "CREDENTIAL_ENCRYPTION_KEY": django_settings.CREDENTIAL_ENCRYPTION_KEY,
            "AUDIT_EXPORT_SIGNING_KEY": django_settings.AUDIT_EXPORT_SIGNING_KEY,
            "AUDIT_EXPORT_AWS_ACCOUNT_ID": django_settings.AUDIT_EXPORT_AWS_ACCOUNT_ID,
            "DATABASE_URL": shared_database_url(),
            "REDIS_URL": django_settings.REDIS_URL,
            "CELERY_BROKER_URL": None,
            "STATIC_ROOT": str(static_root),
            "SECURE_SSL_REDIRECT": "false",
            "LOG_FORMAT": "json",
            "WEB_CONCURRENCY": "2",
            **overrides,
        }
    )


@pytest.fixture(scope="module")
def static_root(django_db_setup, tmp_path_factory):
    """``collectstatic`` with production settings, as a deploy runs it."""
    root = tmp_path_factory.mktemp("static")
    run(["collectstatic", "--noinput", "-v", "0"], production_env(root))
    return root


def gunicorn(env: dict, log: Path):
    """The Procfile's web process on a free port."""
    port = free_port()
    command = [str(BIN / "gunicorn"), "--config", "gunicorn.conf.py", "audit_project.wsgi"]
    return serving(command, {**env, "PORT": str(port)}, log, port)


@pytest.fixture(scope="module")
def server(static_root, tmp_path_factory):
    log = tmp_path_factory.mktemp("gunicorn") / "web.log"
    with gunicorn(production_env(static_root), log) as running:
        yield running


def test_readyz_is_200_with_every_check_ok(transactional_db, server):
    response = server.get("/readyz")
    assert response.status == 200, response.body
    assert response.json() == READY


def test_static_files_have_hashed_names_and_far_future_cache_headers(
    transactional_db, server, static_root
):
    manifest = json.loads((static_root / "staticfiles.json").read_text())["paths"]
    hashed = manifest["css/app.css"]
    assert re.fullmatch(r"css/app\.[0-9a-f]{12}\.css", hashed)
    page = server.get("/login/")
    assert page.status == 200
    assert f'href="/static/{hashed}"'.encode() in page.body

    response = server.get(f"/static/{hashed}", headers={"Accept-Encoding": "gzip"})
    assert response.status == 200
    cache_control = response.headers["Cache-Control"]
    assert "immutable" in cache_control
    assert int(re.search(r"max-age=(\d+)", cache_control)[1]) >= 365 * 24 * 3600
    assert response.headers["Content-Encoding"] == "gzip"


def test_api_list_with_a_bearer_key(transactional_db, server, world_a, world_b):
    response = server.get(
        "/api/v1/audit_logs?per_page=100",
        headers={"Authorization": f"Bearer {world_a.keys['reader']}"},
    )
    assert response.status == 200, response.body
    entries = response.json()["audit_logs"]
    assert entries
    assert {e["tenant_id"] for e in entries} == {world_a.tenant.pk}


def test_unknown_url_gets_the_products_404_page_and_nothing_more(transactional_db, server):
    response = server.get("/no/such/page")
    assert response.status == 404
    assert response.headers["Content-Type"].startswith("text/html")
    body = response.body.decode()
    assert "<title>Page not found · Audit logs</title>" in body
    for leak in ("Traceback", "DEBUG", "DJANGO_SETTINGS_MODULE", "urlpatterns", SECRET_KEY):
        assert leak not in body


def test_log_lines_are_json_with_request_tenant_and_user(transactional_db, server, world_a):
    key = world_a.keys["owner"]
    response = server.get(
        "/api/v1/credentials/987654321/", headers={"Authorization": f"Bearer {key}"}
    )
    assert response.status == 404
    request_id = response.headers["X-Request-ID"]

    def access_logged(lines: list[dict]) -> bool:
        # gunicorn writes the access line after the response has gone out: wait for it.
        return any(
            line["logger"] == "gunicorn.access" and request_id in line["message"] for line in lines
        )

    deadline = time.monotonic() + 10
    while True:
        text = server.log_text()
        # Only whole lines: the last one may still be being written.
        lines = [json.loads(line) for line in text.split("\n")[:-1] if line.strip()]
        if access_logged(lines) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    django_line = next(
        line
        for line in lines
        if line["logger"] == "django.request"
        and "/api/v1/credentials/987654321/" in line["message"]
    )
    assert django_line["request_id"] == request_id
    assert django_line["tenant_id"] == world_a.tenant.pk
    assert django_line["user_id"] == world_a.owner.pk
    assert django_line["level"] == "WARNING"
    assert access_logged(lines)
    assert key not in text
    assert SECRET_KEY not in text


def test_access_log_holds_no_query_string_secret(transactional_db, server, world_a):
    key = world_a.keys["reader"]
    response = server.get(f"/api/v1/audit_logs?api_key={key}&per_page=5&Token=tok-canary-1")
    assert response.status == 401
    request_id = response.headers["X-Request-ID"]

    def access_lines() -> list[str]:
        return [
            line
            for line in server.log_text().splitlines()
            if request_id in line and "gunicorn.access" in line
        ]

    deadline = time.monotonic() + 10
    while not access_lines() and time.monotonic() < deadline:
        time.sleep(0.1)
    [line] = access_lines()
    assert "/api/v1/audit_logs?api_key=REDACTED&per_page=5&Token=REDACTED" in line
    assert key not in server.log_text()
    assert "tok-canary-1" not in server.log_text()


@pytest.mark.parametrize(
    ("down", "failed"),
    [
        ("REDIS_URL", {"cache", "broker"}),
        ("DATABASE_URL", {"database", "migrations", "default_partition"}),
    ],
)
def test_readyz_is_503_when_a_dependency_is_unreachable(
    transactional_db, static_root, tmp_path, down, failed
):
    closed = free_port()
    unreachable = {
        "REDIS_URL": f"redis://127.0.0.1:{closed}/0",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{closed}/nowhere",
    }[down]
    env = production_env(static_root, **{down: unreachable})
    with gunicorn(env, tmp_path / "web.log") as broken:
        assert broken.get("/healthz").status == 200
        response = broken.get("/readyz")
    assert response.status == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert {name for name, state in body["checks"].items() if state != "ok"} == failed
    assert str(closed).encode() not in response.body


def test_readyz_is_503_until_collectstatic_ran(transactional_db, tmp_path):
    """Without the manifest every page linking a stylesheet would fail: not ready."""
    empty = tmp_path / "static"
    empty.mkdir()
    with gunicorn(production_env(empty), tmp_path / "web.log") as server:
        response = server.get("/readyz")
    assert response.status == 503
    checks = response.json()["checks"]
    assert checks.pop("static_files") == "missing"
    assert set(checks.values()) == {"ok"}


def wait_for_log(server, text: str) -> str:
    """The server's log once it holds ``text`` (gunicorn writes the access line after the
    response has gone out), or as it is after 10 s."""
    deadline = time.monotonic() + 10
    while text not in (log := server.log_text()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return log


@pytest.mark.parametrize("log_format", ["json", "plain"])
def test_access_log_redacts_keys_in_the_query_string(
    transactional_db, static_root, tmp_path, world_a, log_format
):
    canary = "tak_canary" + secrets.token_hex(16)
    env = production_env(static_root, LOG_FORMAT=log_format, WEB_CONCURRENCY="1")
    with gunicorn(env, tmp_path / "web.log") as running:
        refused = running.get(f"/api/v1/audit_logs?api_key={canary}&per_page=5")
        listed = running.get(
            f"/api/v1/audit_logs?per_page=5&Access_Token={canary}&q=%74ak_{canary[4:]}",
            headers={"Authorization": f"Bearer {world_a.keys['reader']}"},
        )
        assert refused.status == 401
        assert listed.status == 200
        log = wait_for_log(running, listed.headers["X-Request-ID"])
    access = [line for line in log.splitlines() if "/api/v1/audit_logs" in line]
    assert any(
        refused.headers["X-Request-ID"] in line
        and "GET /api/v1/audit_logs?api_key=REDACTED&per_page=5 HTTP/1.1" in line
        for line in access
    ), access
    assert any(
        listed.headers["X-Request-ID"] in line
        and "/api/v1/audit_logs?per_page=5&Access_Token=REDACTED&q=REDACTED" in line
        for line in access
    ), access
    assert canary not in log
    assert canary[4:] not in log
    assert world_a.keys["reader"] not in log
