"""The export run against a real S3/STS server (moto with IAM enforcement)."""

import gzip
import json
from types import SimpleNamespace

import pytest
from django.core.exceptions import ValidationError

from auditlog.models import AuditLogEntry
from auditlog.serializers import entry_to_json
from exports import services
from exports.models import ExportBatch, ExportManifest, ExportState

from .helpers import add_entries, db_ids, exported_ids, verify, watermark

pytestmark = pytest.mark.django_db


def test_happy_path_exports_every_entry_once_with_the_wire_format(s3, configure, world_a):
    config = configure(world_a.tenant)
    result = services.export_run(tenant_id=world_a.tenant.pk)
    assert result.status == "ok", result.error
    ids = exported_ids(s3, config)
    # The configuration change itself is an entry; it may be just inside or after the cutoff.
    assert sorted(ids) == db_ids(world_a.tenant)[: len(ids)]
    assert len(ids) == len(set(ids)) == result.entries > 10
    root = services.full_key(config, services.tenant_root(world_a.tenant.pk))
    objects = s3.objects(root + "/")
    batch = ExportBatch.objects.get(tenant_id=world_a.tenant.pk)
    body = objects[services.full_key(config, batch.key)]
    first = json.loads(gzip.decompress(body).splitlines()[0])
    assert first == json.loads(json.dumps(entry_to_json(AuditLogEntry.objects.get(pk=first["id"]))))
    assert batch.key.startswith(f"audit-logs/tenant={world_a.tenant.pk}/")
    assert batch.key.endswith(f"/{1:012d}-{batch.first_id}-{batch.last_id}.ndjson.gz")
    report = verify(s3, config)
    assert report.ok, report.problems
    assert report.entries == len(ids)


def test_rerun_exports_nothing_new_but_still_writes_a_signed_manifest(s3, configure, world_a):
    config = configure(world_a.tenant)
    services.export_run(tenant_id=world_a.tenant.pk)
    services.export_run(tenant_id=world_a.tenant.pk)  # picks up the config-change entry
    again = services.export_run(tenant_id=world_a.tenant.pk)
    assert again.status == "ok"
    assert again.entries == 0
    assert ExportManifest.objects.filter(tenant_id=world_a.tenant.pk).count() == 3
    ids = exported_ids(s3, config)
    assert sorted(ids) == db_ids(world_a.tenant)
    report = verify(s3, config)
    assert report.ok, report.problems
    assert report.manifests == 3


def test_backlog_goes_out_in_bounded_objects(s3, configure, world_a, settings):
    settings.AUDIT_EXPORT_MAX_ENTRIES_PER_OBJECT = 7
    config = configure(world_a.tenant)
    add_entries(world_a.tenant, 30)
    result = services.export_run(tenant_id=world_a.tenant.pk)
    assert result.status == "ok", result.error
    counts = list(
        ExportBatch.objects.filter(tenant_id=world_a.tenant.pk).values_list("count", flat=True)
    )
    assert max(counts) == 7
    assert len(counts) == result.batches >= 5
    assert sorted(exported_ids(s3, config)) == db_ids(world_a.tenant)
    assert verify(s3, config).ok


def test_role_without_put_object_shows_the_error_loses_nothing_then_delivers_once(
    s3, configure, world_a, settings
):
    settings.AUDIT_EXPORT_MAX_ENTRIES_PER_OBJECT = 5
    config = services.export_settings_ensure(tenant_id=world_a.tenant.pk)
    no_put = s3.create_role(external_id=config.external_id, actions=("s3:GetObject",))
    config = configure(world_a.tenant, role_arn=no_put)
    failed = services.export_run(tenant_id=world_a.tenant.pk)
    assert failed.status == "failed"
    assert "does not allow s3:PutObject" in failed.error
    assert "AccessDenied" in failed.error
    state = ExportState.objects.get(tenant_id=world_a.tenant.pk)
    assert watermark(world_a.tenant) is None
    assert "AccessDenied" in state.last_error
    assert state.lease_token == ""
    assert exported_ids(s3, config) == []
    # The one frozen batch waits; nothing new is frozen while it is undelivered.
    assert ExportBatch.objects.filter(tenant_id=world_a.tenant.pk).count() == 1
    services.export_run(tenant_id=world_a.tenant.pk)
    assert ExportBatch.objects.filter(tenant_id=world_a.tenant.pk).count() == 1

    good = s3.create_role(external_id=config.external_id, prefix=config.prefix)
    config = services.export_settings_update(config=config, role_arn=good)
    fixed = services.export_run(tenant_id=world_a.tenant.pk)
    assert fixed.status == "ok", fixed.error
    services.export_run(tenant_id=world_a.tenant.pk)
    assert sorted(exported_ids(s3, config)) == db_ids(world_a.tenant)
    state.refresh_from_db()
    assert state.last_error == ""
    assert state.last_success_at is not None
    assert verify(s3, config).ok


