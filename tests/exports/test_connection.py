"""The connection test against a real S3/STS server (moto with IAM enforcement)."""

import pytest

from exports.connection import export_connection_test
from exports.delivery import export_run
from exports.settings import export_settings_ensure

pytestmark = pytest.mark.django_db


def test_wrong_external_id_fails_at_assume_role(s3, configure, world_a):
    role = s3.create_role(external_id="someone-elses-id")
    config = configure(world_a.tenant, role_arn=role)
    test = export_connection_test(config=config)
    assert not test.ok
    assert test.steps[0]["step"] == "assume_role"
    assert test.steps[0]["code"] == "AccessDenied"
    assert "not allowed to assume this role" in test.message
    result = export_run(tenant_id=world_a.tenant.pk)
    assert result.status == "failed"
    assert "AccessDenied" in result.error


def test_connection_test_passes_and_writes_a_test_object(s3, configure, world_a):
    config = configure(world_a.tenant)
    test = export_connection_test(config=config)
    assert test.ok, test.message
    assert [s["step"] for s in test.steps] == [
        "assume_role",
        "assume_role_without_external_id",
        "put_object",
    ]
    assert s3.objects(f"{config.prefix}/connection-tests/")


def test_connection_test_names_the_failing_put(s3, configure, world_a):
    config = export_settings_ensure(tenant_id=world_a.tenant.pk)
    role = s3.create_role(external_id=config.external_id, prefix="elsewhere")
    config = configure(world_a.tenant, role_arn=role, prefix="mine")
    test = export_connection_test(config=config)
    assert not test.ok
    assert test.steps[-1]["step"] == "put_object"
    assert test.message == (
        "Failed at writing to the bucket: the role does not allow s3:PutObject on this bucket "
        "and prefix (AccessDenied)."
    )
