"""Where every object the export writes goes in the tenant's bucket.

``<prefix>/audit-logs/tenant=<id>/<yyyy>/<mm>/<dd>/<seq:012d>-<first_id>-<last_id>.ndjson.gz``
for the entries, ``<prefix>/audit-logs/tenant=<id>/manifests/<seq:012d>.json`` for the
manifests, ``<prefix>/connection-tests/tenant=<id>/...`` for the connection test. Keys are
deterministic: a retried upload goes to the same key, which ``If-None-Match: *`` relies on.
"""

from datetime import UTC, datetime

from .models import ExportSettings


def full_key(config: ExportSettings, key: str) -> str:
    """``<prefix>/<key>`` (just ``<key>`` without a prefix)."""
    return f"{config.prefix}/{key}" if config.prefix else key


def tenant_root(tenant_id: int) -> str:
    """Where a tenant's objects live, relative to the prefix."""
    return f"audit-logs/tenant={tenant_id}"


def batch_key(tenant_id: int, seq: int, first: tuple[datetime, int], last_id: int) -> str:
    """``audit-logs/tenant=<id>/<yyyy>/<mm>/<dd>/<seq:012d>-<first_id>-<last_id>.ndjson.gz``."""
    day = first[0].astimezone(UTC)
    return f"{tenant_root(tenant_id)}/{day:%Y/%m/%d}/{seq:012d}-{first[1]}-{last_id}.ndjson.gz"


def manifest_key(tenant_id: int, seq: int) -> str:
    """``audit-logs/tenant=<id>/manifests/<seq:012d>.json``."""
    return f"{tenant_root(tenant_id)}/manifests/{seq:012d}.json"


def connection_test_key(tenant_id: int, at: datetime, suffix: str) -> str:
    """``connection-tests/tenant=<id>/<yyyymmddThhmmss>-<suffix>.txt``."""
    return f"connection-tests/tenant={tenant_id}/{at:%Y%m%dT%H%M%S}-{suffix}.txt"
