"""What scripts/run sets up for the export (scripts/local_export.py), used as a newcomer would.

A role per tenant in the S3/STS stand-in, made from the page's own policies; pasting what
it prints, then saving, testing, exporting now and verifying the bucket all work.
"""

import pytest
from botocore.exceptions import ClientError
from django.core.management import call_command

from exports import aws
from exports.models import ExportBatch, ExportSettings
from scripts import local_export

from . import factories

pytestmark = pytest.mark.django_db

PAGE = "/settings/audit-logs/export/"


def test_pasting_what_the_local_run_prints_exports_and_verifies(
    s3, world_a, world_b, client, worker_in_process, monkeypatch, capsys
):
    found = local_export.destinations(s3.info)

    assert [d["tenant_id"] for d in found] == [world_a.tenant.pk, world_b.tenant.pk]
    acme = found[0]
    assert acme["prefix"] == "acme"
    assert acme["role_arn"] == (
        f"arn:aws:iam::{s3.account}:role/audit-log-export-tenant-{world_a.tenant.pk}"
    )
    text = local_export.instructions(s3.info, found)
    for value in (acme["bucket"], acme["region"], acme["prefix"], acme["role_arn"]):
        assert value in text
    assert f"--prefix acme --tenant {world_a.tenant.pk}" in text
    assert s3.info["reader"]["AccessKeyId"] in text
    # Nothing is saved for the tenants: pasting and saving is the owner's to do.
    assert not ExportSettings.objects.exclude(bucket="").exists()

    paste = {k: acme[k] for k in ("bucket", "region", "prefix", "role_arn")}
    client.login(email=world_a.owner.email, password=factories.PASSWORD)
    assert "Connection works" in client.post(PAGE, {"action": "test", **paste}).content.decode()
    # Saving enables only if STS refuses the role without the External ID: it does.
    assert client.post(PAGE, {"action": "save", "enabled": "on", **paste}).status_code == 302
    assert client.post(PAGE, {"action": "export"}).status_code == 302
    assert ExportBatch.objects.filter(tenant_id=world_a.tenant.pk, delivered_at__isnull=False)

    # The role may put objects under its tenant's prefix, and nothing else.
    credentials = aws.assume_role(
        role_arn=acme["role_arn"],
        external_id=ExportSettings.objects.get(tenant_id=world_a.tenant.pk).external_id,
        region=acme["region"],
        cached=False,
    )
    as_role = aws.s3_client(credentials, acme["region"])
    for call in (
        lambda: as_role.list_objects_v2(Bucket=acme["bucket"]),
        lambda: as_role.put_object(Bucket=acme["bucket"], Key="globex/x", Body=b"x"),
    ):
        with pytest.raises(ClientError, match="AccessDenied"):
            call()

    # The tenant's check of its bucket, with the read-only keys the local run prints.
    reader = s3.info["reader"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", reader["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", reader["SecretAccessKey"])
    call_command(
        "verify_audit_export",
        bucket=acme["bucket"],
        region=acme["region"],
        prefix=acme["prefix"],
        tenant=world_a.tenant.pk,
    )
    assert "OK: the chain is intact" in capsys.readouterr().out
