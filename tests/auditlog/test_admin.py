"""The admin console's audit log: readable rows, a search that uses an index, no full scans."""

import html as markup
import re
from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from auditlog import admin as audit_admin
from auditlog import pagination
from auditlog.models import AuditLogEntry
from auditlog.services import entry_row, record_rows
from tests import factories

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/auditlog/auditlogentry/"
ROW = re.compile(r'href="/admin/auditlog/auditlogentry/(\d+)/change/')


def shown(response) -> list[int]:
    assert response.status_code == 200
    seen: list[int] = []
    for match in ROW.findall(response.content.decode()):
        if int(match) not in seen:
            seen.append(int(match))
    return seen


def entry(tenant, name="TeamUpdate", **columns) -> int:
    row = entry_row(operation_name=name, tenant_id=tenant.pk)
    row.update(columns)
    record_rows([row])
    return AuditLogEntry.objects.latest("id").pk


@pytest.fixture
def console(client, world_a):
    client.force_login(world_a.owner)
    return client


def test_rows_show_descriptions_beside_names_and_times_with_their_zone(console, world_a):
    at = datetime(2024, 3, 1, 10, 0, 0, tzinfo=UTC)
    entry(world_a.tenant, "TeamCreation", created_at=at, target_repr="Blue", target_type="team")
    html = console.get(CHANGELIST).content.decode()
    assert 'Created a team<br><code class="quiet">TeamCreation</code>' in html
    assert "2024-03-01<br>10:00:00 UTC" in html
    assert "Blue<br>" in html
    # In the zone the Audit logs tab uses for this viewer.
    console.cookies["tz"] = "Asia/Tokyo"
    assert "2024-03-01<br>19:00:00 JST" in console.get(CHANGELIST).content.decode()
    # The sidebar names operations in words too, and offers the tab's time presets.
    assert ">Created a team</a>" in html
    assert ">Last 7 days</a>" in html


def test_search_says_what_it_searches(console):
    html = markup.unescape(console.get(CHANGELIST).content.decode())
    assert audit_admin.SEARCH_HELP in html


def test_search_matches_what_people_type(console, world_a, world_b):
    ops = factories.team(world_a.tenant, "Security Operations")
    theirs = factories.team(world_b.tenant, "Security Operations Globex")
    created = AuditLogEntry.objects.get(operation_name="TeamCreation", target_id=str(ops.pk))
    email = world_a.reader.email
    for _ in range(2):
        entry(world_a.tenant, user_email=email, user_id=world_a.reader.pk)
    by_reader = list(
        AuditLogEntry.objects.filter(tenant=world_a.tenant)
        .filter(audit_admin.Q(user_email=email) | audit_admin.Q(target_repr=email))
        .order_by("-created_at", "-id")
        .values_list("id", flat=True)
    )
    assert len(by_reader) >= 3  # their invitation (target) and two entries of theirs
    with_request = entry(world_a.tenant, request_id="req-7f3a", target_id="42")
    # A target's name, several words, any case; a prefix, never the middle of a word.
    assert shown(console.get(CHANGELIST, {"q": "security op"})) == [created.pk]
    assert shown(console.get(CHANGELIST, {"q": "  SECURITY OPERATIONS "})) == [created.pk]
    assert shown(console.get(CHANGELIST, {"q": "curity"})) == []
    # A user's email, or its start.
    assert shown(console.get(CHANGELIST, {"q": email.upper()})) == by_reader
    assert shown(console.get(CHANGELIST, {"q": email.split("@")[0] + "@"})) == by_reader
    # Exact ids.
    assert shown(console.get(CHANGELIST, {"q": "req-7f3a"})) == [with_request]
    assert with_request in shown(console.get(CHANGELIST, {"q": "42"}))
    # LIKE wildcards are text; another tenant's rows never match.
    assert shown(console.get(CHANGELIST, {"q": "%"})) == []
    assert shown(console.get(CHANGELIST, {"q": "_ecurity"})) == []
    their_entry = AuditLogEntry.objects.get(target_id=str(theirs.pk), operation_name="TeamCreation")
    assert their_entry.pk not in shown(console.get(CHANGELIST, {"q": "Security Operations G"}))
    # The search and the FilterSet's parameters work together.
    got = shown(console.get(CHANGELIST, {"q": "security", "operation_name": "TeamUpdate"}))
    assert got == []


def test_count_stops_at_the_api_cap_and_says_so(console, world_a, monkeypatch):
    monkeypatch.setattr(pagination, "COUNT_CAP", 3)
    monkeypatch.setattr(audit_admin, "COUNT_CAP", 3)
    assert AuditLogEntry.objects.filter(tenant=world_a.tenant).count() > 3
    with CaptureQueriesContext(connection) as queries:
        html = console.get(CHANGELIST).content.decode()
    assert "More than 3 audit log entries" in html
    counts = [q["sql"] for q in queries if "COUNT(" in q["sql"].upper()]
    assert counts
    assert all("LIMIT 4" in sql for sql in counts), counts
    assert "date_hierarchy" not in html.lower().replace("-", "_")
    assert not [q for q in queries if "DISTINCT" in q["sql"].upper()]


def _plan(sql: str, params) -> str:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute(f"EXPLAIN {sql}", params)
        else:
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)
        return "\n".join(str(row) for row in cursor.fetchall())


def test_search_is_served_by_the_prefix_indexes_led_by_the_tenant(world_a, world_b, rf):
    rows = []
    for n in range(3000):
        tenant = world_a.tenant if n % 2 else world_b.tenant
        row = entry_row(operation_name="TeamUpdate", tenant_id=tenant.pk)
        row.update(user_email=f"person{n}@example.test", target_repr=f"Target {n}")
        rows.append(row)
    record_rows(rows)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE auditlog_auditlogentry")
    model_admin = audit_admin.AuditLogEntryAdmin(AuditLogEntry, audit_admin.admin.site)
    request = rf.get(CHANGELIST)
    request.user = world_a.owner
    entries = model_admin.get_queryset(request)
    matches = entries.filter(
        audit_admin.Q(user_email__istartswith="person123")
        | audit_admin.Q(target_repr__istartswith="person123")
    )
    sql, params = matches.order_by().values_list("pk", flat=True).query.sql_with_params()
    plan = _plan(sql, params)
    if connection.vendor == "postgresql":
        # Each monthly partition has its own copy of the prefix indexes, named by PostgreSQL:
        # the prefix must be an index range (``~>=~``), not a filter over the tenant's rows.
        assert "upper((user_email)::text) ~>=~" in plan, plan
        assert "upper((target_repr)::text) ~>=~" in plan, plan
    else:
        assert "auditlog_tenant_email_prefix" in plan, plan
        assert "auditlog_tenant_target_prefix" in plan, plan
    assert "Seq Scan" not in plan
    assert "SCAN auditlog_auditlogentry" not in plan  # SQLite's full scan
    found, _ = model_admin.get_search_results(request, entries, "PERSON123")
    assert sorted(found.values_list("user_email", flat=True)) == [
        "person1231@example.test",
        "person1233@example.test",
        "person1235@example.test",
        "person1237@example.test",
        "person1239@example.test",
        "person123@example.test",
    ]
