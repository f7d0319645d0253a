"""Sign-in, sign-out and home: the real pages, and the entries they leave behind."""

import json
from datetime import timedelta
from importlib import import_module

import pytest
from django.apps import apps as django_apps
from django.conf import settings
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone

from auditlog.models import AuditLogEntry
from tenants import services
from tenants.models import Tenant

from .. import factories

pytestmark = pytest.mark.django_db

IP = "203.0.113.7"
AGENT = "Mozilla/5.0 (AuthPagesTest)"
META = {"REMOTE_ADDR": IP, "HTTP_USER_AGENT": AGENT}


def last_id() -> int:
    return AuditLogEntry.objects.order_by("-id").values_list("id", flat=True).first() or 0


def entries_after(start: int) -> list[AuditLogEntry]:
    return list(AuditLogEntry.objects.filter(id__gt=start).order_by("id"))


def sign_in(client: Client, email: str, password: str = factories.PASSWORD):
    return client.post("/login/", {"username": email, "password": password}, **META)


def test_login_page_is_plain_accessible_html(client):
    response = client.get("/login/", **META)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'href="#content"' in html
    assert "<h1>Sign in</h1>" in html
    assert '<label for="id_username">Email</label>' in html
    assert '<label for="id_password">' in html
    assert 'type="password"' in html
    assert "csrfmiddlewaretoken" in html


def test_sign_in_records_one_login(client, world_a):
    start = last_id()
    response = sign_in(client, world_a.owner.email)
    assert response.status_code == 302
    assert response["Location"] == "/"
    entries = entries_after(start)
    assert [e.operation_name for e in entries] == ["Login"]
    entry = entries[0]
    assert entry.user_id == world_a.owner.pk
    assert entry.user_email == world_a.owner.email
    assert entry.tenant_id == world_a.tenant.pk
    assert entry.request_ip == IP
    assert entry.request_user_agent == AGENT
    assert entry.inputs is None
    assert entry.actor_type == "user"


def test_sign_in_is_case_insensitive_on_the_email(client, world_a):
    response = sign_in(client, world_a.owner.email.upper())
    assert response.status_code == 302


@pytest.mark.parametrize("page", ["/login/", "/admin/login/"])
def test_sign_in_lasts_the_tenants_session_timeout_on_both_pages(client, world_a, page):
    services.tenant_update(tenant=world_a.tenant, session_timeout_minutes=30)
    response = client.post(
        page,
        {"username": world_a.owner.email, "password": factories.PASSWORD, "next": "/"},
        **META,
    )
    assert response.status_code == 302
    assert client.session.get_expiry_age() == 30 * 60
    assert response.cookies[settings.SESSION_COOKIE_NAME]["max-age"] == 30 * 60


def session_row_lifetime(client: Client) -> timedelta:
    """How long the server keeps the client's session: its row's expire_date, from now."""
    row = Session.objects.get(session_key=client.cookies[settings.SESSION_COOKIE_NAME].value)
    return row.expire_date - timezone.now()


@pytest.mark.parametrize("page", ["/login/", "/admin/login/"])
def test_the_stored_session_expires_with_the_tenants_timeout(client, world_a, page):
    services.tenant_update(tenant=world_a.tenant, session_timeout_minutes=30)
    data = {"username": world_a.owner.email, "password": factories.PASSWORD, "next": "/"}
    response = client.post(page, data, **META)
    assert response.status_code == 302
    assert response.cookies[settings.SESSION_COOKIE_NAME]["max-age"] == 30 * 60
    assert timedelta(minutes=29) < session_row_lifetime(client) <= timedelta(minutes=30)


@pytest.mark.parametrize("page", ["/login/", "/admin/login/"])
@pytest.mark.parametrize(("stored", "minutes"), [(0, 5), (1, 5), (10**9, 43_200)])
def test_a_timeout_stored_out_of_bounds_still_gives_a_bounded_session(
    client, world_a, page, stored, minutes
):
    # A row from before the bounds, or written by SQL: the model's validators never saw it.
    Tenant.objects.filter(pk=world_a.tenant.pk).update(session_timeout_minutes=stored)
    data = {"username": world_a.owner.email, "password": factories.PASSWORD, "next": "/"}
    response = client.post(page, data, **META)
    assert response.status_code == 302
    assert response.cookies[settings.SESSION_COOKIE_NAME]["max-age"] == minutes * 60
    lifetime = session_row_lifetime(client)
    assert timedelta(minutes=minutes - 1) < lifetime <= timedelta(minutes=minutes)


