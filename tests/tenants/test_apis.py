"""The domain API, through real HTTP: each write answers right and records exactly its entry."""

import json
import os
from dataclasses import dataclass
from typing import Any

import pytest
import redis
from django.conf import settings as django_settings
from django.db.models import Max
from rest_framework.test import APIClient

from auditlog.models import AuditLogEntry
from tenants import services
from tenants.models import ApiKey, Credential, Membership, Story, Team, User

from .. import factories

IP = "203.0.113.7"
USER_AGENT = "api-tests/1.0 (+audit)"
CANARY = "canary-s3cr3t-value-9f2c"


# --- helpers ----------------------------------------------------------------------------------


def last_entry_id() -> int:
    return AuditLogEntry.objects.aggregate(last=Max("id"))["last"] or 0


def new_entries(since_id: int) -> list[AuditLogEntry]:
    return list(AuditLogEntry.objects.filter(id__gt=since_id).order_by("id"))


@dataclass
class Caller:
    """A signed-in API client and who it acts as (``key`` is None for a session)."""

    client: APIClient
    user: User
    key: ApiKey | None

    def call(self, method: str, url: str, data: Any = None, status: int = 200):
        """Perform a request; return the response and the entries it wrote."""
        since = last_entry_id()
        response = getattr(self.client, method)(f"/api/v1/{url}", data, format="json")
        assert response.status_code == status, response.content
        return response, new_entries(since)

    def expect(self, op: str, method: str, url: str, data: Any = None, **kwargs):
        """Perform a request that records exactly one entry ``op``; return (response, entry)."""
        status = kwargs.pop("status", {"post": 201, "delete": 204}.get(method, 200))
        response, entries = self.call(method, url, data, status=status)
        assert [e.operation_name for e in entries] == [op]
        self.check(entries[0], response, op, **kwargs)
        return response, entries[0]

    def check(self, entry, response, op: str, target_type: str, target_id: Any = None) -> None:
        """The entry says who acted, how, from where, on what, in which request."""
        if target_id is None:
            target_id = response.json()["id"]
        assert entry.operation_name == op
        assert entry.tenant_id == self.user.tenant_id
        assert entry.user_id == self.user.pk
        assert entry.user_email == self.user.email
        assert entry.actor_type == ("api_key" if self.key else "user")
        assert entry.api_key_id == (self.key.pk if self.key else None)
        assert entry.request_ip == IP
        assert entry.request_user_agent == USER_AGENT
        assert entry.request_id == response["X-Request-ID"]
        assert entry.target_type == target_type
        assert entry.target_id == str(target_id)


def key_of(raw: str) -> ApiKey:
    return ApiKey.objects.get(key_hash=ApiKey.hash_key(raw))


def make_caller(world, who: str = "owner", via: str = "bearer") -> Caller:
    """A client for ``world.<who>`` signed in by bearer key, X-User-Token or session.

    One warm-up request is made so that the key's first use (``AuthenticationTokenUse``)
    is recorded before the test starts counting entries.
    """
    user = getattr(world, who)
    client = APIClient(REMOTE_ADDR=IP, HTTP_USER_AGENT=USER_AGENT)
    key = None
    if via == "bearer":
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {world.keys[who]}")
        key = key_of(world.keys[who])
    elif via == "token":
        client.credentials(HTTP_X_USER_TOKEN=world.keys[who], HTTP_X_USER_EMAIL=user.email)
        key = key_of(world.keys[who])
    else:
        client.force_login(user)
    assert client.get("/api/v1/teams/").status_code == 200
    return Caller(client, user, key)


@pytest.fixture
def owner(world_a):
    return make_caller(world_a, "owner")


@pytest.fixture
def member(world_a):
    """An editor of ``world_a.team``, authenticating with ``X-User-Token``."""
    return make_caller(world_a, "member", via="token")


@pytest.fixture
def session_owner(world_a):
    return make_caller(world_a, "owner", via="session")


