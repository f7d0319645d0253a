"""The export settings page (owners): test what the form holds, export now, read-only status."""

import html

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from auditlog.models import AuditLogEntry
from exports import delivery, views
from exports.models import ExportBatch, ExportSettings, ExportState

from .. import factories
from .helpers import db_ids, exported_ids, verify

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


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def test_export_now_runs_the_beat_task_and_lists_its_objects(
    owner, world_a, s3, configure, worker_in_process
):
    config = configure(world_a.tenant)
    before = owner.get(URL).content.decode()
    assert "Nothing exported yet." in before
    assert 'value="export"' in before

    done = owner.post(URL, {"action": "export"}, follow=True)

    assert done.redirect_chain == [(URL, 302)]
    assert messages_of(done) == [views.EXPORT_QUEUED]
    batches = ExportBatch.objects.filter(tenant_id=world_a.tenant.pk)
    assert batches.exists()
    text = done.content.decode()
    for batch in batches:  # where each object is in the bucket
        assert f"<code>s3://{s3.bucket}/{config.prefix}/{batch.key}</code>" in text
    ids = exported_ids(s3, config)
    assert ids
    assert sorted(ids) == db_ids(world_a.tenant)[: len(ids)]
    assert verify(s3, config).ok


def test_export_now_is_refused_while_a_run_holds_the_lease(
    owner, world_a, s3, configure, worker_in_process
):
    configure(world_a.tenant)
    token = delivery._claim(world_a.tenant.pk, timezone.now())
    page = owner.get(URL).content.decode()
    assert 'id="running">yes, since' in page

    refused = owner.post(URL, {"action": "export"}, follow=True)

    (message,) = messages_of(refused)
    assert message.startswith("An export of this tenant is running (it started at ")
    assert 'class="error"' in refused.content.decode()
    assert not ExportBatch.objects.filter(tenant_id=world_a.tenant.pk).exists()
    delivery._release(world_a.tenant.pk, token)
    owner.post(URL, {"action": "export"})
    assert ExportBatch.objects.filter(tenant_id=world_a.tenant.pk).exists()


def test_export_now_is_refused_while_the_export_is_off(owner, world_a, worker_in_process):
    assert "disabled" in owner.get(URL).content.decode().split('value="export"')[1][:20]
    refused = owner.post(URL, {"action": "export"}, follow=True)
    assert messages_of(refused) == ["The export is off: switch it on and save the settings first."]
    assert not ExportBatch.objects.exists()


def test_export_now_needs_an_owner_and_the_csrf_token(world_a, s3, configure, worker_in_process):
    configure(world_a.tenant)
    for user in (world_a.reader, world_a.member):
        client = Client()
        client.login(email=user.email, password=factories.PASSWORD)
        assert client.post(URL, {"action": "export"}).status_code == 403
    forged = Client(enforce_csrf_checks=True)
    forged.login(email=world_a.owner.email, password=factories.PASSWORD)
    assert forged.post(URL, {"action": "export"}).status_code == 403
    assert not ExportBatch.objects.exists()


def test_a_reader_sees_the_status_read_only_and_nothing_of_the_role(
    client, world_a, world_b, s3, configure
):
    config = configure(world_a.tenant, prefix="acme")
    ExportState.objects.update_or_create(
        tenant_id=world_a.tenant.pk,
        defaults={"last_error": f"AWS refused {config.role_arn} (AccessDenied)"},
    )
    client.login(email=world_a.reader.email, password=factories.PASSWORD)

    page = client.get(URL)

    assert page.status_code == 200
    assert page.templates[0].name == "exports/status.html"
    text = page.content.decode()
    assert 'id="export-state">On, every 15 minutes' in text
    assert f"s3://{s3.bucket}/acme/" in text
    assert "the last attempt failed" in text
    for hidden in (config.role_arn, config.external_id, "sts:ExternalId", "AccessDenied"):
        assert hidden not in text
    assert "<form" not in text.split("<main", 1)[1].split("</main>", 1)[0]  # nothing to submit
    assert client.post(URL, {"action": "export"}).status_code == 403


def test_a_readers_status_is_their_tenants_and_creates_nothing(client, world_a, world_b, configure):
    configure(world_a.tenant, prefix="acme")
    client.login(email=world_b.reader.email, password=factories.PASSWORD)
    text = client.get(URL).content.decode()
    assert 'id="export-state">Off' in text
    assert 'id="destination">none yet' in text
    assert "acme" not in text
    assert not ExportSettings.objects.filter(tenant_id=world_b.tenant.pk).exists()
