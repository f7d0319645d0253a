"""Request context: client address behind trusted proxies, request ids, task attribution."""

import re
import time

import pytest
from django.http import HttpResponse
from django.test import RequestFactory

from audit_project.celery import app as celery_app
from auditlog.context import client_ip, new_request_id
from auditlog.middleware import AuditContextMiddleware
from auditlog.models import AuditLogEntry
from tenants import services

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("proxies", "forwarded", "expected"),
    [
        (0, "203.0.113.9", "10.0.0.1"),  # no trusted proxy: the header is ignored
        (1, "198.51.100.7, 203.0.113.9", "203.0.113.9"),  # the hop our proxy saw
        (2, "198.51.100.7, 203.0.113.9", "198.51.100.7"),
        (2, "203.0.113.9", "10.0.0.1"),  # fewer hops than proxies: not trustworthy
        (1, "not-an-ip", None),
        (1, "fe80::1%eth0", "fe80::1"),  # a zone means nothing off its host; inet refuses it
        (1, "fe80::1%" + "x" * 100, "fe80::1"),
    ],
)
def test_client_ip_honours_only_trusted_proxies(settings, proxies, forwarded, expected):
    settings.TRUSTED_PROXY_COUNT = proxies
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=forwarded)
    assert client_ip(request) == expected


def _rename_team_view(team):
    def view(request):
        request.user = team.tenant.users.get(role="owner")
        services.team_update(team=team, name="Renamed in a request")
        return HttpResponse("ok")

    return view


def test_middleware_context_reaches_the_entry_and_answers_the_servers_request_id(world_a):
    middleware = AuditContextMiddleware(_rename_team_view(world_a.team))
    request = RequestFactory().get(
        "/", REMOTE_ADDR="192.0.2.44", HTTP_USER_AGENT="probe/1.0", HTTP_X_REQUEST_ID="abc-123"
    )
    response = middleware(request)
    entry = AuditLogEntry.objects.get(operation_name="TeamUpdate")
    assert response["X-Request-ID"] == entry.request_id != "abc-123"
    assert entry.client_request_id == "abc-123"
    assert (entry.request_ip, entry.request_user_agent) == ("192.0.2.44", "probe/1.0")
    assert (entry.user, entry.actor_type) == (world_a.owner, "user")
    assert entry.user_email == world_a.owner.email


def test_a_spoofed_request_id_is_kept_as_the_clients_never_as_the_servers(api, client, world_a):
    """Another request's id sent as X-Request-ID does not make an entry pass for that request's."""
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {world_a.keys['owner']}")
    earlier = api.post("/api/v1/teams/", {"name": "Earlier"}, format="json")
    spoofed = earlier["X-Request-ID"]
    earlier_entries = AuditLogEntry.objects.filter(request_id=spoofed).count()
    response = api.post(
        "/api/v1/teams/", {"name": "Spoofed"}, format="json", HTTP_X_REQUEST_ID=spoofed
    )
    assert response.status_code == 201, response.content
    entry = AuditLogEntry.objects.get(operation_name="TeamCreation", target_repr="Spoofed")
    assert entry.request_id == response["X-Request-ID"]
    assert entry.request_id != spoofed
    assert entry.client_request_id == spoofed
    assert AuditLogEntry.objects.filter(request_id=spoofed).count() == earlier_entries
    listed = api.get("/api/v1/audit_logs", {"request_id": response["X-Request-ID"]})
    (row,) = listed.json()["audit_logs"]
    assert (row["request_id"], row["client_request_id"]) == (entry.request_id, spoofed)
    client.force_login(world_a.owner)
    page = client.get(f"/settings/audit-logs/{entry.pk}/").content.decode()
    assert f"<dt>Client request id</dt><dd><code>{spoofed}</code></dd>" in page


@pytest.mark.parametrize("sent", [None, "<script>" * 20, "abc-123\n", "x" * 65])
def test_an_absent_or_unsafe_client_request_id_is_dropped(api, world_a, sent):
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {world_a.keys['owner']}")
    headers = {} if sent is None else {"HTTP_X_REQUEST_ID": sent}
    response = api.post("/api/v1/teams/", {"name": "Plain"}, format="json", **headers)
    assert response.status_code == 201, response.content
    assert re.fullmatch(r"[0-9a-f]{32}", response["X-Request-ID"])
    entry = AuditLogEntry.objects.get(operation_name="TeamCreation", target_repr="Plain")
    assert (entry.request_id, entry.client_request_id) == (response["X-Request-ID"], None)
    listed = api.get("/api/v1/audit_logs", {"request_id": entry.request_id})
    assert listed.json()["audit_logs"][0]["client_request_id"] is None


UNSTORABLE_AGENTS = [
    # (sent, stored): PostgreSQL cannot store NUL in text, UTF-8 cannot encode a lone surrogate.
    ("probe\x00agent", "probe\\x00agent"),
    ("line\r\nbreak\x7f\x9b", "line\\x0d\\x0abreak\\x7f\\x9b"),
    ("half \ud800 pair", "half \\ud800 pair"),
    ("é" * 600, "é" * 512),
    ("\x00" * 200, "\\x00" * 128),
]
AGENT_IDS = ["nul", "crlf-del-c1", "lone-surrogate", "too-long", "escaped-too-long"]


@pytest.mark.parametrize(("sent", "stored"), UNSTORABLE_AGENTS, ids=AGENT_IDS)
def test_failed_sign_in_with_an_unstorable_user_agent_is_recorded(client, world_a, sent, stored):
    response = client.post(
        "/login/",
        {"username": world_a.member.email, "password": "not-the-password"},
        HTTP_USER_AGENT=sent,
    )
    assert response.status_code == 200
    entry = AuditLogEntry.objects.get(operation_name="LoginFailure")
    assert entry.request_user_agent == stored
    assert entry.inputs == {"inputs": {"email": world_a.member.email}}


@pytest.mark.parametrize(("sent", "stored"), UNSTORABLE_AGENTS, ids=AGENT_IDS)
def test_api_write_with_an_unstorable_user_agent_is_recorded(api, world_a, sent, stored):
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {world_a.keys['owner']}")
    response = api.post("/api/v1/teams/", {"name": "Agents"}, format="json", HTTP_USER_AGENT=sent)
    assert response.status_code == 201, response.content
    entry = AuditLogEntry.objects.get(operation_name="TeamCreation", target_repr="Agents")
    assert entry.request_user_agent == stored
    assert entry.request_id == response["X-Request-ID"]


@celery_app.task
def rename_team(team_id: int) -> None:
    from tenants.models import Team

    services.team_update(team=Team.objects.get(pk=team_id), name="Renamed by a task")


def test_celery_task_entries_are_attributed_to_the_task(world_a):
    result = rename_team.apply(args=[world_a.team.pk])
    assert result.successful()
    entry = AuditLogEntry.objects.get(operation_name="TeamUpdate")
    assert (entry.actor_type, entry.user_id) == ("task", None)
    assert entry.request_id == f"task-{result.id}"


def test_generated_request_ids_begin_with_the_time_and_stay_unique():
    before = time.time_ns() // 1_000_000
    ids = [new_request_id() for _ in range(1000)]
    after = time.time_ns() // 1_000_000
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[0-9a-f]{32}", request_id) for request_id in ids)
    # Time first: new entries land together at the end of the request-id index.
    assert all(before <= int(request_id[:12], 16) <= after for request_id in ids)
