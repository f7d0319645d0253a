"""Per-tenant accounts: an address may have an account in every tenant, each its own.

An invitation, creation or edit in one tenant answers the same whether or not the address
has an account in another; each account signs in with its own password, to its own tenant.
"""

import re

import pytest
from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.contrib.auth.hashers import MD5PasswordHasher
from django.core.management import CommandError, call_command
from django.test import Client
from rest_framework.test import APIClient

from auditlog.models import AuditLogEntry
from auditlog.throttling import parse_rate
from tenants import services
from tenants.models import User

pytestmark = pytest.mark.django_db

IP = "203.0.113.7"
META = {"REMOTE_ADDR": IP, "HTTP_USER_AGENT": "AccountsTest/1.0"}
SHARED = "shared.person@example.test"
PASSWORD_A = "acme-own-password-1"
PASSWORD_B = "globex-own-password-2"


def owner_api(world) -> APIClient:
    client = APIClient(**META)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {world.keys['owner']}")
    return client


def shape(response) -> tuple[int, list[str]]:
    """What an answer tells apart from its own values: status and keys."""
    body = response.json()
    return response.status_code, sorted(body)


def sign_in(page: str, email: str, password: str, tenant: str = "") -> Client:
    client = Client()
    data = {"username": email, "password": password, "tenant": tenant, "next": "/"}
    client.response = client.post(page, data, **META)
    return client


def signed_in_as(client: Client) -> User | None:
    pk = client.session.get(SESSION_KEY)
    return User.objects.get(pk=pk) if pk else None


def errors_of(response) -> str:
    return re.sub(r"&#x27;|&#39;", "'", response.content.decode())


@pytest.fixture
def shared(world_a, world_b):
    """One address with an owner account in each tenant, each with its own password."""
    return {
        world.tenant.name: services.user_invite(
            tenant=world.tenant, email=SHARED, role=User.Role.OWNER, password=password
        )
        for world, password in ((world_a, PASSWORD_A), (world_b, PASSWORD_B))
    }


# --- invitations and edits do not depend on other tenants -----------------------------------


def test_invite_answers_the_same_whether_another_tenant_has_the_address(world_a, world_b):
    api = owner_api(world_a)
    elsewhere = api.post(
        "/api/v1/users/", {"email": world_b.reader.email, "role": "member"}, format="json"
    )
    nowhere = api.post(
        "/api/v1/users/", {"email": "nobody-here@globex.example", "role": "member"}, format="json"
    )
    assert elsewhere.status_code == 201, elsewhere.content
    assert shape(elsewhere) == shape(nowhere)
    assert elsewhere.json()["email"] == world_b.reader.email
    # Acme's account does not stop Globex from inviting the address, nor touch Globex's own.
    taken_by_acme = owner_api(world_b).post(
        "/api/v1/users/", {"email": "nobody-here@globex.example", "role": "member"}, format="json"
    )
    assert taken_by_acme.status_code == 201, taken_by_acme.content
    assert User.objects.filter(email=world_b.reader.email).count() == 2
    world_b.reader.refresh_from_db()
    assert world_b.reader.tenant_id == world_b.tenant.pk


def test_edit_answers_the_same_whether_another_tenant_has_the_address(world_a, world_b):
    api = owner_api(world_a)
    url = f"/api/v1/users/{world_a.member.pk}/"
    elsewhere = api.patch(url, {"email": world_b.owner.email}, format="json")
    assert elsewhere.status_code == 200, elsewhere.content
    nowhere = api.patch(url, {"email": "nobody-here@globex.example"}, format="json")
    assert shape(elsewhere) == shape(nowhere)


@pytest.mark.parametrize("case", [str.lower, str.upper])
def test_a_duplicate_in_the_same_tenant_is_400_naming_email(world_a, case):
    api = owner_api(world_a)
    start = AuditLogEntry.objects.count()
    created = api.post(
        "/api/v1/users/", {"email": case(world_a.reader.email), "role": "member"}, format="json"
    )
    assert created.status_code == 400
    assert list(created.json()) == ["email"]
    edited = api.patch(
        f"/api/v1/users/{world_a.member.pk}/", {"email": case(world_a.owner.email)}, format="json"
    )
    assert edited.status_code == 400
    assert list(edited.json()) == ["email"]
    assert AuditLogEntry.objects.count() == start


def test_the_admin_add_form_is_scoped_to_the_tenant(client, world_a, world_b):
    client.force_login(world_a.owner)
    add = {"email": world_b.member.email, "name": "", "role": "member", "password": ""}
    response = client.post("/admin/tenants/user/add/", add, **META)
    assert response.status_code == 302, errors_of(response)[:2000]
    assert User.objects.filter(tenant=world_a.tenant, email=world_b.member.email).exists()

    add["email"] = world_a.reader.email.upper()
    response = client.post("/admin/tenants/user/add/", add, **META)
    assert response.status_code == 200
    assert list(response.context["adminform"].form.errors) == ["email"]

    change = {"email": world_a.reader.email, "name": "", "role": "member", "is_active": "on"}
    response = client.post(f"/admin/tenants/user/{world_a.member.pk}/change/", change, **META)
    assert response.status_code == 200
    assert list(response.context["adminform"].form.errors) == ["email"]


