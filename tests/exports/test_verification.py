"""The verifier finds deleted, altered and extra objects and missing manifests in a bucket."""

import pytest

from exports import layout
from exports.delivery import export_run
from exports.models import ExportBatch, ExportManifest

from .helpers import add_entries, verify

pytestmark = pytest.mark.django_db


def test_verifier_reports_deleted_altered_and_extra_objects(s3, configure, world_a, settings):
    settings.AUDIT_EXPORT_MAX_ENTRIES_PER_OBJECT = 4
    config = configure(world_a.tenant)
    add_entries(world_a.tenant, 12)
    export_run(tenant_id=world_a.tenant.pk)
    assert verify(s3, config).ok
    batches = list(ExportBatch.objects.filter(tenant_id=world_a.tenant.pk))
    admin = s3.admin("s3")
    deleted = layout.full_key(config, batches[0].key)
    altered = layout.full_key(config, batches[1].key)
    extra = layout.full_key(config, f"{layout.tenant_root(world_a.tenant.pk)}/2020/01/01/x.gz")
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
        export_run(tenant_id=world_a.tenant.pk)
    second = ExportManifest.objects.get(tenant_id=world_a.tenant.pk, seq=2)
    s3.admin("s3").delete_object(Bucket=s3.bucket, Key=layout.full_key(config, second.key))
    problems = verify(s3, config).problems
    assert any("manifest 2 is missing" in p for p in problems), problems