def test_wrong_external_id_fails_at_assume_role(s3, configure, world_a):
    role = s3.create_role(external_id="someone-elses-id")
    config = configure(world_a.tenant, role_arn=role)
    test = services.export_connection_test(config=config)
    assert not test.ok
    assert test.steps[0]["step"] == "assume_role"
    assert test.steps[0]["code"] == "AccessDenied"
    assert "not allowed to assume this role" in test.message
    result = services.export_run(tenant_id=world_a.tenant.pk)
    assert result.status == "failed"
    assert "AccessDenied" in result.error


def test_role_assumable_without_external_id_is_refused(s3, world_a):
    config = services.export_settings_ensure(tenant_id=world_a.tenant.pk)
    open_role = s3.create_role(external_id=None)
    with pytest.raises(ValidationError) as error:
        services.export_settings_update(
            config=config, enabled=True, bucket=s3.bucket, region=s3.region, role_arn=open_role
        )
    assert "role_arn" in error.value.error_dict
    config.refresh_from_db()
    assert not config.enabled
    assert config.role_arn == ""
    config.role_arn, config.bucket, config.region = open_role, s3.bucket, s3.region
    test = services.export_connection_test(config=config)
    assert not test.ok
    assert [s["ok"] for s in test.steps] == [True, False]
    assert test.steps[1]["code"] == "ExternalIdNotRequired"


def test_enabling_is_refused_when_sts_cannot_be_asked(s3, world_a, monkeypatch):
    """A network failure proves nothing about the External ID: not saved, and said so."""
    config = services.export_settings_ensure(tenant_id=world_a.tenant.pk)
    role = s3.create_role(external_id=config.external_id)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens there
    with pytest.raises(ValidationError) as error:
        services.export_settings_update(
            config=config, enabled=True, bucket=s3.bucket, region=s3.region, role_arn=role
        )
    assert "Could not check" in str(error.value.error_dict["role_arn"])
    config.refresh_from_db()
    assert not config.enabled


def test_connection_test_passes_and_writes_a_test_object(s3, configure, world_a):
    config = configure(world_a.tenant)
    test = services.export_connection_test(config=config)
    assert test.ok, test.message
    assert [s["step"] for s in test.steps] == [
        "assume_role",
        "assume_role_without_external_id",
        "put_object",
    ]
    assert s3.objects(f"{config.prefix}/connection-tests/")


def test_connection_test_names_the_failing_put(s3, configure, world_a):
    config = services.export_settings_ensure(tenant_id=world_a.tenant.pk)
    role = s3.create_role(external_id=config.external_id, prefix="elsewhere")
    config = configure(world_a.tenant, role_arn=role, prefix="mine")
    test = services.export_connection_test(config=config)
    assert not test.ok
    assert test.steps[-1]["step"] == "put_object"
    assert test.message == (
        "Failed at writing to the bucket: the role does not allow s3:PutObject on this bucket "
        "and prefix (AccessDenied)."
    )