def test_createsuperuser_accepts_an_address_of_another_tenant_only(world_a, world_b, monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", PASSWORD_A)
    call_command(
        "createsuperuser", "--noinput", email=world_b.owner.email.upper(), tenant=world_a.tenant.pk
    )
    made = User.objects.get(tenant=world_a.tenant, email=world_b.owner.email)
    assert made.is_owner
    with pytest.raises(CommandError, match="already exists in this tenant"):
        call_command(
            "createsuperuser", "--noinput", email=world_b.owner.email, tenant=world_a.tenant.pk
        )


# --- signing in -------------------------------------------------------------------------------


@pytest.mark.parametrize("page", ["/login/", "/admin/login/"])
def test_each_account_signs_in_with_its_own_password_to_its_own_tenant(
    world_a, world_b, shared, page
):
    for world, password in ((world_a, PASSWORD_A), (world_b, PASSWORD_B)):
        client = sign_in(page, SHARED.upper(), password)
        assert client.response.status_code == 302
        user = signed_in_as(client)
        assert user == shared[world.tenant.name]
        assert user.tenant_id == world.tenant.pk
        assert world.tenant.name in client.get("/", **META).content.decode()
        login = AuditLogEntry.objects.filter(operation_name="Login").order_by("-id").first()
        assert (login.tenant_id, login.user_id) == (world.tenant.pk, user.pk)


def test_a_wrong_password_is_a_failure_in_every_tenant_with_the_address(world_a, world_b, shared):
    client = sign_in("/login/", SHARED, "neither-of-them")
    assert client.response.status_code == 200
    assert signed_in_as(client) is None
    failures = AuditLogEntry.objects.filter(operation_name="LoginFailure", target_repr=SHARED)
    assert sorted(failures.values_list("tenant_id", flat=True)) == sorted(
        [world_a.tenant.pk, world_b.tenant.pk]
    )


def test_one_password_for_two_accounts_asks_for_the_tenant(world_a, world_b, shared):
    services.user_set_password(user=shared[world_b.tenant.name], password=PASSWORD_A)
    client = sign_in("/login/", SHARED, PASSWORD_A)
    assert client.response.status_code == 200
    assert signed_in_as(client) is None
    assert "enter the tenant" in errors_of(client.response)

    client = sign_in("/login/", SHARED, PASSWORD_A, tenant=world_b.tenant.name.upper())
    assert client.response.status_code == 302
    assert signed_in_as(client) == shared[world_b.tenant.name]

    # A tenant named wrongly (or another tenant's) opens nothing, with the usual answer.
    client = sign_in("/login/", SHARED, PASSWORD_B, tenant=world_a.tenant.name)
    assert client.response.status_code == 200
    assert signed_in_as(client) is None
    assert "enter the tenant" not in errors_of(client.response)


def test_the_tenant_field_is_on_both_sign_in_pages(client):
    for page in ("/login/", "/admin/login/"):
        assert 'name="tenant"' in client.get(page, **META).content.decode()


def test_the_lockout_counts_the_address_across_its_accounts(world_a, world_b, shared):
    limit = parse_rate(settings.SIGN_IN_FAILURES_PER_ACCOUNT)[0]
    statuses = [
        sign_in("/login/", SHARED, f"wrong-{i}").response.status_code for i in range(limit + 1)
    ]
    # As for one account: the failure that reaches the limit is already answered 429.
    assert statuses == [200] * (limit - 1) + [429, 429]
    # Locked for every account of the address, the right passwords too.
    assert sign_in("/login/", SHARED, PASSWORD_A).response.status_code == 429
    assert sign_in("/login/", SHARED, PASSWORD_B).response.status_code == 429
    lockouts = AuditLogEntry.objects.filter(operation_name="LoginLockout", target_repr=SHARED)
    assert sorted(lockouts.values_list("tenant_id", flat=True)) == sorted(
        [world_a.tenant.pk, world_b.tenant.pk]
    )


class CountingHasher(MD5PasswordHasher):
    """The suite's hasher, counting the hashes it computes (the cost timing would show)."""

    computed = 0

    def encode(self, password: str, salt: str) -> str:
        CountingHasher.computed += 1
        return super().encode(password, salt)


@pytest.mark.parametrize("who", ["no account", "no password yet", "one account"])
def test_a_failed_sign_in_always_costs_one_hash(settings, world_a, who):
    emails = {
        "no account": "nobody-here@globex.example",
        "no password yet": services.user_invite(tenant=world_a.tenant, email="new@x.test").email,
        "one account": world_a.member.email,
    }
    settings.PASSWORD_HASHERS = [f"{__name__}.CountingHasher"]
    CountingHasher.computed = 0
    client = sign_in("/login/", emails[who], "not-the-password")
    assert client.response.status_code == 200
    assert CountingHasher.computed == 1