def assert_refused(caller: Caller, method: str, url: str, data: Any, status: int, field=None):
    """Refused with ``status`` (naming ``field`` for a 400), and nothing recorded."""
    response, entries = caller.call(method, url, data, status=status)
    assert entries == []
    if field is not None:
        assert field in response.json()
    return response


# --- authentication -----------------------------------------------------------------------


@pytest.mark.parametrize("via", ["bearer", "token", "session"])
def test_each_way_in_is_attributed(world_a, via):
    caller = make_caller(world_a, "owner", via=via)
    caller.expect("TeamCreation", "post", "teams/", {"name": f"By {via}"}, target_type="team")


def test_lowercase_bearer_scheme_is_accepted(world_a):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"bearer {world_a.keys['owner']}")
    assert client.get("/api/v1/teams/").status_code == 200


def test_no_credentials_is_401_with_bearer_challenge(db, api):
    response = api.get("/api/v1/teams/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "header", [{"HTTP_AUTHORIZATION": "Bearer tak_nope"}, {"HTTP_X_USER_TOKEN": "tak_nope"}]
)
def test_unknown_key_is_401(world_a, api, header):
    api.credentials(**header)
    assert api.get("/api/v1/teams/").status_code == 401


def test_key_of_removed_user_is_refused(world_a, api):
    services.user_update(user=world_a.member, is_active=False)
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {world_a.keys['member']}")
    assert api.get("/api/v1/teams/").status_code == 401


def test_first_use_of_a_key_is_recorded_once(world_a):
    client = APIClient(REMOTE_ADDR=IP, HTTP_USER_AGENT=USER_AGENT)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {world_a.keys['reader']}")
    caller = Caller(client, world_a.reader, key_of(world_a.keys["reader"]))
    response, entries = caller.call("get", "teams/")
    assert [e.operation_name for e in entries] == ["AuthenticationTokenUse"]
    caller.check(entries[0], response, "AuthenticationTokenUse", "api_key", caller.key.pk)
    assert entries[0].inputs == {"inputs": {"authenticationTokenId": caller.key.pk}}
    assert caller.call("get", "teams/")[1] == []


def test_request_id_of_the_caller_is_kept_beside_the_servers(world_a, owner):
    owner.client.credentials(
        HTTP_AUTHORIZATION=f"Bearer {world_a.keys['owner']}", HTTP_X_REQUEST_ID="req-123.abc"
    )
    response, entry = owner.expect(
        "TeamCreation", "post", "teams/", {"name": "R"}, target_type="team"
    )
    assert response["X-Request-ID"] == entry.request_id != "req-123.abc"
    assert entry.client_request_id == "req-123.abc"


# --- users ----------------------------------------------------------------------------------


def test_invite_user_redacts_password(owner):
    body = {"email": "New@Example.test", "name": "New", "role": "member", "password": CANARY}
    response, entry = owner.expect("UsersInvitation", "post", "users/", body, target_type="user")
    assert "password" not in response.json()
    assert response.json()["email"] == "new@example.test"
    assert entry.inputs["inputs"]["password"] == "REDACTED"
    assert entry.inputs["inputs"]["email"] == "new@example.test"
    assert CANARY not in json.dumps([entry.inputs, entry.changes, entry.target_repr])


def test_invite_without_password(owner):
    body = {"email": "nopass@example.test", "permissions": ["AUDIT_LOG_READ"]}
    owner.expect("UsersInvitation", "post", "users/", body, target_type="user")


@pytest.mark.parametrize(
    ("data", "op", "changes"),
    [
        ({"name": "Renamed"}, "UserEdit", {"name": ["old", "Renamed"]}),
        ({"email": "moved@example.test"}, "UserEdit", None),
        ({"role": "owner"}, "UserRoleChange", {"role": ["member", "owner"]}),
        (
            {"permissions": ["AUDIT_LOG_READ"]},
            "UserPermissionsChange",
            {"permissions": [[], ["AUDIT_LOG_READ"]]},
        ),
    ],
)
def test_edit_user(world_a, owner, data, op, changes):
    services.user_update(user=world_a.member, name="old")
    url = f"users/{world_a.member.pk}/"
    response, entry = owner.expect(op, "patch", url, data, target_type="user")
    if changes is not None:
        assert entry.changes == changes
    assert "password" not in response.json()


