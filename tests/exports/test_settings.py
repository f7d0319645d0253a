"""The export settings: only changes are entries; an unsafe role is refused by a real STS."""

import json

import pytest
from django.core.exceptions import ValidationError

from auditlog.models import AuditLogEntry
from exports import selectors
from exports.connection import export_connection_test
from exports.models import ExportSettings
from exports.settings import export_settings_ensure, export_settings_update

pytestmark = pytest.mark.django_db


def test_role_assumable_without_external_id_is_refused(s3, world_a):
    config = export_settings_ensure(tenant_id=world_a.tenant.pk)
    open_role = s3.create_role(external_id=None)
    with pytest.raises(ValidationError) as error:
        export_settings_update(
            config=config, enabled=True, bucket=s3.bucket, region=s3.region, role_arn=open_role
        )
    assert "role_arn" in error.value.error_dict
    config.refresh_from_db()
    assert not config.enabled
    assert config.role_arn == ""
    config.role_arn, config.bucket, config.region = open_role, s3.bucket, s3.region
    test = export_connection_test(config=config)
    assert not test.ok
    assert [s["ok"] for s in test.steps] == [True, False]
    assert test.steps[1]["code"] == "ExternalIdNotRequired"


def test_enabling_is_refused_when_sts_cannot_be_asked(s3, world_a, monkeypatch):
    """A network failure proves nothing about the External ID: not saved, and said so."""
    config = export_settings_ensure(tenant_id=world_a.tenant.pk)
    role = s3.create_role(external_id=config.external_id)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens there
    with pytest.raises(ValidationError) as error:
        export_settings_update(
            config=config, enabled=True, bucket=s3.bucket, region=s3.region, role_arn=role
        )
    assert "Could not check" in str(error.value.error_dict["role_arn"])
    config.refresh_from_db()
    assert not config.enabled


def test_creating_the_settings_is_no_entry_on_any_path_but_changing_them_is(world_a, world_b):
    """Save and bulk_create alike: a row with the defaults is nobody's change."""
    entries = AuditLogEntry.objects.filter(operation_name="AuditLogExportConfigurationChange")
    config = export_settings_ensure(tenant_id=world_a.tenant.pk)
    (other,) = ExportSettings.objects.bulk_create([ExportSettings(tenant_id=world_b.tenant.pk)])
    assert not entries.exists()
    export_settings_update(config=config, bucket="acme-audit")
    ExportSettings.objects.filter(pk=other.pk).update(prefix="globex")
    assert sorted((e.tenant_id, json.dumps(e.changes)) for e in entries) == sorted(
        [
            (world_a.tenant.pk, json.dumps({"bucket": ["", "acme-audit"]})),
            (world_b.tenant.pk, json.dumps({"prefix": ["", "globex"]})),
        ]
    )


def test_two_first_reads_at_once_get_the_one_row(world_a, monkeypatch):
    """The other read inserted the row between this read's look-up and its insert."""
    theirs = export_settings_ensure(tenant_id=world_a.tenant.pk)
    look_up = selectors.export_settings_get
    calls = []

    def first_look_misses_it(*, tenant_id):
        calls.append(tenant_id)
        return None if len(calls) == 1 else look_up(tenant_id=tenant_id)

    monkeypatch.setattr(selectors, "export_settings_get", first_look_misses_it)
    mine = export_settings_ensure(tenant_id=world_a.tenant.pk)
    assert len(calls) == 2
    assert (mine.pk, mine.external_id) == (theirs.pk, theirs.external_id)
