"""Bodies the APIs cannot take: too deeply nested, too large. Always a JSON 4xx, never a 500
or Django's HTML page, and nothing is written."""

import json
from urllib.parse import urlencode

import pytest
from django.conf import settings

from auditlog.models import AuditLogEntry
from auditlog.parsers import MAX_DEPTH
from tenants.models import Team

pytestmark = pytest.mark.django_db

# Endpoints that read a JSON body, in the domain API and under /api/v1/audit_logs.
WRITES = [
    ("post", "/api/v1/teams/"),
    ("patch", "/api/v1/tenant/"),
    ("put", "/api/v1/audit_logs/export_settings"),
]


@pytest.fixture
def owner_api(api, world_a):
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {world_a.keys['owner']}")
    api.get("/api/v1/teams/")  # the key's first use is recorded now, not in the tests below
    return api


def nested(depth: int) -> str:
    """A team whose JSON body nests ``depth`` levels (the body itself is the first)."""
    return json.dumps({"name": "Deep", "x": json.loads("[" * (depth - 1) + "]" * (depth - 1))})


def send(api, method: str, url: str, body: str | bytes, content_type="application/json"):
    return api.generic(method.upper(), url, body, content_type=content_type)


@pytest.mark.parametrize(("method", "url"), WRITES)
@pytest.mark.parametrize(
    "body", ["[" * 100_000, '{"name": ' + "[" * 5_000, nested(MAX_DEPTH + 1)], ids=str.__len__
)
def test_too_deeply_nested_json_is_a_400(owner_api, method, url, body):
    entries = AuditLogEntry.objects.count()
    response = send(owner_api, method, url, body)
    assert response.status_code == 400, response.content
    assert response.json() == {
        "detail": f"JSON parse error - nested more than {MAX_DEPTH} levels deep."
    }
    assert AuditLogEntry.objects.count() == entries


def test_nesting_up_to_the_limit_is_parsed(owner_api):
    response = send(owner_api, "post", "/api/v1/teams/", nested(MAX_DEPTH))
    assert response.status_code == 201, response.content
    assert Team.objects.filter(name="Deep").exists()


def test_malformed_json_is_still_a_400(owner_api):
    response = send(owner_api, "post", "/api/v1/teams/", '{"name": "unterminated')
    assert response.status_code == 400
    assert response.json()["detail"].startswith("JSON parse error")


@pytest.mark.parametrize(("method", "url"), WRITES)
@pytest.mark.parametrize("content_type", ["application/json", "application/x-www-form-urlencoded"])
def test_body_over_the_upload_limit_is_a_413_with_errors(owner_api, method, url, content_type):
    description = "x" * settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    fields = {"name": "Too big", "description": description}
    body = json.dumps(fields) if content_type == "application/json" else urlencode(fields)
    entries = AuditLogEntry.objects.count()
    response = send(owner_api, method, url, body, content_type)
    assert response.status_code == 413, response.content[:300]
    assert response["Content-Type"] == "application/json"
    limit = f"{settings.DATA_UPLOAD_MAX_MEMORY_SIZE:,}"
    assert response.json() == {
        "errors": [
            {
                "message": "Request body too large",
                "details": f"A request body may be at most {limit} bytes.",
            }
        ]
    }
    assert AuditLogEntry.objects.count() == entries
    assert not Team.objects.filter(name="Too big").exists()
