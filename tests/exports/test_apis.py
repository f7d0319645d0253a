"""The export settings API and page: owners only, field errors, every change audited."""

import pytest
from django.urls import reverse

from auditlog.models import AuditLogEntry
from exports import manifests
from exports.models import ExportSettings

from .. import factories

pytestmark = pytest.mark.django_db

URL = "/api/v1/audit_logs/export_settings"


def as_user(api, world, who="owner"):
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {world.keys[who]}")
    return api


@pytest.mark.parametrize("who", ["reader", "member"])
def test_non_owners_get_403_everywhere_but_the_readers_status_page(api, world_a, client, who):
    as_user(api, world_a, who)
    assert api.get(URL).status_code == 403
    assert api.put(URL, {"bucket": "x"}, format="json").status_code == 403
    assert api.post(f"{URL}/test").status_code == 403
    assert api.post(f"{URL}/regenerate_external_id").status_code == 403
    assert api.get("/api/v1/audit_logs/export_public_key").status_code == 403
    user = getattr(world_a, who)
    client.login(email=user.email, password=factories.PASSWORD)
    page = reverse("audit_log_export_settings")
    # A reader of the audit log sees the export's status (tests/exports/test_views.py).
    assert client.get(page).status_code == (200 if who == "reader" else 403)
    assert client.post(page, {"action": "save", "bucket": "x"}).status_code == 403
    assert not ExportSettings.objects.exists()


def test_anonymous_is_refused(api, client, db):
    assert api.get(URL).status_code in (401, 403)
    response = client.get("/settings/audit-logs/export/")
    assert response.status_code == 302


def test_owner_reads_settings_with_policies_and_status(api, world_a):
    response = as_user(api, world_a).get(URL)
    assert response.status_code == 200
    body = response.json()
    assert body["enabled"] is False
    assert len(body["external_id"]) >= 32
    condition = body["trust_policy"]["Statement"][0]["Condition"]
    assert condition == {"StringEquals": {"sts:ExternalId": body["external_id"]}}
    assert body["trust_policy"]["Statement"][0]["Principal"] == {
        "AWS": "arn:aws:iam::123456789012:root"
    }
    assert body["permission_policy"]["Statement"] == [
        {"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::<bucket>/*"}
    ]
    assert set(body["status"]) >= {
        "last_success_at",
        "last_attempt_at",
        "last_error",
        "backlog_count",
        "backlog_oldest_at",
    }
    assert body["status"]["backlog_count"] > 0
    assert as_user(api, world_a).get(URL + "/").status_code == 200


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("bucket", "Not_A_Bucket"),
        ("bucket", "ab"),
        ("bucket", "192.168.1.1"),
        ("region", "mars-1"),
        ("role_arn", "arn:aws:iam::12345:user/bob"),
        ("prefix", "../etc"),
        ("prefix", "bad prefix"),
    ],
)
def test_invalid_fields_are_400s_naming_the_field(api, world_a, field, value):
    response = as_user(api, world_a).put(URL, {field: value}, format="json")
    assert response.status_code == 400
    assert field in response.json()


def test_static_keys_and_unknown_fields_are_refused(api, world_a):
    response = as_user(api, world_a).put(
        URL, {"aws_secret_access_key": "x", "colour": "red"}, format="json"
    )
    assert response.status_code == 400
    assert "never accepted" in response.json()["aws_secret_access_key"][0]
    assert "colour" in response.json()


def test_enabling_needs_bucket_region_and_role(api, world_a):
    response = as_user(api, world_a).put(URL, {"enabled": True}, format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"bucket", "region", "role_arn"}