def test_the_migration_clamps_stored_timeouts_into_the_bounds(world_a, world_b):
    clamp = import_module("tenants.migrations.0002_session_timeout_bounds").clamp_session_timeouts
    Tenant.objects.filter(pk=world_a.tenant.pk).update(session_timeout_minutes=0)
    Tenant.objects.filter(pk=world_b.tenant.pk).update(session_timeout_minutes=2_147_483_647)
    in_bounds = factories.tenant()
    clamp(django_apps, None)
    timeouts = dict(Tenant.objects.values_list("pk", "session_timeout_minutes"))
    assert timeouts[world_a.tenant.pk] == 5
    assert timeouts[world_b.tenant.pk] == 43_200
    assert timeouts[in_bounds.pk] == 720


def test_wrong_password_records_one_login_failure_without_the_password(client, world_a):
    start = last_id()
    wrong = "wrong-password-canary-41"
    response = sign_in(client, world_a.member.email, wrong)
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session
    entries = entries_after(start)
    assert [e.operation_name for e in entries] == ["LoginFailure"]
    entry = entries[0]
    assert entry.tenant_id == world_a.tenant.pk
    assert entry.inputs == {"inputs": {"email": world_a.member.email}}
    assert entry.request_ip == IP
    assert entry.request_user_agent == AGENT
    row = AuditLogEntry.objects.filter(pk=entry.pk).values()[0]
    assert wrong not in json.dumps(row, default=str)


def test_login_failure_is_filed_under_the_accounts_tenant(client, world_a, world_b):
    start = last_id()
    sign_in(client, world_b.owner.email, "not-it")
    (entry,) = entries_after(start)
    assert entry.tenant_id == world_b.tenant.pk


def test_unknown_email_records_nothing_and_does_not_crash(client, world_a):
    start = last_id()
    response = sign_in(client, "nobody@example.test", "whatever")
    assert response.status_code == 200
    assert "Please enter a correct" in response.content.decode()
    assert entries_after(start) == []


def test_home_requires_sign_in(client, world_a):
    response = client.get("/", **META)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_home_shows_who_and_links(client, world_a):
    sign_in(client, world_a.owner.email)
    html = client.get("/", **META).content.decode()
    assert world_a.owner.email in html
    assert world_a.tenant.name in html
    assert "Settings" in html
    assert 'href="/admin/">Admin console</a>' in html


def test_home_hides_admin_console_from_members(client, world_a):
    sign_in(client, world_a.member.email)
    html = client.get("/", **META).content.decode()
    assert world_a.tenant.name in html
    assert "Admin console" not in html


def test_logout_by_post_records_logout(client, world_a):
    sign_in(client, world_a.owner.email)
    start = last_id()
    response = client.post("/logout/", **META)
    assert response.status_code == 302
    assert "_auth_user_id" not in client.session
    entries = entries_after(start)
    assert [e.operation_name for e in entries] == ["Logout"]
    assert entries[0].user_id == world_a.owner.pk
    assert entries[0].tenant_id == world_a.tenant.pk
    assert entries[0].request_ip == IP
    assert entries[0].request_user_agent == AGENT


def test_get_logout_does_not_sign_out(client, world_a):
    sign_in(client, world_a.owner.email)
    start = last_id()
    response = client.get("/logout/", **META)
    assert response.status_code == 405
    assert client.session["_auth_user_id"] == str(world_a.owner.pk)
    assert entries_after(start) == []


def test_logout_without_csrf_token_is_refused(world_a):
    client = Client(enforce_csrf_checks=True)
    client.force_login(world_a.owner)
    response = client.post("/logout/", **META)
    assert response.status_code == 403
    assert client.session["_auth_user_id"] == str(world_a.owner.pk)