def test_patch_that_changes_nothing_records_nothing(world_a, owner):
    data = {"name": world_a.member.name, "role": "member"}
    _, entries = owner.call("patch", f"users/{world_a.member.pk}/", data)
    assert entries == []


def test_remove_user(world_a, owner):
    member = world_a.member
    response, entries = owner.call("delete", f"users/{member.pk}/", status=204)
    deletions = [e for e in entries if e.operation_name == "UserDeletion"]
    assert len(deletions) == 1
    owner.check(deletions[0], response, "UserDeletion", "user", member.pk)
    # The removal also revokes the user's keys and memberships, each recorded.
    ops = sorted(e.operation_name for e in entries)
    assert ops == ["AuthenticationTokenDeletion", "TeamMemberRemoval", "UserDeletion"]
    assert set(deletions[0].changes) == {"is_active", "removed_at", "password"}
    assert deletions[0].changes["password"] == ["REDACTED", "REDACTED"]
    for entry in entries:
        assert (entry.user_id, entry.api_key_id, entry.request_id) == (
            owner.user.pk,
            owner.key.pk,
            response["X-Request-ID"],
        )
    assert_refused(owner, "get", f"users/{member.pk}/", None, 404)
    member.refresh_from_db()
    assert member.removed_at is not None
    assert not member.is_active


def test_last_owner_cannot_demote_themselves(world_a, owner):
    response = assert_refused(owner, "patch", f"users/{world_a.owner.pk}/", {"role": "member"}, 400)
    assert "non_field_errors" in response.json()


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"email": "x@example.test", "role": "king"}, "role"),
        ({"email": "x@example.test", "permissions": ["ROOT"]}, "permissions"),
    ],
)
def test_invalid_invite_is_400(owner, data, field):
    assert_refused(owner, "post", "users/", data, 400, field)


def test_duplicate_email_is_400(world_a, owner):
    assert_refused(owner, "post", "users/", {"email": world_a.member.email}, 400, "email")


@pytest.mark.parametrize(
    ("method", "url"),
    [("get", "users/"), ("post", "users/"), ("patch", "tenant/"), ("post", "teams/")],
)
def test_members_cannot_manage_users_teams_or_tenant(member, method, url):
    assert_refused(member, method, url, {"email": "x@example.test", "name": "x"}, 403)


def test_users_are_never_serialized_with_password(owner):
    response, _ = owner.call("get", "users/")
    assert response.json()["count"] == 3
    assert all("password" not in user for user in response.json()["results"])


# --- tenant -----------------------------------------------------------------------------------


def test_change_tenant_settings(world_a, session_owner):
    data = {"session_timeout_minutes": 60}
    _, entry = session_owner.expect(
        "TenantConfigChange", "patch", "tenant/", data, target_type="tenant"
    )
    assert entry.changes == {"session_timeout_minutes": [720, 60]}
    assert session_owner.call("patch", "tenant/", data)[1] == []


@pytest.mark.parametrize("minutes", [-5, 0, 4, 43_201, 2_147_483_647, 2**40])
def test_session_timeout_out_of_bounds_is_400(owner, world_a, minutes):
    data = {"session_timeout_minutes": minutes}
    assert_refused(owner, "patch", "tenant/", data, 400, "session_timeout_minutes")
    world_a.tenant.refresh_from_db()
    assert world_a.tenant.session_timeout_minutes == 720


@pytest.mark.parametrize("minutes", [5, 43_200])
def test_session_timeout_bounds_are_accepted(owner, minutes):
    data = {"session_timeout_minutes": minutes}
    response, _ = owner.expect("TenantConfigChange", "patch", "tenant/", data, target_type="tenant")
    assert response.json()["session_timeout_minutes"] == minutes