def test_config_changes_are_audited(api, world_a, s3):
    owner_api = as_user(api, world_a)
    external_id = owner_api.get(URL).json()["external_id"]
    role = s3.create_role(external_id=external_id, prefix="acme")
    response = owner_api.put(
        URL,
        {
            "enabled": True,
            "bucket": s3.bucket,
            "region": s3.region,
            "prefix": "/acme/",
            "role_arn": role,
        },
        format="json",
    )
    assert response.status_code == 200, response.json()
    assert response.json()["prefix"] == "acme"
    regenerated = owner_api.post(f"{URL}/regenerate_external_id")
    assert regenerated.status_code == 200
    assert regenerated.json()["external_id"] != external_id
    assert regenerated.json()["enabled"] is False
    entries = list(
        AuditLogEntry.objects.filter(
            tenant_id=world_a.tenant.pk, operation_name="AuditLogExportConfigurationChange"
        ).order_by("id")
    )
    assert len(entries) == 2  # configured, regenerated (reading them first was no change)
    assert all(e.user_id == world_a.owner.pk and e.actor_type == "api_key" for e in entries)
    assert entries[0].changes["bucket"] == ["", s3.bucket]
    assert entries[0].changes["enabled"] == [False, True]
    assert entries[0].changes["prefix"] == ["", "acme"]
    assert entries[1].changes["external_id"][0] == external_id


def test_reading_the_settings_for_the_first_time_records_nothing(api, client, world_a):
    tenant_entries = AuditLogEntry.objects.filter(tenant_id=world_a.tenant.pk)
    client.login(email=world_a.owner.email, password=factories.PASSWORD)
    before = tenant_entries.count()
    page = client.get(reverse("audit_log_export_settings"))
    assert page.status_code == 200
    assert tenant_entries.count() == before
    # The External ID is issued once, on that first read, and shown the same from then on.
    external_id = ExportSettings.objects.get(tenant_id=world_a.tenant.pk).external_id
    assert external_id in page.content.decode()
    assert as_user(api, world_a).get(URL).json()["external_id"] == external_id
    assert external_id in client.get(reverse("audit_log_export_settings")).content.decode()
    assert not tenant_entries.filter(operation_name="AuditLogExportConfigurationChange").exists()


def test_saving_a_role_assumable_without_external_id_is_refused(api, world_a, s3):
    role = s3.create_role(external_id=None)
    response = as_user(api, world_a).put(
        URL,
        {"enabled": True, "bucket": s3.bucket, "region": s3.region, "role_arn": role},
        format="json",
    )
    assert response.status_code == 400
    assert "without the External ID" in response.json()["role_arn"][0]
    assert not ExportSettings.objects.filter(enabled=True).exists()


def test_connection_test_api(api, world_a, s3):
    owner_api = as_user(api, world_a)
    external_id = owner_api.get(URL).json()["external_id"]
    role = s3.create_role(external_id=external_id)
    owner_api.put(
        URL,
        {"enabled": True, "bucket": s3.bucket, "region": s3.region, "role_arn": role},
        format="json",
    )
    body = owner_api.post(f"{URL}/test").json()
    assert body["ok"] is True, body
    assert [s["ok"] for s in body["steps"]] == [True, True, True]


def test_public_key_endpoint(api, world_a):
    body = as_user(api, world_a).get("/api/v1/audit_logs/export_public_key").json()
    assert body["public_key"] == manifests.public_key_b64()
    assert body["algorithm"] == "Ed25519"


def test_settings_page_shows_form_errors_policies_and_test_result(client, world_a, s3):
    client.login(email=world_a.owner.email, password=factories.PASSWORD)
    url = reverse("audit_log_export_settings")
    assert url == "/settings/audit-logs/export/"
    page = client.get(url)
    assert page.status_code == 200
    config = ExportSettings.objects.get(tenant_id=world_a.tenant.pk)
    html = page.content.decode()
    assert config.external_id in html
    assert "sts:ExternalId" in html
    assert "s3:PutObject" in html
    assert manifests.public_key_b64() in html

    bad = client.post(url, {"action": "save", "bucket": "Bad_Bucket", "region": "x"})
    assert bad.status_code == 400
    assert 'id="bucket-error"' in bad.content.decode()
    assert 'id="region-error"' in bad.content.decode()

    role = s3.create_role(external_id=config.external_id, actions=("s3:GetObject",))
    form = {"enabled": "on", "bucket": s3.bucket, "region": s3.region, "role_arn": role}
    saved = client.post(url, {"action": "save", **form})
    assert saved.status_code == 302
    tested = client.post(url, {"action": "test", **form})
    assert "Failed at writing to the bucket" in tested.content.decode()
    assert "AccessDenied" in tested.content.decode()
