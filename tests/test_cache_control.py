"""No answer that carries audit data or settings may be kept by a browser or proxy cache."""

import pytest
from django.urls import reverse

from auditlog.models import AuditLogEntry


@pytest.mark.parametrize(
    ("who", "url"),
    [
        ("reader", lambda entry: reverse("home")),
        ("reader", lambda entry: reverse("settings")),
        ("reader", lambda entry: reverse("audit_logs")),
        ("reader", lambda entry: reverse("audit_log_detail", args=[entry.pk])),
        ("reader", lambda entry: reverse("audit_log_download")),
        ("reader", lambda entry: reverse("audit_log_export_settings")),
        ("owner", lambda entry: reverse("audit_log_export_settings")),
        ("reader", lambda entry: "/api/v1/audit_logs"),
        ("owner", lambda entry: "/api/v1/audit_logs/export_settings"),
        ("owner", lambda entry: "/api/v1/tenant/"),
        ("owner", lambda entry: "/admin/auditlog/auditlogentry/"),
    ],
)
def test_audit_pages_and_apis_are_no_store(client, world_a, who, url):
    entry = AuditLogEntry.objects.filter(tenant=world_a.tenant).latest("id")
    client.force_login(getattr(world_a, who))
    response = client.get(url(entry))
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]


def test_an_error_answer_is_no_store_too(client, world_a):
    client.force_login(world_a.member)
    response = client.get(reverse("audit_logs"))
    assert response.status_code == 403
    assert "no-store" in response["Cache-Control"]


@pytest.mark.parametrize(
    ("who", "path"),
    [
        ("reader", "/api/v1/audit_logs?per_page=5"),
        ("reader", "/api/v1/audit_logs/{entry}"),
        ("reader", "/api/v1/audit_logs/operations"),
        ("owner", "/api/v1/audit_logs/export_public_key"),
        ("owner", "/api/v1/users/"),
        ("owner", "/api/v1/credentials/"),
        ("owner", "/api/v1/api_keys/"),
        ("owner", "/api/v1/teams/"),
    ],
)
def test_every_api_answer_to_a_key_is_no_store(client, world_a, who, path):
    entry = AuditLogEntry.objects.filter(tenant=world_a.tenant).latest("id")
    response = client.get(
        path.format(entry=entry.pk), HTTP_AUTHORIZATION=f"Bearer {world_a.keys[who]}"
    )
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    ("who", "path", "status"),
    [
        ("anonymous", "/api/v1/audit_logs", 401),
        ("anonymous", "/settings/audit-logs/", 302),
        ("member", "/api/v1/audit_logs", 403),
        ("reader", "/api/v1/audit_logs/987654321", 404),
        ("reader", "/api/v1/audit_logs?per_page=abc", 400),
    ],
)
def test_refusals_are_no_store(client, world_a, who, path, status):
    headers = {} if who == "anonymous" else {"HTTP_AUTHORIZATION": f"Bearer {world_a.keys[who]}"}
    response = client.get(path, **headers)
    assert response.status_code == status
    assert response["Cache-Control"] == "no-store"