# --- teams ----------------------------------------------------------------------------------


def test_team_lifecycle(owner):
    response, _ = owner.expect(
        "TeamCreation", "post", "teams/", {"name": "Red"}, target_type="team"
    )
    team_id = response.json()["id"]
    url = f"teams/{team_id}/"
    _, entry = owner.expect("TeamUpdate", "patch", url, {"description": "d"}, target_type="team")
    assert entry.changes == {"description": ["", "d"]}
    owner.expect("TeamDestruction", "delete", url, target_type="team", target_id=team_id)


def test_team_members(world_a, owner):
    team, reader = world_a.team, world_a.reader
    base = f"teams/{team.pk}/members/"
    response, entry = owner.call("post", base, {"user": reader.pk, "role": "viewer"}, status=201)
    membership = Membership.objects.get(team=team, user=reader)
    assert response.json() == {"user": reader.pk, "role": "viewer"}
    assert [e.operation_name for e in entry] == ["TeamMembersAddition"]
    owner.check(entry[0], response, "TeamMembersAddition", "team_membership", membership.pk)
    url = f"{base}{reader.pk}/"
    _, entry = owner.expect(
        "TeamMemberRoleChange",
        "patch",
        url,
        {"role": "admin"},
        target_type="team_membership",
        target_id=membership.pk,
    )
    assert entry.changes == {"role": ["viewer", "admin"]}
    owner.expect(
        "TeamMemberRemoval", "delete", url, target_type="team_membership", target_id=membership.pk
    )
    assert_refused(owner, "delete", url, None, 404)


def test_team_member_errors(world_a, world_b, owner):
    base = f"teams/{world_a.team.pk}/members/"
    assert_refused(owner, "post", base, {"user": world_b.member.pk}, 400, "user")
    assert_refused(owner, "post", base, {"user": world_a.member.pk}, 400, "non_field_errors")
    assert_refused(owner, "patch", f"{base}{world_a.member.pk}/", {"role": "god"}, 400, "role")


def test_duplicate_team_name_is_400(world_a, owner):
    assert_refused(owner, "post", "teams/", {"name": world_a.team.name}, 400, "non_field_errors")


def test_members_list_only_their_teams(world_a, member):
    factories.team(world_a.tenant, "Other team")
    response, _ = member.call("get", "teams/")
    assert [t["id"] for t in response.json()["results"]] == [world_a.team.pk]


# --- credentials ------------------------------------------------------------------------------


def test_credential_lifecycle(world_a, member):
    body = {"team": world_a.team.pk, "name": "Slack", "value": CANARY, "credential_type": "text"}
    created, entry = member.expect(
        "CredentialSave", "post", "credentials/", body, target_type="credential"
    )
    cred_id = created.json()["id"]
    assert entry.inputs["inputs"]["value"] == "REDACTED"
    url = f"credentials/{cred_id}/"

    new_value = CANARY + "-rotated"
    rotated, entry = member.expect(
        "CredentialSave", "patch", url, {"value": new_value}, target_type="credential"
    )
    assert entry.changes == {"value": ["REDACTED", "REDACTED"]}
    assert entry.inputs == {"inputs": {"id": cred_id, "value": "REDACTED"}}
    assert Credential.objects.get(pk=cred_id).value == new_value
    unchanged, entries = member.call("patch", url, {"value": new_value})
    assert entries == []

    other = factories.team(world_a.tenant, "Shared with")
    shared, entry = member.expect(
        "CredentialSave", "patch", url, {"shared_with_teams": [other.pk]}, target_type="credential"
    )
    assert entry.changes == {"shared_with_teams": [[], [other.pk]]}
    assert shared.json()["shared_with_teams"] == [other.pk]

    listed, retrieved = member.call("get", "credentials/")[0], member.call("get", url)[0]
    member.expect(
        "CredentialDestruction", "delete", url, target_type="credential", target_id=cred_id
    )
    responses = [created, rotated, unchanged, shared, listed, retrieved]
    assert all(CANARY not in r.content.decode() for r in responses)
    assert all("value" not in c for c in [*listed.json()["results"], retrieved.json()])
    for e in AuditLogEntry.objects.filter(target_type="credential"):
        assert CANARY not in json.dumps([e.inputs, e.outputs, e.changes, e.target_repr])


