"""The export settings page (owners): test what the form holds, export now, read-only status."""

import html

import pytest
from django.urls import reverse

from auditlog.models import AuditLogEntry
from exports.models import ExportSettings

from .. import factories

pytestmark = pytest.mark.django_db

URL = "/settings/audit-logs/export/"


@pytest.fixture
def owner(client, world_a):
    client.login(email=world_a.owner.email, password=factories.PASSWORD)
    return client


def input_tag(page, name: str) -> str:
    """The form's ``<input name=...>`` tag in the rendered page."""
    text = page.content.decode()
    start = text.index(f'name="{name}"')
    return text[text.rindex("<input", 0, start) : text.index(">", start) + 1]


def field_value(page, name: str) -> str:
    """The value the page's input ``name`` holds."""
    tag = input_tag(page, name)
    return html.unescape(tag.split('value="', 1)[1].split('"', 1)[0]) if 'value="' in tag else ""


def test_test_connection_tests_the_form_without_saving_it_and_keeps_it(owner, world_a, s3):
    assert reverse("audit_log_export_settings") == URL
    owner.get(URL)
    config = ExportSettings.objects.get(tenant_id=world_a.tenant.pk)
    role = s3.create_role(external_id=config.external_id, prefix="typed")
    typed = {"bucket": s3.bucket, "region": s3.region, "prefix": "typed", "role_arn": role}
    changes = AuditLogEntry.objects.filter(operation_name="AuditLogExportConfigurationChange")

    tested = owner.post(URL, {"action": "test", "enabled": "on", **typed})

    assert tested.status_code == 200
    text = tested.content.decode()
    assert "Connection works" in text
    assert "Tested the values in the form; they are not saved yet." in text
    assert s3.objects("typed/connection-tests/")  # the typed destination was written to
    for name, value in typed.items():
        assert field_value(tested, name) == value
    assert " checked" in input_tag(tested, "enabled")
    # The permission policy follows the typed bucket and prefix.
    assert f"arn:aws:s3:::{s3.bucket}/typed/*" in text
    # Nothing was saved, nothing recorded.
    config.refresh_from_db()
    assert (config.enabled, config.bucket, config.prefix, config.role_arn) == (False, "", "", "")
    assert not changes.exists()


def test_test_connection_with_invalid_values_names_them_and_keeps_them(owner, world_a):
    tested = owner.post(URL, {"action": "test", "bucket": "Bad_Bucket", "region": "us-east-1"})
    assert tested.status_code == 400
    assert 'id="bucket-error"' in tested.content.decode()
    assert field_value(tested, "bucket") == "Bad_Bucket"
    assert field_value(tested, "region") == "us-east-1"
    assert "Connection works" not in tested.content.decode()


def test_a_saved_destination_shows_in_the_policy(owner, world_a, s3):
    owner.get(URL)
    config = ExportSettings.objects.get(tenant_id=world_a.tenant.pk)
    assert "arn:aws:s3:::&lt;bucket&gt;/*" in owner.get(URL).content.decode()
    role = s3.create_role(external_id=config.external_id, prefix="acme")
    form = {"bucket": s3.bucket, "region": s3.region, "prefix": "acme", "role_arn": role}
    assert owner.post(URL, {"action": "save", "enabled": "on", **form}).status_code == 302
    page = owner.get(URL)
    assert f"arn:aws:s3:::{s3.bucket}/acme/*" in page.content.decode()
    assert field_value(page, "prefix") == "acme"
