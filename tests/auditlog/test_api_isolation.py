"""Isolation probe: every role of tenant A, on every API endpoint, aimed at tenant B's ids."""

import json

import pytest

from auditlog.models import AuditLogEntry
from auditlog.pagination import encode_cursor

from .test_api import _fresh_rate_limits, make_entries

__all__ = ["_fresh_rate_limits"]  # autouse: a private cache per test

URL = "/api/v1/audit_logs"


@pytest.fixture
def target(world_a, world_b):
    """Tenant B with entries of its own (its fixture entries plus twelve made by its users)."""
    make_entries(world_a)
    make_entries(world_b)
    entries = list(AuditLogEntry.objects.filter(tenant=world_b.tenant))
    return world_b, entries


def probes(world, entries):
    """Every request a tenant-A caller could make that names something of tenant B."""
    user_ids = [world.owner.pk, world.reader.pk, world.member.pk]
    newest = max(entries, key=lambda e: (e.created_at, e.pk))
    requests = [URL, f"{URL}/", f"{URL}?per_page=500", f"{URL}/operations"]
    for user_id in user_ids:
        requests += [
            f"{URL}?user_id={user_id}",
            f"{URL}?user_id[]={user_id}",
            f"{URL}?user_id={user_id}&user_id={user_id}",
        ]
    for entry in entries:
        requests.append(f"{URL}/{entry.pk}")
        if entry.target_id:
            requests.append(f"{URL}?target_id={entry.target_id}")
        if entry.request_id:
            requests.append(f"{URL}?request_id={entry.request_id}")
    requests.append(f"{URL}?cursor={encode_cursor(newest.created_at, newest.pk + 1)}")
    requests.append(f"{URL}?user_id[]={user_ids[0]}&target_id={entries[0].target_id}")
    return requests


def assert_nothing_of(world, entries, response):
    text = response.content.decode()
    body = json.loads(text)
    b_ids = {e.pk for e in entries}
    for entry in body.get("audit_logs", []):
        assert entry["tenant_id"] != world.tenant.pk
        assert entry["id"] not in b_ids
    assert body.get("id") not in b_ids
    for person in (world.owner, world.reader, world.member):
        assert person.email not in text


@pytest.mark.parametrize("role", ["owner", "reader"])
@pytest.mark.parametrize("auth", ["key", "session"])
def test_readers_of_a_never_see_b(client, world_a, target, role, auth):
    world_b, entries = target
    headers = {}
    if auth == "key":
        headers = {"Authorization": f"Bearer {world_a.keys[role]}"}
    else:
        client.force_login(getattr(world_a, role))
    b_ids = {e.pk for e in entries}
    for url in probes(world_b, entries):
        response = client.get(url, headers=headers)
        detail = url.rsplit("/", 1)[-1]
        if detail.isdigit() and int(detail) in b_ids:
            assert response.status_code == 404, url
            assert "errors" in response.json()
        else:
            assert response.status_code == 200, url
        assert_nothing_of(world_b, entries, response)
    # And they do see their own tenant's entries.
    own = client.get(URL, headers=headers).json()["audit_logs"]
    assert own
    assert {e["tenant_id"] for e in own} == {world_a.tenant.pk}


@pytest.mark.parametrize("auth", ["key", "session"])
def test_members_get_403_everywhere(client, world_a, target, auth):
    world_b, entries = target
    headers = {}
    if auth == "key":
        headers = {"Authorization": f"Bearer {world_a.keys['member']}"}
    else:
        client.force_login(world_a.member)
    own = AuditLogEntry.objects.filter(tenant=world_a.tenant).first()
    for url in [*probes(world_b, entries), f"{URL}/{own.pk}"]:
        response = client.get(url, headers=headers)
        assert response.status_code == 403, url
        assert response.json()["errors"][0]["message"] == "Forbidden"
        assert_nothing_of(world_b, entries, response)


def test_b_entry_ids_are_indistinguishable_from_missing_ones(client, world_a, target):
    _, entries = target
    headers = {"Authorization": f"Bearer {world_a.keys['owner']}"}
    theirs = client.get(f"{URL}/{entries[0].pk}", headers=headers)
    missing = client.get(f"{URL}/{max(e.pk for e in entries) + 10_000}", headers=headers)
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json() == missing.json()
