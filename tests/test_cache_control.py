"""No answer that carries audit data or settings may be kept by a browser or proxy cache."""

import pytest
from django.urls import reverse

from auditlog.models import AuditLogEntry


@pytest.mark.parametrize(
    ("who", "url"),
    [
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