def test_x_user_email_is_ignored(world_a):
    client = APIClient(REMOTE_ADDR=IP, HTTP_USER_AGENT=USER_AGENT)
    client.credentials(
        HTTP_X_USER_TOKEN=world_a.keys["member"], HTTP_X_USER_EMAIL=world_a.owner.email
    )
    assert client.get("/api/v1/teams/").status_code == 200
    assert client.get("/api/v1/users/").status_code == 403
    caller = Caller(client, world_a.member, key_of(world_a.keys["member"]))
    body = {"team": world_a.team.pk, "name": "Mine"}
    caller.expect("StoryCreation", "post", "stories/", body, target_type="story")


@pytest.mark.parametrize("field", ["team", "shared_with_teams"])
def test_credential_cannot_link_another_tenant(world_a, world_b, member, field):
    body = {"team": world_a.team.pk, "name": "X", "value": "v", "shared_with_teams": []}
    body[field] = world_b.team.pk if field == "team" else [world_b.team.pk]
    response = assert_refused(member, "post", "credentials/", body, 400, field)
    assert "does not exist" in json.dumps(response.json())


def test_credential_value_required(world_a, member):
    assert_refused(
        member, "post", "credentials/", {"team": world_a.team.pk, "name": "X"}, 400, "value"
    )


# --- resources --------------------------------------------------------------------------------


def test_resource_lifecycle(world_a, member):
    body = {"team": world_a.team.pk, "name": "Domain", "value": "example.test"}
    response, _ = member.expect(
        "GlobalResourceCreation", "post", "resources/", body, target_type="resource"
    )
    url = f"resources/{response.json()['id']}/"
    _, entry = member.expect(
        "GlobalResourceEdit", "patch", url, {"value": "other.test"}, target_type="resource"
    )
    assert entry.changes == {"value": ["example.test", "other.test"]}
    member.expect(
        "GlobalResourceDestruction",
        "delete",
        url,
        target_type="resource",
        target_id=response.json()["id"],
    )


# --- stories, versions, pages -------------------------------------------------------------------


@pytest.fixture
def story(world_a):
    return factories.story(world_a.team, "Triage")


@pytest.mark.parametrize(
    ("data", "op"),
    [
        ({"name": "Renamed"}, "StoryNameChange"),
        ({"description": "Does things"}, "StoryDescriptionChange"),
        ({"enabled": False}, "StoryDisabledChange"),
        ({"locked": True}, "StoryLockedChange"),
    ],
)
def test_edit_story(member, story, data, op):
    _, entry = member.expect(op, "patch", f"stories/{story.pk}/", data, target_type="story")
    assert entry.story_id == story.pk
    assert list(entry.changes) == list(data)


def test_create_story(world_a, member):
    body = {"team": world_a.team.pk, "name": "New"}
    _, entry = member.expect("StoryCreation", "post", "stories/", body, target_type="story")
    assert entry.inputs["inputs"]["name"] == "New"


def test_create_a_disabled_locked_story(world_a, member):
    body = {"team": world_a.team.pk, "name": "Paused", "enabled": False, "locked": True}
    response, _ = member.expect("StoryCreation", "post", "stories/", body, target_type="story")
    assert (response.json()["enabled"], response.json()["locked"]) == (False, True)
    story = Story.objects.get(pk=response.json()["id"])
    assert (story.enabled, story.locked) == (False, True)


def test_story_movement(world_a, member, owner, story):
    other = factories.team(world_a.tenant, "Elsewhere")
    url = f"stories/{story.pk}/"
    # The member may write the story's team but not the destination team.
    assert_refused(member, "patch", url, {"team": other.pk}, 403)
    _, entry = owner.expect("StoryMovement", "patch", url, {"team": other.pk}, target_type="story")
    assert entry.changes == {"team": [world_a.team.pk, other.pk]}


