"""The tenant admin console, driven through its real HTTP forms.

Every write must go through a service and leave the expected entries, attributed to the
owner with the request's address and user agent; nothing of another tenant is ever seen.
"""

import json

import pytest
from django.db import connection
from django.test import Client

from auditlog.models import AuditLogEntry
from tenants import services
from tenants.models import ApiKey, Credential, Membership, Page, Resource, Story, Team, User

from .. import factories

pytestmark = pytest.mark.django_db

IP = "198.51.100.23"
AGENT = "Mozilla/5.0 (AdminConsoleTest)"
META = {"REMOTE_ADDR": IP, "HTTP_USER_AGENT": AGENT}
CANARY = "canary-secret-7f3a9c1e"


def last_id() -> int:
    return AuditLogEntry.objects.order_by("-id").values_list("id", flat=True).first() or 0


def entries_after(start: int) -> list[AuditLogEntry]:
    return list(AuditLogEntry.objects.filter(id__gt=start).order_by("id"))


def ops_after(start: int) -> list[str]:
    return [e.operation_name for e in entries_after(start)]


def assert_by(entries: list[AuditLogEntry], user: User) -> None:
    assert entries
    for entry in entries:
        assert entry.user_id == user.pk
        assert entry.tenant_id == user.tenant_id
        assert entry.actor_type == "user"
        assert entry.request_ip == IP
        assert entry.request_user_agent == AGENT


def inline(prefix: str, rows: list[dict], initial: int = 0) -> dict:
    """An inline formset's management form and rows."""
    data = {
        f"{prefix}-TOTAL_FORMS": str(len(rows)),
        f"{prefix}-INITIAL_FORMS": str(initial),
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }
    for i, row in enumerate(rows):
        data.update({f"{prefix}-{i}-{k}": v for k, v in row.items()})
    return data


class Console:
    """A signed-in browser on the admin console."""

    def __init__(self, client: Client, user: User) -> None:
        client.force_login(user)
        self.client = client

    def get(self, path: str, **extra):
        return self.client.get(f"/admin/{path}", **META, **extra)

    def post(self, path: str, data: dict, **extra):
        return self.client.post(f"/admin/{path}", data, **META, **extra)


@pytest.fixture
def console(client, world_a):
    return Console(client, world_a.owner)


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


# --- Credentials ---------------------------------------------------------------------------


