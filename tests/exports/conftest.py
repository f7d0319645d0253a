"""Export fixtures; the S3/STS stand-in itself (``s3_server``, ``s3``) is ``tests/s3.py``."""

import uuid

import pytest

from exports.settings import export_settings_ensure, export_settings_update


@pytest.fixture
def configure(s3):
    """Enable a tenant's export to the test bucket through a fresh PutObject-only role."""

    def configure(tenant, *, prefix: str | None = None, role_arn: str | None = None, **kw):
        prefix = prefix if prefix is not None else f"t{uuid.uuid4().hex[:8]}"
        config = export_settings_ensure(tenant_id=tenant.pk)
        role_arn = role_arn or s3.create_role(external_id=config.external_id, prefix=prefix)
        return export_settings_update(
            config=config,
            enabled=True,
            bucket=s3.bucket,
            region=s3.region,
            prefix=prefix,
            role_arn=role_arn,
            **kw,
        )

    return configure