def test_story_archive_restore_delete(member, story):
    url = f"stories/{story.pk}/"
    response = assert_refused(member, "delete", url, None, 400, "non_field_errors")
    assert "Archive the story" in response.json()["non_field_errors"][0]
    response, _ = member.expect(
        "StoryArchive", "post", f"{url}archive/", status=200, target_type="story"
    )
    assert response.json()["archived"] is True
    member.expect("StoryRestore", "post", f"{url}restore/", status=200, target_type="story")
    member.call("post", f"{url}archive/")
    member.expect("ArchivedStoryDeletion", "delete", url, target_type="story", target_id=story.pk)
    assert not Story.objects.filter(pk=story.pk).exists()


def test_story_versions(member, story):
    url = f"stories/{story.pk}/versions/"
    response, entry = member.expect(
        "StoryVersionCreate", "post", url, {"name": "v1"}, target_type="story_version"
    )
    assert entry.story_id == story.pk
    assert response.json()["snapshot"]["name"] == "Triage"
    listed, entries = member.call("get", url)
    assert entries == []
    assert [v["name"] for v in listed.json()["results"]] == ["v1"]
    assert_refused(member, "post", url, {"name": ""}, 400, "name")
    version_url = f"{url}{entry.target_id}/"
    _, renamed = member.expect(
        "StoryVersionNameChange",
        "patch",
        version_url,
        {"name": "v1 final"},
        target_type="story_version",
        target_id=entry.target_id,
    )
    assert renamed.changes == {"name": ["v1", "v1 final"]}
    unchanged, entries = member.call("patch", version_url, {})
    assert (unchanged.json()["name"], entries) == ("v1 final", [])
    member.expect(
        "StoryVersionDeletion",
        "delete",
        version_url,
        target_type="story_version",
        target_id=entry.target_id,
    )


def test_page_lifecycle(member, story):
    body = {"story": story.pk, "name": "Intake form"}
    response, entry = member.expect("PageCreation", "post", "pages/", body, target_type="page")
    assert entry.story_id == story.pk
    page_id = response.json()["id"]
    url = f"pages/{page_id}/"
    member.expect("PageUpdate", "patch", url, {"description": "Form"}, target_type="page")
    response, _ = member.expect(
        "PagePublish", "post", f"{url}publish/", status=200, target_type="page"
    )
    assert response.json()["published"] is True
    member.expect("PageUnpublish", "post", f"{url}unpublish/", status=200, target_type="page")
    member.expect("PageDestruction", "delete", url, target_type="page", target_id=page_id)


def test_page_story_cannot_change_or_cross_tenants(world_b, member, story):
    other_story = factories.story(world_b.team)
    assert_refused(member, "post", "pages/", {"story": other_story.pk, "name": "P"}, 400, "story")
    response, _ = member.call("post", "pages/", {"story": story.pk, "name": "P"}, status=201)
    url = f"pages/{response.json()['id']}/"
    assert_refused(member, "patch", url, {"story": story.pk}, 400, "story")


# --- API keys ---------------------------------------------------------------------------------


def test_personal_key_lifecycle(member):
    response, entry = member.expect(
        "AuthenticationTokenCreation", "post", "api_keys/", {"name": "CI"}, target_type="api_key"
    )
    raw, key_id = response.json()["key"], response.json()["id"]
    assert entry.inputs == {"inputs": {"name": "CI", "isServiceToken": False}}
    assert raw.startswith("tak_")
    assert raw not in json.dumps([entry.inputs, entry.changes, entry.target_repr])
    assert ApiKey.objects.get(pk=key_id).key_hash == ApiKey.hash_key(raw)

    for listed in (
        member.call("get", "api_keys/")[0],
        member.call("get", f"api_keys/{key_id}/")[0],
    ):
        assert raw not in listed.content.decode()
        assert "key_hash" not in listed.content.decode()

    url = f"api_keys/{key_id}/"
    _, entry = member.expect(
        "AuthenticationTokenEdit", "patch", url, {"name": "CI runner"}, target_type="api_key"
    )
    assert entry.changes == {"name": ["CI", "CI runner"]}
    unchanged, entries = member.call("patch", url, {})
    assert (unchanged.json()["name"], entries) == ("CI runner", [])
    assert_refused(member, "patch", url, {"kind": "service"}, 400, "kind")
    _, entry = member.expect(
        "AuthenticationTokenDeletion", "delete", url, target_type="api_key", target_id=key_id
    )
    assert entry.inputs == {"inputs": {"authenticationTokenId": key_id}}
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert client.get("/api/v1/teams/").status_code == 401


