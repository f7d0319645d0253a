"""The one wire format of an entry: the API, the download and the S3 export all use it."""

from datetime import UTC, datetime
from typing import Any

from rest_framework import serializers

from .models import AuditLogEntry

# Columns needed to serialize an entry (for ``.values(*ENTRY_COLUMNS)`` on hot paths).
ENTRY_COLUMNS = (
    "id",
    "created_at",
    "operation_name",
    "inputs",
    "outputs",
    "changes",
    "request_ip",
    "request_user_agent",
    "request_id",
    "client_request_id",
    "tenant_id",
    "user_id",
    "user_email",
    "user_name",
    "actor_type",
    "api_key_id",
    "api_key_name",
    "story_id",
    "target_type",
    "target_id",
    "target_repr",
)


def rfc3339(value: datetime) -> str:
    """UTC with ``Z`` and microseconds, so ``after=<last created_at>`` never skips an entry."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def entry_to_json(entry: Any) -> dict[str, Any]:
    """An entry (model instance or ``values(*ENTRY_COLUMNS)`` dict) in the Tines wire format.

    The Tines fields come first; ``target``, ``changes``, ``request_id``,
    ``client_request_id``, ``actor_type`` and ``api_key`` are ours, and clients that do not
    know them ignore them.
    """
    get = entry.__getitem__ if isinstance(entry, dict) else entry.__getattribute__
    created_at = rfc3339(get("created_at"))
    api_key_id = get("api_key_id")
    return {
        "id": get("id"),
        "created_at": created_at,
        "updated_at": created_at,
        "operation_name": get("operation_name"),
        "inputs": get("inputs"),
        "outputs": get("outputs") or {},
        "request_ip": get("request_ip"),
        "request_user_agent": get("request_user_agent"),
        "tenant_id": get("tenant_id"),
        "user_id": get("user_id"),
        "user_email": get("user_email"),
        "user_name": get("user_name"),
        "story_id": get("story_id"),
        "target": {
            "type": get("target_type"),
            "id": get("target_id"),
            "name": get("target_repr"),
        },
        "changes": get("changes") or {},
        "request_id": get("request_id"),
        "client_request_id": get("client_request_id"),
        "actor_type": get("actor_type"),
        "api_key": {"id": api_key_id, "name": get("api_key_name")} if api_key_id else None,
    }


class AuditLogEntrySerializer(serializers.BaseSerializer):
    """DRF face of ``entry_to_json`` (read-only)."""

    def to_representation(self, instance: AuditLogEntry) -> dict[str, Any]:
        return entry_to_json(instance)
