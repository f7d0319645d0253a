"""What the access log keeps of a request line (audit_project/accesslog.py); the real gunicorn
run is in tests/test_production_server.py."""

from datetime import timedelta
from types import SimpleNamespace

import pytest
from gunicorn.config import Config

from audit_project.accesslog import API_KEY_PREFIX, RedactingLogger, redacted_query, redacted_url
from tenants.models import ApiKey


@pytest.mark.parametrize(
    ("line", "logged"),
    [
        (
            "GET /api/v1/audit_logs?api_key=tak_x&per_page=5 HTTP/1.1",
            "GET /api/v1/audit_logs?api_key=REDACTED&per_page=5 HTTP/1.1",
        ),
        (
            "GET /x?TOKEN=1&Password=2&client_secret=3&sig=4&design=5",
            "GET /x?TOKEN=REDACTED&Password=REDACTED&client_secret=REDACTED&sig=REDACTED&design=5",
        ),
        (
            "GET /x?sessionid=1&auth=2&x_signature=3 HTTP/1.0",
            "GET /x?sessionid=REDACTED&auth=REDACTED&x_signature=REDACTED HTTP/1.0",
        ),
        # Encoded names and keys under an innocent name, or with no name at all.
        (
            "GET /x?api%5Fkey=1&q=tak_2&%74ak_3 HTTP/1.1",
            "GET /x?api%5Fkey=REDACTED&q=REDACTED&REDACTED HTTP/1.1",
        ),
        (
            "GET /api/v1/audit_logs?per_page=5&operation_name=Login HTTP/1.1",
            "GET /api/v1/audit_logs?per_page=5&operation_name=Login HTTP/1.1",
        ),
        ("GET /settings/audit-logs/ HTTP/1.1", "GET /settings/audit-logs/ HTTP/1.1"),
        ("https://example.test/x?key=1#frag", "https://example.test/x?key=REDACTED#frag"),
    ],
)
def test_request_lines_lose_secret_values_only(line, logged):
    assert redacted_url(line) == logged


def test_a_bare_query_string_is_redacted_too():
    assert redacted_query("credential=1&page=2") == "credential=REDACTED&page=2"


def test_the_key_prefix_is_the_api_keys():
    assert API_KEY_PREFIX == ApiKey.PREFIX


def test_no_atom_holds_a_key_sent_in_the_url_or_a_header():
    """Whatever atoms a log format names: request line, query, referer, headers, environ."""
    logger = RedactingLogger(Config())
    key = "tak_canary" + "0" * 32
    query = f"per_page=5&api_key={key}&x={key}"
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": f"/api/v1/audit_logs?{query}",
        "PATH_INFO": "/api/v1/audit_logs",
        "QUERY_STRING": query,
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_REFERER": f"https://app.example/settings/?token={key}",
        "HTTP_AUTHORIZATION": f"Bearer {key}",
        "HTTP_COOKIE": f"sessionid={key}",
    }
    request = SimpleNamespace(
        headers=[("AUTHORIZATION", f"Bearer {key}"), ("COOKIE", f"sessionid={key}")]
    )
    response = SimpleNamespace(status="401 Unauthorized", headers=[], sent=0)
    atoms = logger.atoms(response, request, environ, timedelta(milliseconds=3))
    assert key not in repr(atoms)
    assert atoms["r"] == ("GET /api/v1/audit_logs?per_page=5&api_key=REDACTED&x=REDACTED HTTP/1.1")
    assert atoms["U"] == "/api/v1/audit_logs"