def test_a_run_holding_the_lease_makes_others_skip(s3, configure, world_a):
    configure(world_a.tenant)
    from django.utils import timezone

    token = services._claim(world_a.tenant.pk, timezone.now())
    assert token
    assert services.export_run(tenant_id=world_a.tenant.pk).status == "skipped"
    services._release(world_a.tenant.pk, token)
    assert services.export_run(tenant_id=world_a.tenant.pk).status == "ok"


def test_verifier_reports_deleted_altered_and_extra_objects(s3, configure, world_a, settings):
    settings.AUDIT_EXPORT_MAX_ENTRIES_PER_OBJECT = 4
    config = configure(world_a.tenant)
    add_entries(world_a.tenant, 12)
    services.export_run(tenant_id=world_a.tenant.pk)
    assert verify(s3, config).ok
    batches = list(ExportBatch.objects.filter(tenant_id=world_a.tenant.pk))
    admin = s3.admin("s3")
    deleted = services.full_key(config, batches[0].key)
    altered = services.full_key(config, batches[1].key)
    extra = services.full_key(config, f"{services.tenant_root(world_a.tenant.pk)}/2020/01/01/x.gz")
    admin.delete_object(Bucket=s3.bucket, Key=deleted)
    body = admin.get_object(Bucket=s3.bucket, Key=altered)["Body"].read()
    admin.put_object(Bucket=s3.bucket, Key=altered, Body=body + b"\x00")
    admin.put_object(Bucket=s3.bucket, Key=extra, Body=b"{}")
    problems = verify(s3, config).problems
    assert any(deleted in p and "missing" in p for p in problems), problems
    assert any(altered in p and "altered" in p for p in problems), problems
    assert any(extra in p and "extra object" in p for p in problems), problems
    assert len(problems) == 3


def test_verifier_reports_a_missing_manifest(s3, configure, world_a):
    config = configure(world_a.tenant)
    for _ in range(3):
        services.export_run(tenant_id=world_a.tenant.pk)
    second = ExportManifest.objects.get(tenant_id=world_a.tenant.pk, seq=2)
    s3.admin("s3").delete_object(Bucket=s3.bucket, Key=services.full_key(config, second.key))
    problems = verify(s3, config).problems
    assert any("manifest 2 is missing" in p for p in problems), problems


def test_a_new_destination_gets_the_whole_history_and_a_chain_of_its_own(
    s3, configure, world_a, settings
):
    settings.AUDIT_EXPORT_MAX_ENTRIES_PER_OBJECT = 5
    tenant = world_a.tenant
    config = configure(tenant, prefix="first")
    first_role = config.role_arn
    first = SimpleNamespace(tenant_id=tenant.pk, prefix="first")
    add_entries(tenant, 8)
    for _ in range(2):
        assert services.export_run(tenant_id=tenant.pk).status == "ok"
    assert sorted(exported_ids(s3, first)) == db_ids(tenant)

    second_role = s3.create_role(external_id=config.external_id, prefix="second")
    config = services.export_settings_update(config=config, prefix="second", role_arn=second_role)
    add_entries(tenant, 3)
    for _ in range(2):
        assert services.export_run(tenant_id=tenant.pk).status == "ok"
    ids = exported_ids(s3, config)
    assert len(ids) == len(set(ids))
    assert sorted(ids) == db_ids(tenant)  # the whole history, not only what came after
    report = verify(s3, config)
    assert report.ok, report.problems
    assert report.manifests == 2
    seqs = ExportBatch.objects.filter(stream__prefix="second").values_list("seq", flat=True)
    assert sorted(seqs)[0] == 1
    # The first destination is left as it was: complete up to its last manifest.
    assert verify(s3, first).ok
    assert len(exported_ids(s3, first)) < len(ids)

    # Back to the first destination: its stream resumes where it stopped, nothing twice.
    config = services.export_settings_update(config=config, prefix="first", role_arn=first_role)
    for _ in range(2):
        assert services.export_run(tenant_id=tenant.pk).status == "ok"
    ids = exported_ids(s3, first)
    assert len(ids) == len(set(ids))
    assert sorted(ids) == db_ids(tenant)
    report = verify(s3, first)
    assert report.ok, report.problems
    assert report.manifests == 4