def test_service_key_by_owner(world_a, owner):
    body = {"name": "Bot", "kind": "service", "user": world_a.member.pk}
    _, entry = owner.expect(
        "AuthenticationTokenCreation", "post", "api_keys/", body, target_type="api_key"
    )
    assert entry.inputs == {"inputs": {"name": "Bot", "isServiceToken": True}}


def test_owner_revokes_another_users_key(world_a, owner):
    key = key_of(world_a.keys["member"])
    owner.expect(
        "AuthenticationTokenDeletion",
        "delete",
        f"api_keys/{key.pk}/",
        target_type="api_key",
        target_id=key.pk,
    )


def test_member_key_limits(world_a, member):
    assert_refused(member, "post", "api_keys/", {"name": "S", "kind": "service"}, 403)
    body = {"name": "For reader", "user": world_a.reader.pk}
    assert_refused(member, "post", "api_keys/", body, 403)
    reader_key = key_of(world_a.keys["reader"])
    assert_refused(member, "delete", f"api_keys/{reader_key.pk}/", None, 404)
    response, _ = member.call("get", "api_keys/")
    assert [k["id"] for k in response.json()["results"]] == [member.key.pk]


# --- team roles -------------------------------------------------------------------------------


def test_viewer_reads_but_cannot_write(world_a, story):
    services.membership_add(team=world_a.team, user=world_a.reader, role=Membership.Role.VIEWER)
    viewer = make_caller(world_a, "reader")
    assert viewer.call("get", f"stories/{story.pk}/")[0].json()["name"] == "Triage"
    assert_refused(viewer, "patch", f"stories/{story.pk}/", {"name": "No"}, 403)
    assert_refused(viewer, "post", f"stories/{story.pk}/archive/", None, 403)
    body = {"team": world_a.team.pk, "name": "No"}
    assert_refused(viewer, "post", "resources/", body, 403)


def test_non_member_sees_nothing_of_the_team(world_a, story):
    outsider = make_caller(world_a, "reader")
    assert outsider.call("get", "stories/")[0].json()["count"] == 0
    assert_refused(outsider, "get", f"stories/{story.pk}/", None, 404)
    assert_refused(outsider, "post", "stories/", {"team": world_a.team.pk, "name": "N"}, 403)


# --- tenant isolation -------------------------------------------------------------------------


def _tenant_b_urls(world_b) -> list[str]:
    story = factories.story(world_b.team)
    credential = services.credential_create(team=world_b.team, name="B", value="b")
    resource = services.resource_create(team=world_b.team, name="B")
    page = services.page_create(story=story, name="B")
    key = key_of(world_b.keys["member"])
    return [
        f"users/{world_b.member.pk}/",
        f"teams/{world_b.team.pk}/",
        f"credentials/{credential.pk}/",
        f"resources/{resource.pk}/",
        f"stories/{story.pk}/",
        f"pages/{page.pk}/",
        f"api_keys/{key.pk}/",
    ]


