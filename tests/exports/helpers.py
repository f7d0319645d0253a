"""Shared checks of the export tests."""

import gzip
import json

from auditlog.models import AuditLogEntry
from auditlog.services import record
from exports import layout, manifests
from exports.models import ExportStream
from exports.settings import export_settings_ensure
from exports.verification import verify_export


def add_entries(tenant, n: int) -> None:
    """``n`` more entries for the tenant."""
    for i in range(n):
        record(
            operation_name="TenantConfigChange",
            tenant_id=tenant.pk,
            target_id=tenant.pk,
            target_repr=f"change {i}",
            changes={"name": [str(i), str(i + 1)]},
        )


def exported_ids(s3, config) -> list[int]:
    """Ids of every entry in the bucket for the tenant's prefix (duplicates kept)."""
    root = layout.full_key(config, layout.tenant_root(config.tenant_id))
    ids = []
    for key, body in s3.objects(root + "/").items():
        if key.endswith(".ndjson.gz"):
            ids += [json.loads(line)["id"] for line in gzip.decompress(body).splitlines()]
    return ids


def watermark(tenant):
    """The cutoff of the stream of the tenant's configured destination (``None``: none yet)."""
    config = export_settings_ensure(tenant_id=tenant.pk)
    stream = ExportStream.objects.filter(
        tenant_id=tenant.pk, bucket=config.bucket, prefix=config.prefix
    ).first()
    return stream.cutoff if stream else None


def db_ids(tenant) -> list[int]:
    return sorted(AuditLogEntry.objects.filter(tenant_id=tenant.pk).values_list("id", flat=True))


def verify(s3, config):
    return verify_export(
        client=s3.admin("s3"),
        bucket=s3.bucket,
        prefix=config.prefix,
        tenant_id=config.tenant_id,
        public_key=manifests.public_key_b64(),
    )
