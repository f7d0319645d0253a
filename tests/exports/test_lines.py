"""Every exported line is exactly ``entry_to_json(entry)``, whichever encoder wrote it."""

import gzip
import json
from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import JSONField, Value
from django.utils import timezone

from auditlog.models import AuditLogEntry
from auditlog.serializers import ENTRY_COLUMNS, entry_to_json
from exports import delivery, manifests, selectors
from exports.exceptions import ExportError
from exports.models import ExportBatch, ExportStream

pytestmark = pytest.mark.django_db

# A JSON ``null`` stored in the column (``None`` alone would be SQL NULL).
JSON_NULL = Value(None, JSONField())
AWKWARD = [
    {"inputs": None, "outputs": {}, "changes": {}},
    {
        "inputs": {"nested": {"list": [1, 2.5, None, True, {"deep": ["ü", "😀"]}]}, "n": 10**15},
        "outputs": {"ok": False},
        "changes": {"name": ['Ö"ld\\', "new\nline\ttab\u0001"]},
        "api_key_id": 42,
        "api_key_name": 'deploy "key" ✓',
        "actor_type": "api_key",
        "request_ip": "203.0.113.7",
        "request_user_agent": "Mozilla/5.0 (X11) </script>",
        "request_id": "a" * 32,
        "client_request_id": 'client "id" ✓',
        "user_email": "ünïcode@example.com",
        "user_name": "名前 O'Brien",
        "story_id": 7,
        "target_type": "story",
        "target_id": "7",
        "target_repr": "Story “quotes” & <tags>",
    },
    {"inputs": [1, "two"], "outputs": [], "changes": [], "request_ip": "2001:db8::1"},
    {"inputs": "just a string", "outputs": 0, "changes": ""},
    {"inputs": 0, "outputs": False, "changes": JSON_NULL, "api_key_id": 0, "api_key_name": "0"},
    {"inputs": JSON_NULL, "outputs": JSON_NULL, "changes": 0.0, "user_id": None},
    {"inputs": {}, "outputs": {"x": None}, "changes": {"a": [None, {}]}, "story_id": 0},
]


def _entries(tenant):
    base = timezone.now() - timedelta(hours=1)
    made = []
    for i, awkward in enumerate(AWKWARD):
        fields = dict(awkward)
        created_at = base + timedelta(microseconds=i * 1001)
        if i == 2:
            created_at = created_at.replace(microsecond=0)  # no fraction: still six digits
        made.append(
            AuditLogEntry.objects.create(
                tenant_id=tenant.pk,
                created_at=created_at,
                operation_name="TenantConfigChange",
                actor_type=fields.pop("actor_type", "system"),
                **fields,
            ).pk
        )
    return made


def _expected(pks):
    rows = AuditLogEntry.objects.filter(pk__in=pks).values(*ENTRY_COLUMNS)
    return {row["id"]: entry_to_json(row) for row in rows}


@pytest.mark.parametrize("fast", [True, False])
def test_each_line_parses_to_exactly_entry_to_json(world_a, fast):
    pks = _entries(world_a.tenant)
    expected = _expected(pks)
    lines = [
        line
        for chunk in selectors.entry_lines(
            tenant_id=world_a.tenant.pk,
            after=None,
            before=timezone.now() + timedelta(days=1),
            limit=10_000,
            fast=fast,
        )
        for line in chunk
    ]
    parsed = {entry["id"]: entry for entry in map(json.loads, lines) if entry["id"] in expected}
    assert set(parsed) == set(pks)
    for pk in pks:
        want = json.loads(json.dumps(expected[pk]))
        assert parsed[pk] == want
        # Same key order too, nested objects included.
        assert list(parsed[pk]) == list(want)
        assert list(parsed[pk]["target"]) == ["type", "id", "name"]
    assert "\n" not in "".join(lines)


def test_the_postgresql_and_portable_encoders_agree_and_positions_round_trip(world_a):
    _entries(world_a.tenant)
    args = {
        "tenant_id": world_a.tenant.pk,
        "after": None,
        "before": timezone.now() + timedelta(days=1),
        "limit": 10_000,
    }
    fast_body, fast_info = delivery.encode_lines(selectors.entry_lines(**args, fast=True))
    slow_body, slow_info = delivery.encode_lines(selectors.entry_lines(**args, fast=False))
    fast_lines = gzip.decompress(fast_body).decode().splitlines()
    slow_lines = gzip.decompress(slow_body).decode().splitlines()
    assert list(map(json.loads, fast_lines)) == list(map(json.loads, slow_lines))
    assert fast_info == slow_info
    ordered = AuditLogEntry.objects.filter(tenant_id=world_a.tenant.pk).order_by("created_at", "id")
    first, last = ordered.first(), ordered.last()
    assert fast_info["first"] == (first.created_at, first.pk)
    assert fast_info["last"] == (last.created_at, last.pk)
    assert fast_info["count"] == len(fast_lines)
    if connection.vendor == "sqlite":
        assert fast_body == slow_body
    # Re-encoding gives the very same bytes (the retry path relies on it).
    again, _ = delivery.encode_lines(selectors.entry_lines(**args))
    assert again == fast_body


def test_a_batch_frozen_by_the_portable_encoder_is_recreated_byte_for_byte(world_a):
    """Batches frozen before the PostgreSQL encoder existed (or on SQLite) can be resent."""
    _entries(world_a.tenant)
    args = {
        "tenant_id": world_a.tenant.pk,
        "after": None,
        "before": timezone.now() + timedelta(days=1),
        "limit": 10_000,
    }
    body, info = delivery.encode_lines(selectors.entry_lines(**args, fast=False))
    stream = ExportStream.objects.create(tenant_id=world_a.tenant.pk, bucket="b")
    batch = ExportBatch.objects.create(
        tenant_id=world_a.tenant.pk,
        stream=stream,
        seq=1,
        first_created_at=info["first"][0],
        first_id=info["first"][1],
        last_created_at=info["last"][0],
        last_id=info["last"][1],
        count=info["count"],
        sha256=manifests.sha256_hex(body),
        size=len(body),
        key="k",
    )
    assert delivery._recreate(batch) == body
    batch.sha256 = "0" * 64
    with pytest.raises(ExportError, match="could not be re-created byte for byte"):
        delivery._recreate(batch)
