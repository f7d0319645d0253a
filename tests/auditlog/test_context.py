"""Request context: client address behind trusted proxies, request ids, task attribution."""

import pytest
from django.http import HttpResponse
from django.test import RequestFactory

from audit_project.celery import app as celery_app
from auditlog.context import client_ip
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


def test_middleware_context_reaches_the_entry_and_echoes_request_id(world_a):
    middleware = AuditContextMiddleware(_rename_team_view(world_a.team))
    request = RequestFactory().get(
        "/", REMOTE_ADDR="192.0.2.44", HTTP_USER_AGENT="probe/1.0", HTTP_X_REQUEST_ID="abc-123"
    )
    response = middleware(request)
    entry = AuditLogEntry.objects.get(operation_name="TeamUpdate")
    assert response["X-Request-ID"] == "abc-123" == entry.request_id
    assert (entry.request_ip, entry.request_user_agent) == ("192.0.2.44", "probe/1.0")
    assert (entry.user, entry.actor_type) == (world_a.owner, "user")
    assert entry.user_email == world_a.owner.email


def test_unsafe_request_id_is_replaced(world_a):
    middleware = AuditContextMiddleware(_rename_team_view(world_a.team))
    response = middleware(RequestFactory().get("/", HTTP_X_REQUEST_ID="<script>" * 20))
    assert response["X-Request-ID"].isalnum()
    assert (
        AuditLogEntry.objects.get(operation_name="TeamUpdate").request_id
        == response["X-Request-ID"]
    )


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
