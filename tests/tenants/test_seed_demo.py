"""``manage.py seed_demo``: demo tenants, logins and keys, a captured history, idempotent."""

import json
from io import StringIO

import pytest
from django.core.management import call_command

from auditlog.models import AuditLogEntry
from tenants.models import AUDIT_LOG_READ, ApiKey, Page, Story, Tenant, User

pytestmark = pytest.mark.django_db

EXPECTED_OPERATIONS = {
    "TenantCreation",
    "UsersInvitation",
    "UserEdit",
    "UserRoleChange",
    "UserPermissionsChange",
    "UserDeletion",
    "TeamCreation",
    "TeamUpdate",
    "TeamMembersAddition",
    "TeamMemberRoleChange",
    "TeamMemberRemoval",
    "CredentialSave",
    "GlobalResourceCreation",
    "GlobalResourceEdit",
    "StoryCreation",
    "StoryNameChange",
    "StoryArchive",
    "StoryRestore",
    "StoryVersionCreate",
    "PageCreation",
    "PagePublish",
    "PageUnpublish",
    "AuthenticationTokenCreation",
    "AuthenticationTokenDeletion",
    "TenantConfigChange",
}


def seed_json() -> dict:
    out, err = StringIO(), StringIO()
    call_command("seed_demo", "--json", stdout=out, stderr=err)
    return json.loads(out.getvalue())  # stdout holds the JSON document and nothing else


def keys_of(data: dict) -> list[str]:
    return [u["api_key"] for t in data["tenants"] for u in t["users"]]


def authenticates(raw: str) -> bool:
    return ApiKey.objects.filter(key_hash=ApiKey.hash_key(raw)).exists()


def test_json_lists_two_tenants_with_owner_reader_and_member():
    data = seed_json()

    assert set(data) == {"tenants"}
    assert len(data["tenants"]) >= 2
    for tenant in data["tenants"]:
        assert set(tenant) == {"id", "name", "users"}
        assert Tenant.objects.get(pk=tenant["id"]).name == tenant["name"]
        by_role = {}
        for u in tenant["users"]:
            assert set(u) == {"email", "password", "role", "permissions", "api_key"}
            user = User.objects.get(email=u["email"])
            assert user.tenant_id == tenant["id"]
            assert user.is_active
            assert user.check_password(u["password"])
            assert user.role == u["role"]
            assert user.permissions == u["permissions"]
            assert authenticates(u["api_key"])
            key = ApiKey.objects.get(key_hash=ApiKey.hash_key(u["api_key"]))
            assert key.user_id == user.pk
            by_role[(u["role"], tuple(u["permissions"]))] = user
        assert set(by_role) >= {
            (User.Role.OWNER, ()),
            (User.Role.MEMBER, (AUDIT_LOG_READ,)),
            (User.Role.MEMBER, ()),
        }
    names = {t["name"] for t in data["tenants"]}
    assert {"Acme Security", "Globex Automation"} <= names


def test_seeds_published_and_unpublished_pages_and_an_archived_story():
    seed_json()

    assert Page.objects.filter(published=True).exists()
    assert Page.objects.filter(published=False).exists()
    assert Story.objects.filter(archived=True).exists()
    assert Story.objects.filter(archived=False).exists()


def test_records_a_realistic_history_as_the_system():
    data = seed_json()

    for tenant in data["tenants"]:
        entries = AuditLogEntry.objects.filter(tenant_id=tenant["id"])
        operations = set(entries.values_list("operation_name", flat=True))
        missing = EXPECTED_OPERATIONS - operations
        assert not missing, missing
        assert set(entries.values_list("actor_type", flat=True)) == {"system"}


def test_secrets_are_not_in_the_history():
    seed_json()

    dumped = json.dumps(
        list(AuditLogEntry.objects.values("inputs", "outputs", "changes", "target_repr")),
        default=str,
    )
    assert "demo-not-a-real-secret" not in dumped
    assert "demo-owner-password" not in dumped


def test_running_twice_keeps_tenants_and_issues_fresh_working_keys():
    first = seed_json()
    tenants = Tenant.objects.count()
    users = User.objects.count()
    last_entry_id = AuditLogEntry.objects.order_by("-id").values_list("id", flat=True)[0]

    second = seed_json()

    assert Tenant.objects.count() == tenants
    assert User.objects.count() == users
    assert [t["id"] for t in second["tenants"]] == [t["id"] for t in first["tenants"]]
    assert [u["email"] for t in second["tenants"] for u in t["users"]] == [
        u["email"] for t in first["tenants"] for u in t["users"]
    ]
    assert all(authenticates(raw) for raw in keys_of(second))
    assert not any(authenticates(raw) for raw in keys_of(first))
    # One "demo key" per demo user, however often the command runs.
    demo_users = len(keys_of(second))
    assert ApiKey.objects.filter(name="demo key").count() == demo_users
    new = AuditLogEntry.objects.filter(id__gt=last_entry_id)
    rerun_ops = set(new.values_list("operation_name", flat=True))
    assert rerun_ops == {"AuthenticationTokenDeletion", "AuthenticationTokenCreation"}
    assert set(new.values_list("actor_type", flat=True)) == {"system"}


def test_without_json_prints_a_readable_table():
    out = StringIO()
    call_command("seed_demo", stdout=out, stderr=StringIO())

    text = out.getvalue()
    assert "Acme Security" in text
    assert "owner@acme.example" in text
    assert "AUDIT_LOG_READ" in text
    assert "tak_" in text