def test_credential_create_update_delete(console, world_a):
    other = factories.team(world_a.tenant, "Other team")
    start = last_id()
    response = console.post(
        "tenants/credential/add/",
        {
            "team": world_a.team.pk,
            "name": "Slack token",
            "credential_type": "text",
            "value": CANARY,
            "description": "for alerts",
            "shared_with_teams": [other.pk],
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    credential = Credential.objects.get(name="Slack token")
    assert credential.value == CANARY
    assert list(credential.shared_with_teams.all()) == [other]
    created = entries_after(start)
    assert [e.operation_name for e in created] == ["CredentialSave", "CredentialSave"]
    assert created[0].inputs["inputs"]["value"] == "REDACTED"
    assert created[1].changes == {"shared_with_teams": [[], [other.pk]]}
    assert_by(created, world_a.owner)

    # The change form never renders the value back.
    page = console.get(f"tenants/credential/{credential.pk}/change/").content.decode()
    assert CANARY not in page
    assert 'type="password"' in page

    # A blank value keeps the stored one.
    start = last_id()
    response = console.post(
        f"tenants/credential/{credential.pk}/change/",
        {
            "team": world_a.team.pk,
            "name": "Slack bot token",
            "credential_type": "text",
            "value": "",
            "description": "for alerts",
            "shared_with_teams": [other.pk],
        },
    )
    assert response.status_code == 302
    credential = Credential.objects.get(pk=credential.pk)
    assert credential.value == CANARY
    (entry,) = entries_after(start)
    assert entry.operation_name == "CredentialSave"
    assert entry.changes == {"name": ["Slack token", "Slack bot token"]}
    assert_by([entry], world_a.owner)

    # A new value replaces it, recorded as REDACTED.
    new_secret = CANARY + "-rotated"
    start = last_id()
    response = console.post(
        f"tenants/credential/{credential.pk}/change/",
        {
            "team": world_a.team.pk,
            "name": "Slack bot token",
            "credential_type": "text",
            "value": new_secret,
            "description": "for alerts",
        },
    )
    assert response.status_code == 302
    assert Credential.objects.get(pk=credential.pk).value == new_secret
    updated = entries_after(start)
    assert {e.operation_name for e in updated} == {"CredentialSave"}
    assert updated[0].changes == {"value": ["REDACTED", "REDACTED"]}
    assert any(e.changes.get("shared_with_teams") == [[other.pk], []] for e in updated)
    assert_by(updated, world_a.owner)

    start = last_id()
    response = console.post(f"tenants/credential/{credential.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Credential.objects.filter(pk=credential.pk).exists()
    (entry,) = entries_after(start)
    assert entry.operation_name == "CredentialDestruction"
    assert_by([entry], world_a.owner)

    # The plaintext is nowhere: not in the column, not in any entry.
    with connection.cursor() as cursor:
        cursor.execute("SELECT value FROM tenants_credential")
        stored = [row[0] for row in cursor.fetchall()]
    assert all(CANARY not in (value or "") for value in stored)
    everything = json.dumps(list(AuditLogEntry.objects.values()), default=str)
    assert CANARY not in everything


def test_credential_value_is_never_stored_in_plaintext(console, world_a):
    console.post(
        "tenants/credential/add/",
        {"team": world_a.team.pk, "name": "k", "credential_type": "text", "value": CANARY},
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT value FROM tenants_credential")
        stored = [row[0] for row in cursor.fetchall()]
    assert len(stored) == 1
    assert CANARY not in stored[0]
    changelist = console.get("tenants/credential/").content.decode()
    assert "k" in changelist
    assert CANARY not in changelist


def test_credential_add_requires_a_value(console, world_a):
    start = last_id()
    response = console.post(
        "tenants/credential/add/",
        {"team": world_a.team.pk, "name": "empty", "credential_type": "text", "value": ""},
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["value"]
    assert entries_after(start) == []


def test_bulk_delete_selected_credentials_records_one_entry_per_row(console, world_a):
    credentials = [
        services.credential_create(team=world_a.team, name=f"c{i}", value=f"v{i}") for i in range(3)
    ]
    keep = services.credential_create(team=world_a.team, name="keep", value="v")
    start = last_id()
    response = console.post(
        "tenants/credential/",
        {
            "action": "delete_selected",
            "_selected_action": [c.pk for c in credentials],
            "post": "yes",
        },
    )
    assert response.status_code == 302
    assert list(Credential.objects.filter(tenant=world_a.tenant)) == [keep]
    entries = entries_after(start)
    assert [e.operation_name for e in entries] == ["CredentialDestruction"] * 3
    assert sorted(int(e.target_id) for e in entries) == sorted(c.pk for c in credentials)
    assert_by(entries, world_a.owner)


def test_bulk_delete_ignores_another_tenants_ids(console, world_a, world_b):
    theirs = services.credential_create(team=world_b.team, name="theirs", value="v")
    start = last_id()
    console.post(
        "tenants/credential/",
        {"action": "delete_selected", "_selected_action": [theirs.pk], "post": "yes"},
    )
    assert Credential.objects.filter(pk=theirs.pk).exists()
    assert entries_after(start) == []


def test_credential_choices_are_scoped_to_the_tenant(console, world_a, world_b):
    page = console.get("tenants/credential/add/").content.decode()
    assert world_a.team.name in page
    assert world_b.team.name not in page
    start = last_id()
    response = console.post(
        "tenants/credential/add/",
        {"team": world_b.team.pk, "name": "x", "credential_type": "text", "value": "v"},
    )
    assert response.status_code == 200
    assert "team" in response.context["adminform"].form.errors
    response = console.post(
        "tenants/credential/add/",
        {
            "team": world_a.team.pk,
            "name": "x",
            "credential_type": "text",
            "value": "v",
            "shared_with_teams": [world_b.team.pk],
        },
    )
    assert response.status_code == 200
    assert "shared_with_teams" in response.context["adminform"].form.errors
    assert entries_after(start) == []


# --- Resources -----------------------------------------------------------------------------


def test_resource_create_edit_delete(console, world_a):
    start = last_id()
    data = {"team": world_a.team.pk, "name": "Base URL", "value": "https://x.test"}
    assert console.post("tenants/resource/add/", data).status_code == 302
    resource = Resource.objects.get(name="Base URL")
    data = {**data, "value": "https://y.test"}
    response = console.post(f"tenants/resource/{resource.pk}/change/", data)
    assert response.status_code == 302
    response = console.post(f"tenants/resource/{resource.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    entries = entries_after(start)
    assert [e.operation_name for e in entries] == [
        "GlobalResourceCreation",
        "GlobalResourceEdit",
        "GlobalResourceDestruction",
    ]
    assert entries[1].changes == {"value": ["https://x.test", "https://y.test"]}
    assert_by(entries, world_a.owner)


# --- Stories, versions and pages -------------------------------------------------------------


def story_data(team: Team, **fields) -> dict:
    data = {"team": team.pk, "name": "Triage", "description": "", "enabled": "on"}
    data.update(fields)
    return {k: v for k, v in data.items() if v is not None}


def test_story_create_rename_archive_and_delete(console, world_a):
    start = last_id()
    response = console.post(
        "tenants/story/add/",
        {"team": world_a.team.pk, "name": "Triage", **inline("versions", [])},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    story = Story.objects.get(name="Triage")
    assert ops_after(start) == ["StoryCreation"]

    start = last_id()
    response = console.post(
        f"tenants/story/{story.pk}/change/",
        {**story_data(world_a.team, name="Triage v2"), **inline("versions", [{"name": "v1"}])},
    )
    assert response.status_code == 302
    entries = entries_after(start)
    assert [e.operation_name for e in entries] == ["StoryNameChange", "StoryVersionCreate"]
    assert entries[0].changes == {"name": ["Triage", "Triage v2"]}
    assert story.versions.get().snapshot["name"] == "Triage v2"
    assert_by(entries, world_a.owner)

    # Deleting a live story is refused with a message, not a 500.
    start = last_id()
    response = console.post(f"tenants/story/{story.pk}/delete/", {"post": "yes"}, follow=True)
    assert response.status_code == 200
    assert "Archive the story before deleting it." in messages_of(response)
    assert Story.objects.filter(pk=story.pk).exists()
    assert entries_after(start) == []

    version = story.versions.get()
    start = last_id()
    response = console.post(
        f"tenants/story/{story.pk}/change/",
        {
            **story_data(world_a.team, name="Triage v2", archived="on"),
            **inline("versions", [{"id": version.pk, "story": story.pk}], initial=1),
        },
    )
    assert response.status_code == 302
    assert ops_after(start) == ["StoryArchive"]
    assert Story.objects.get(pk=story.pk).archived

    start = last_id()
    response = console.post(f"tenants/story/{story.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    entries = entries_after(start)
    assert {e.operation_name for e in entries} == {
        "ArchivedStoryDeletion",
        "StoryVersionDeletion",
    }
    assert_by(entries, world_a.owner)


def test_page_create_and_publish_by_checkbox(console, world_a):
    story = factories.story(world_a.team, "Intake")
    start = last_id()
    response = console.post(
        "tenants/page/add/", {"story": story.pk, "name": "Form", "description": ""}
    )
    assert response.status_code == 302
    page = Page.objects.get(name="Form")
    response = console.post(
        f"tenants/page/{page.pk}/change/",
        {"name": "Form", "description": "", "published": "on"},
    )
    assert response.status_code == 302
    assert Page.objects.get(pk=page.pk).published
    response = console.post(f"tenants/page/{page.pk}/change/", {"name": "Form", "description": ""})
    assert response.status_code == 302
    entries = entries_after(start)
    assert [e.operation_name for e in entries] == ["PageCreation", "PagePublish", "PageUnpublish"]
    assert_by(entries, world_a.owner)


# --- Teams -----------------------------------------------------------------------------------


def test_team_create_with_members_update_and_delete(console, world_a):
    start = last_id()
    response = console.post(
        "tenants/team/add/",
        {
            "name": "Blue team",
            "description": "",
            **inline("memberships", [{"user": world_a.reader.pk, "role": "viewer"}]),
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    team = Team.objects.get(name="Blue team")
    assert ops_after(start) == ["TeamCreation", "TeamMembersAddition"]
    membership = Membership.objects.get(team=team)
    assert membership.user == world_a.reader
    assert membership.tenant_id == world_a.tenant.pk

    start = last_id()
    response = console.post(
        f"tenants/team/{team.pk}/change/",
        {
            "name": "Blue team",
            "description": "defenders",
            **inline(
                "memberships",
                [
                    {"id": membership.pk, "team": team.pk, "role": "admin"},
                    {"user": world_a.member.pk, "role": "editor"},
                ],
                initial=1,
            ),
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert ops_after(start) == ["TeamUpdate", "TeamMemberRoleChange", "TeamMembersAddition"]
    assert Membership.objects.get(pk=membership.pk).role == "admin"

    start = last_id()
    response = console.post(f"tenants/team/{team.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    entries = entries_after(start)
    assert "TeamDestruction" in [e.operation_name for e in entries]
    assert [e.operation_name for e in entries].count("TeamMemberRemoval") == 2
    assert_by(entries, world_a.owner)


def test_membership_user_choices_are_scoped(console, world_a, world_b):
    page = console.get("tenants/team/add/").content.decode()
    assert world_a.member.email in page
    assert world_b.member.email not in page
    start = last_id()
    response = console.post(
        "tenants/team/add/",
        {"name": "Mixed", **inline("memberships", [{"user": world_b.member.pk, "role": "viewer"}])},
    )
    assert response.status_code == 200
    assert not Team.objects.filter(name="Mixed").exists()
    assert entries_after(start) == []


# --- Users -----------------------------------------------------------------------------------


def test_user_invite_role_change_and_soft_deletion(console, world_a):
    start = last_id()
    response = console.post(
        "tenants/user/add/",
        {
            "email": "New.Person@Example.test",
            "name": "New Person",
            "role": "member",
            "permissions": ["AUDIT_LOG_READ"],
            "password": CANARY,
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    user = User.objects.get(email="new.person@example.test")
    assert user.tenant_id == world_a.tenant.pk
    assert user.permissions == ["AUDIT_LOG_READ"]
    assert user.check_password(CANARY)
    assert ops_after(start) == ["UsersInvitation"]

    start = last_id()
    response = console.post(
        f"tenants/user/{user.pk}/change/",
        {
            "email": user.email,
            "name": "New Person",
            "role": "owner",
            "permissions": ["AUDIT_LOG_READ"],
            "is_active": "on",
        },
    )
    assert response.status_code == 302
    entries = entries_after(start)
    assert [e.operation_name for e in entries] == ["UserRoleChange"]
    assert entries[0].changes == {"role": ["member", "owner"]}

    start = last_id()
    response = console.post(f"tenants/user/{user.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    user = User.objects.get(pk=user.pk)
    assert not user.is_active
    assert user.removed_at is not None
    entries = entries_after(start)
    assert "UserDeletion" in [e.operation_name for e in entries]
    assert_by(entries, world_a.owner)
    assert CANARY not in json.dumps(list(AuditLogEntry.objects.values()), default=str)


def test_bulk_user_delete_is_a_soft_removal(console, world_a):
    start = last_id()
    response = console.post(
        "tenants/user/",
        {
            "action": "delete_selected",
            "_selected_action": [world_a.member.pk, world_a.reader.pk],
            "post": "yes",
        },
    )
    assert response.status_code == 302
    assert User.objects.filter(pk__in=[world_a.member.pk, world_a.reader.pk]).count() == 2
    assert not User.objects.filter(pk=world_a.member.pk, is_active=True).exists()
    assert ops_after(start).count("UserDeletion") == 2


def test_removing_the_last_owner_is_a_message_not_a_500(console, world_a):
    owner = world_a.owner
    start = last_id()
    response = console.post(f"tenants/user/{owner.pk}/delete/", {"post": "yes"}, follow=True)
    assert response.status_code == 200
    assert "A tenant must keep at least one active owner." in messages_of(response)
    assert User.objects.get(pk=owner.pk).is_active
    assert entries_after(start) == []


# --- API keys --------------------------------------------------------------------------------


def test_api_key_created_shown_once_and_revoked(console, world_a):
    start = last_id()
    response = console.post(
        "tenants/apikey/add/",
        {"name": "CI", "kind": "service", "user": world_a.member.pk},
        follow=True,
    )
    assert response.status_code == 200
    api_key = ApiKey.objects.get(name="CI")
    shown = [m for m in messages_of(response) if ApiKey.PREFIX in m]
    assert len(shown) == 1
    raw = shown[0].split("The new API key is ")[1].split(" ")[0]
    assert ApiKey.hash_key(raw) == api_key.key_hash
    entries = entries_after(start)
    assert [e.operation_name for e in entries] == ["AuthenticationTokenCreation"]
    assert entries[0].inputs == {"inputs": {"name": "CI", "isServiceToken": True}}
    assert_by(entries, world_a.owner)

    # Never displayed again, and not editable.
    changelist = console.get("tenants/apikey/").content.decode()
    detail = console.get(f"tenants/apikey/{api_key.pk}/change/").content.decode()
    for html in (changelist, detail):
        assert raw not in html
        assert api_key.key_hash not in html
    response = console.post(
        f"tenants/apikey/{api_key.pk}/change/",
        {"name": "renamed", "kind": "personal", "user": world_a.member.pk},
    )
    assert response.status_code == 403
    assert ApiKey.objects.get(pk=api_key.pk).name == "CI"

    start = last_id()
    response = console.post(f"tenants/apikey/{api_key.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not ApiKey.objects.filter(pk=api_key.pk).exists()
    entries = entries_after(start)
    assert [e.operation_name for e in entries] == ["AuthenticationTokenDeletion"]
    assert_by(entries, world_a.owner)
    assert raw not in json.dumps(list(AuditLogEntry.objects.values()), default=str)


# --- Tenant settings -------------------------------------------------------------------------


def test_tenant_settings_change(console, world_a, world_b):
    changelist = console.get("tenants/tenant/").content.decode()
    assert world_a.tenant.name in changelist
    assert world_b.tenant.name not in changelist
    start = last_id()
    response = console.post(
        f"tenants/tenant/{world_a.tenant.pk}/change/",
        {"name": world_a.tenant.name, "session_timeout_minutes": "60"},
    )
    assert response.status_code == 302
    entries = entries_after(start)
    assert [e.operation_name for e in entries] == ["TenantConfigChange"]
    assert entries[0].changes == {"session_timeout_minutes": [720, 60]}
    assert_by(entries, world_a.owner)
    assert console.get("tenants/tenant/add/").status_code == 403
    assert console.get(f"tenants/tenant/{world_a.tenant.pk}/delete/").status_code == 403
    assert console.get(f"tenants/tenant/{world_b.tenant.pk}/change/").status_code == 404


@pytest.mark.parametrize("minutes", ["0", "4", "43201", "2147483647"])
def test_tenant_session_timeout_out_of_bounds_is_a_form_error(console, world_a, minutes):
    start = last_id()
    response = console.post(
        f"tenants/tenant/{world_a.tenant.pk}/change/",
        {"name": world_a.tenant.name, "session_timeout_minutes": minutes},
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == ["session_timeout_minutes"]
    world_a.tenant.refresh_from_db()
    assert world_a.tenant.session_timeout_minutes == 720
    assert entries_after(start) == []


# --- Isolation -------------------------------------------------------------------------------


@pytest.fixture
def both_worlds(world_a, world_b):
    """Each tenant gets one of everything, named after it."""
    rows = {}
    for world in (world_a, world_b):
        name = world.tenant.name
        story = factories.story(world.team, f"{name} story")
        rows[name] = {
            "team": world.team,
            "credential": services.credential_create(
                team=world.team, name=f"{name} credential", value="v"
            ),
            "resource": services.resource_create(team=world.team, name=f"{name} resource"),
            "story": story,
            "storyversion": services.story_version_create(story=story, name=f"{name} version"),
            "page": services.page_create(story=story, name=f"{name} page"),
            "apikey": services.api_key_create(user=world.owner, name=f"{name} key")[0],
            "user": world.member,
            "tenant": world.tenant,
        }
    return rows


def test_owner_never_sees_another_tenants_rows(console, world_a, world_b, both_worlds):
    theirs = both_worlds[world_b.tenant.name]
    ours = both_worlds[world_a.tenant.name]
    for model, obj in theirs.items():
        html = console.get(f"tenants/{model}/").content.decode()
        assert str(ours[model]) in html, model
        assert str(obj) not in html, model
        for view in ("change", "delete", "history"):
            response = console.get(f"tenants/{model}/{obj.pk}/{view}/")
            assert response.status_code == 404, (model, view)
            assert str(obj) not in response.content.decode()


def test_owner_cannot_change_another_tenants_rows(console, world_b, both_worlds):
    theirs = both_worlds[world_b.tenant.name]
    start = last_id()
    response = console.post(
        f"tenants/resource/{theirs['resource'].pk}/change/",
        {"team": theirs["team"].pk, "name": "hijacked"},
    )
    assert response.status_code == 404
    response = console.post(f"tenants/credential/{theirs['credential'].pk}/delete/", {"post": "1"})
    assert response.status_code == 404
    assert Resource.objects.get(pk=theirs["resource"].pk).name != "hijacked"
    assert Credential.objects.filter(pk=theirs["credential"].pk).exists()
    assert entries_after(start) == []


@pytest.mark.parametrize("who", ["member", "reader"])
def test_non_owners_cannot_enter(client, world_a, who):
    client.force_login(getattr(world_a, who))
    for path in ("", "tenants/credential/", "auditlog/auditlogentry/", "tenants/user/add/"):
        response = client.get(f"/admin/{path}", **META)
        assert response.status_code == 302, path
        assert "/admin/login/" in response["Location"]
    response = client.post(
        "/admin/tenants/team/add/", {"name": "sneaky", **inline("memberships", [])}, **META
    )
    assert response.status_code == 302
    assert not Team.objects.filter(name="sneaky").exists()


def test_member_cannot_sign_in_to_the_console(client, world_a):
    response = client.post(
        "/admin/login/",
        {"username": world_a.member.email, "password": factories.PASSWORD},
        **META,
    )
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session


def test_anonymous_is_sent_to_the_console_login(client, world_a):
    response = client.get("/admin/tenants/credential/", **META)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


# --- The audit log in the console ----------------------------------------------------------


def test_audit_log_admin_is_read_only_and_scoped(console, world_a, world_b):
    ours = AuditLogEntry.objects.filter(tenant=world_a.tenant).first()
    theirs = AuditLogEntry.objects.filter(
        tenant=world_b.tenant, operation_name="UsersInvitation"
    ).first()
    response = console.get("auditlog/auditlogentry/")
    assert response.status_code == 200
    shown = list(response.context["cl"].result_list)
    assert shown
    assert {e.tenant_id for e in shown} == {world_a.tenant.pk}
    assert "delete_selected" not in response.context["cl"].model_admin.get_actions(
        response.wsgi_request
    )
    assert theirs.target_repr not in response.content.decode()
    assert console.get("auditlog/auditlogentry/add/").status_code == 403
    detail = console.get(f"auditlog/auditlogentry/{ours.pk}/change/")
    assert detail.status_code == 200
    assert 'name="_save"' not in detail.content.decode()
    assert console.get(f"auditlog/auditlogentry/{ours.pk}/delete/").status_code == 403
    response = console.get(f"auditlog/auditlogentry/{theirs.pk}/change/", follow=True)
    assert theirs.target_repr not in response.content.decode()
    count = AuditLogEntry.objects.count()
    response = console.post(
        "auditlog/auditlogentry/",
        {"action": "delete_selected", "_selected_action": [ours.pk], "post": "yes"},
    )
    assert AuditLogEntry.objects.filter(pk=ours.pk).exists()
    assert AuditLogEntry.objects.count() == count


def test_audit_log_admin_filters_by_operation(console, world_a):
    response = console.get("auditlog/auditlogentry/?operation_name=UsersInvitation")
    shown = list(response.context["cl"].result_list)
    assert len(shown) == 3
    assert {e.operation_name for e in shown} == {"UsersInvitation"}


def test_every_console_page_renders_for_an_owner(console, world_a, world_b, both_worlds):
    ours = both_worlds[world_a.tenant.name]
    assert console.get("").status_code == 200
    for model, obj in ours.items():
        assert console.get(f"tenants/{model}/").status_code == 200, model
        assert console.get(f"tenants/{model}/{obj.pk}/change/").status_code == 200, model
        assert console.get(f"tenants/{model}/{obj.pk}/history/").status_code == 200, model
        if model != "tenant":
            assert console.get(f"tenants/{model}/add/").status_code == 200, model
            assert console.get(f"tenants/{model}/{obj.pk}/delete/").status_code == 200, model
    index = console.get("").content.decode()
    assert "Audit log entries" in index


def test_console_password_change_goes_through_the_service(console, world_a):
    start = last_id()
    response = console.post(
        "password_change/",
        {
            "old_password": factories.PASSWORD,
            "new_password1": "another-long-passphrase-9",
            "new_password2": "another-long-passphrase-9",
        },
    )
    assert response.status_code == 302
    assert User.objects.get(pk=world_a.owner.pk).check_password("another-long-passphrase-9")
    entries = entries_after(start)
    assert [e.operation_name for e in entries] == ["UserPasswordChange"]
    assert entries[0].changes == {"password": ["REDACTED", "REDACTED"]}
    assert_by(entries, world_a.owner)


def test_owner_signs_in_to_the_console(client, world_a):
    start = last_id()
    response = client.post(
        "/admin/login/?next=/admin/",
        {
            "username": world_a.owner.email.upper(),
            "password": factories.PASSWORD,
            "next": "/admin/",
        },
        **META,
    )
    assert response.status_code == 302
    assert response["Location"] == "/admin/"
    entries = entries_after(start)
    assert [e.operation_name for e in entries] == ["Login"]
    assert_by(entries, world_a.owner)