def test_other_tenants_objects_are_404(world_a, world_b, owner):
    for url in _tenant_b_urls(world_b):
        methods = ("get", "delete") if url.startswith("api_keys") else ("get", "patch", "delete")
        for method in methods:
            assert_refused(owner, method, url, {"name": "hijack"}, 404)
    story_b = Story.objects.get(tenant=world_b.tenant)
    for action in ("archive/", "restore/", "versions/"):
        assert_refused(owner, "post", f"stories/{story_b.pk}/{action}", {"name": "v"}, 404)
    base = f"teams/{world_b.team.pk}/members/"
    assert_refused(owner, "post", base, {"user": world_a.member.pk}, 404)
    assert_refused(owner, "delete", f"{base}{world_b.member.pk}/", None, 404)


def test_lists_hold_only_own_tenant(world_a, world_b, owner):
    _tenant_b_urls(world_b)
    for url in ("users/", "teams/", "credentials/", "resources/", "stories/", "pages/"):
        results = owner.call("get", url)[0].json()["results"]
        assert all(r.get("team", world_a.team.pk) == world_a.team.pk for r in results), url
    emails = {u["email"] for u in owner.call("get", "users/")[0].json()["results"]}
    assert emails == {world_a.owner.email, world_a.reader.email, world_a.member.email}


@pytest.mark.parametrize("url", ["teams/", "credentials/", "resources/", "stories/", "pages/"])
def test_list_queries_do_not_grow_with_rows(world_a, member, django_assert_max_num_queries, url):
    for n in range(6):
        team = world_a.team if n % 2 else factories.team(world_a.tenant)
        services.credential_create(
            team=world_a.team, name=f"C{n}", value="v", shared_with_teams=[team]
        )
        services.resource_create(team=world_a.team, name=f"R{n}")
        services.page_create(story=factories.story(world_a.team), name=f"P{n}")
    with django_assert_max_num_queries(9):
        response = member.client.get(f"/api/v1/{url}")
    assert response.status_code == 200
    assert response.json()["count"] >= 1


# --- rate limit -----------------------------------------------------------------------------

in_redis = pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="REDIS_URL is not set")


@pytest.fixture
def limited(settings):
    """Three requests at once for the domain API (of 6/min), counted in the real Redis."""
    assert settings.CACHES["default"]["BACKEND"].endswith("RedisCache")
    settings.DOMAIN_API_RATE = "6/min"


def rate_counters() -> list[bytes]:
    prefix = django_settings.CACHES["default"]["KEY_PREFIX"]
    return redis.Redis.from_url(os.environ["REDIS_URL"]).keys(f"{prefix}:*domain-api-rate:*")


@in_redis
def test_domain_api_is_limited_per_key_with_retry_after(api, world_a, limited):
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {world_a.keys['owner']}")
    assert [api.get("/api/v1/teams/").status_code for _ in range(3)] == [200, 200, 200]
    entries = AuditLogEntry.objects.count()
    refused = api.post("/api/v1/teams/", {"name": "Throttled"}, format="json")
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 15
    assert refused.json()["detail"].startswith("Request was throttled.")
    assert not Team.objects.filter(name="Throttled").exists()
    assert AuditLogEntry.objects.count() == entries  # a refused write records nothing
    assert api.patch("/api/v1/tenant/", {}, format="json").status_code == 429  # one budget
    assert rate_counters(), "the counter lives in Redis"

    # The audit log API keeps its own budget, another key has its own; another address not.
    assert api.get("/api/v1/audit_logs").status_code == 200
    assert api.get("/api/v1/teams/", REMOTE_ADDR="192.0.2.7").status_code == 429
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {world_a.keys['member']}")
    assert api.get("/api/v1/teams/").status_code == 200


@in_redis
def test_domain_api_is_limited_for_session_users(client, world_a, limited):
    client.force_login(world_a.owner)
    assert [client.get("/api/v1/stories/").status_code for _ in range(4)] == [200, 200, 200, 429]


@pytest.mark.parametrize(
    "path", ["teams/1.5/", "teams/-1/members/-2/", "stories/1/versions/false/", "nothing/"]
)
def test_unknown_api_urls_are_json_404s(owner, path):
    response, _ = owner.call("get", path, status=404)
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Not found."}


def test_unknown_pages_keep_the_html_404_page(client, db):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
