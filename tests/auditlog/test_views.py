"""Settings → Audit logs: the tab, an entry's detail and the download, through real requests."""

import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from auditlog import views
from auditlog.downloads import csv_header
from auditlog.models import AuditLogEntry
from auditlog.pagination import InvalidCursor, decode_cursor, encode_cursor
from auditlog.serializers import entry_to_json
from auditlog.services import entry_row, record_rows

pytestmark = pytest.mark.django_db

LIST = "/settings/audit-logs/"
DOWNLOAD = "/settings/audit-logs/download"
ROW_ID = re.compile(r'data-entry-id="(\d+)"')


def ids_on(response) -> list[int]:
    return [int(i) for i in ROW_ID.findall(response.content.decode())]


def make_entry(tenant, operation_name="TeamUpdate", *, user=None, at=None, **columns) -> int:
    """One entry written through the record service, with chosen time and request columns."""
    row = entry_row(operation_name=operation_name, tenant_id=tenant.pk, user=user)
    row.update(created_at=at or timezone.now(), **columns)
    record_rows([row])
    return AuditLogEntry.objects.order_by("-id").values_list("id", flat=True).first()


def expected_ids(user, **lookups) -> list[int]:
    """Ids the user's tenant holds that match ``lookups``, newest first (computed independently)."""
    queryset = AuditLogEntry.objects.filter(tenant_id=user.tenant_id, **lookups)
    return list(queryset.order_by("-created_at", "-id").values_list("id", flat=True))


def download(client, query: str = "", fmt: str = "csv"):
    response = client.get(f"{DOWNLOAD}?format={fmt}{'&' + query if query else ''}")
    body = b"".join(response.streaming_content).decode() if response.streaming else ""
    return response, body


def csv_ids(body: str) -> list[int]:
    return [int(row["id"]) for row in csv.DictReader(io.StringIO(body))]


@pytest.fixture
def mixed(world_a, world_b):
    """Entries of tenant A with distinct users, times, IPs, targets and request ids."""
    now = timezone.now()
    a = world_a
    made = {
        "recent_owner": make_entry(
            a.tenant,
            "CredentialSave",
            user=a.owner,
            at=now - timedelta(hours=2),
            request_ip="10.0.0.1",
            target_type="credential",
            target_id="11",
            request_id="req-one",
        ),
        "days_member": make_entry(
            a.tenant,
            "StoryCreation",
            user=a.member,
            at=now - timedelta(days=3),
            request_ip="10.0.0.2",
            target_type="story",
            request_id="req-two",
        ),
        "weeks_owner": make_entry(
            a.tenant,
            "StoryCreation",
            user=a.owner,
            at=now - timedelta(days=20),
            request_ip="10.0.0.1",
            target_type="story",
        ),
        "old_reader": make_entry(
            a.tenant,
            "Login",
            user=a.reader,
            at=now - timedelta(days=60),
            request_ip="2001:db8::1",
            target_type="user",
        ),
    }
    make_entry(world_b.tenant, "CredentialSave", user=world_b.owner, request_ip="10.0.0.1")
    return made


# --- who may read -----------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["owner", "reader"])
def test_owner_and_reader_read_the_tab(client, world_a, world_b, who):
    client.force_login(getattr(world_a, who))
    response = client.get(LIST)
    assert response.status_code == 200
    html = response.content.decode()
    assert "<h1>Audit logs</h1>" in html
    assert ids_on(response) == expected_ids(world_a.owner)[: views.PAGE_SIZE]
    assert '<th scope="col">Operation</th>' in html
    assert "<caption>" in html
    assert 'aria-current="page"' in html


def test_member_gets_a_403_page_that_says_why(client, world_a):
    client.force_login(world_a.member)
    for url in (LIST, DOWNLOAD, reverse("audit_log_detail", args=[expected_ids(world_a.owner)[0]])):
        response = client.get(url)
        assert response.status_code == 403, url
        html = response.content.decode()
        assert "You cannot read this tenant" in html
        assert "AUDIT_LOG_READ" in html
        assert 'data-entry-id="' not in html


def test_anonymous_is_sent_to_sign_in(client, world_a):
    for url in ("/settings/", LIST, DOWNLOAD, "/settings/audit-logs/1/"):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/login/?next=")


def test_settings_page_shows_the_audit_logs_tab_only_to_readers(client, world_a):
    client.force_login(world_a.member)
    html = client.get("/settings/").content.decode()
    assert f'href="{LIST}"' not in html
    assert "AUDIT_LOG_READ" in html
    client.force_login(world_a.reader)
    html = client.get("/settings/").content.decode()
    assert f'href="{LIST}"' in html
    assert world_a.tenant.name in html


def test_home_links_to_settings(client, world_a):
    client.force_login(world_a.reader)
    assert 'href="/settings/"' in client.get("/").content.decode()


# --- the table ----------------------------------------------------------------------------------


def test_row_shows_time_in_viewer_zone_user_operation_target_and_ip(client, world_a, mixed):
    client.force_login(world_a.reader)
    client.cookies["tz"] = "Asia/Tokyo"
    response = client.get(f"{LIST}?request_id=req-one")
    html = response.content.decode()
    entry = AuditLogEntry.objects.get(pk=mixed["recent_owner"])
    iso = entry.created_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    local = entry.created_at.astimezone(timezone.get_fixed_timezone(9 * 60))
    assert f'<time datetime="{iso}" title="{iso}">{local:%Y-%m-%d %H:%M:%S} JST</time>' in html
    assert world_a.owner.email in html
    assert world_a.owner.name in html
    assert '<span title="CredentialSave">Created or edited a credential</span>' in html
    assert "10.0.0.1" in html
    assert "Asia/Tokyo" in html
    # The detail link carries the list's query string, for its back link.
    assert f'href="/settings/audit-logs/{entry.pk}/?request_id=req-one"' in html


def test_unknown_time_zone_falls_back_to_utc(client, world_a):
    client.force_login(world_a.reader)
    response = client.get(f"{LIST}?tz=Not/AZone")
    assert response.status_code == 200
    assert "<strong>UTC</strong>" in response.content.decode()


def test_filter_form_groups_operations_by_category_and_lists_tenant_users(client, world_a, world_b):
    client.force_login(world_a.reader)
    html = client.get(f"{LIST}?operation_name=Login").content.decode()
    assert "<div><label>Credentials and resources</label>" in html
    checkbox = re.search(
        r'<input type="checkbox" name="operation_name" value="CredentialSave"[^>]*>', html
    )
    assert checkbox
    assert "checked" not in checkbox.group()
    assert re.search(r'value="CredentialSave"[^>]*>\s*Created or edited a credential</label>', html)
    assert re.search(
        r'<input type="checkbox" name="operation_name" value="Login"[^>]*checked', html
    )
    assert world_a.member.email in html
    assert world_b.owner.email not in html
    assert "<legend>Operations</legend>" in html
    assert 'method="get"' in html


def _filter_cases(world, made):
    now = timezone.now()
    return [
        (f"user_id={world.owner.pk}", {"user_id": world.owner.pk}),
        (
            f"user_id={world.owner.pk}&user_id={world.member.pk}",
            {"user_id__in": [world.owner.pk, world.member.pk]},
        ),
        ("operation_name=StoryCreation", {"operation_name": "StoryCreation"}),
        (
            "operation_name=StoryCreation&operation_name=Login",
            {"operation_name__in": ["StoryCreation", "Login"]},
        ),
        ("range=24h", {"created_at__gte": now - timedelta(hours=24)}),
        ("range=7d", {"created_at__gte": now - timedelta(days=7)}),
        ("range=30d", {"created_at__gte": now - timedelta(days=30)}),
        (
            f"after={(now - timedelta(days=25)).strftime('%Y-%m-%dT%H:%M:%SZ')}"
            f"&before={(now - timedelta(days=1)).strftime('%Y-%m-%dT%H:%M:%SZ')}",
            {"created_at__gt": now - timedelta(days=25), "created_at__lt": now - timedelta(days=1)},
        ),
        ("target_type=story", {"target_type": "story"}),
        ("request_ip=10.0.0.1", {"request_ip": "10.0.0.1"}),
        ("request_ip=2001:db8::1", {"request_ip": "2001:db8::1"}),
        ("request_id=req-two", {"request_id": "req-two"}),
        # Combined.
        (
            f"operation_name=StoryCreation&user_id={world.owner.pk}",
            {"operation_name": "StoryCreation", "user_id": world.owner.pk},
        ),
        (
            "request_ip=10.0.0.1&range=7d",
            {"request_ip": "10.0.0.1", "created_at__gte": now - timedelta(days=7)},
        ),
        (
            "target_type=story&range=30d&request_id=req-two",
            {"target_type": "story", "request_id": "req-two"},
        ),
    ]


def test_each_filter_alone_and_combined(client, world_a, mixed):
    client.force_login(world_a.reader)
    for query, lookups in _filter_cases(world_a, mixed):
        response = client.get(f"{LIST}?{query}")
        assert response.status_code == 200, query
        expected = expected_ids(world_a.reader, **lookups)
        assert expected, f"case {query} should match something"
        assert ids_on(response) == expected, query
        assert "matching the filters" in response.content.decode()


def test_filters_select_the_expected_fixture_rows(client, world_a, mixed):
    client.force_login(world_a.reader)
    assert ids_on(client.get(f"{LIST}?request_ip=10.0.0.1")) == [
        mixed["recent_owner"],
        mixed["weeks_owner"],
    ]
    assert ids_on(client.get(f"{LIST}?operation_name=StoryCreation&range=7d")) == [
        mixed["days_member"]
    ]


def test_no_match_is_explained(client, world_a, mixed):
    client.force_login(world_a.reader)
    response = client.get(f"{LIST}?request_id=no-such-request")
    assert response.status_code == 200
    html = response.content.decode()
    assert ids_on(response) == []
    assert "No entries match these filters" in html
    assert "clear all filters" in html


def test_invalid_filters_show_field_errors_not_a_500(client, world_a, mixed):
    client.force_login(world_a.reader)
    response = client.get(f"{LIST}?request_ip=not-an-ip&after=yesterday&user_id=abc&range=1y")
    assert response.status_code == 400
    html = response.content.decode()
    assert "Some filters are not valid" in html
    assert "Enter a valid IPv4 or IPv6 address." in html
    assert "Enter an RFC 3339 timestamp" in html
    assert "Enter whole numbers." in html
    assert "Select a valid choice" in html
    assert html.count(' has-error"') == 4
    assert ids_on(response) == []
    assert 'aria-describedby="id_request_ip_help id_request_ip_error" aria-invalid="true"' in html
    assert 'id="id_request_ip_error"' in html
    # The values the user typed stay in the form to be corrected.
    assert 'value="not-an-ip"' in html


def test_invalid_cursor_shows_the_newest_entries(client, world_a):
    client.force_login(world_a.reader)
    response = client.get(f"{LIST}?cursor=garbage")
    assert response.status_code == 200
    assert "That page link was not valid" in response.content.decode()
    assert ids_on(response) == expected_ids(world_a.reader)[: views.PAGE_SIZE]


def test_page_views_are_not_recorded(client, world_a, mixed):
    client.force_login(world_a.reader)
    before = AuditLogEntry.objects.count()
    client.get(LIST)
    client.get(f"{LIST}?range=7d")
    client.get(reverse("audit_log_detail", args=[mixed["recent_owner"]]))
    assert AuditLogEntry.objects.count() == before


def test_list_runs_a_fixed_number_of_queries(client, world_a, django_assert_max_num_queries):
    for _ in range(60):
        make_entry(world_a.tenant, user=world_a.owner)
    client.force_login(world_a.reader)
    # Session, user, the form's users and API keys, the menu (2), the page, the capped count
    # and the chart's one aggregate (on PostgreSQL inside a savepoint that sets and restores
    # its time limit: 4 more), and the request's own savepoint pair: none per row.
    with django_assert_max_num_queries(15):
        response = client.get(f"{LIST}?range=24h&operation_name=TeamUpdate")
    assert len(ids_on(response)) == views.PAGE_SIZE


def test_gear_says_exports_are_not_configured_until_routed(client, world_a, monkeypatch):
    client.force_login(world_a.reader)
    monkeypatch.setattr(views, "EXPORT_SETTINGS_URL_NAME", "no_such_route_name")
    assert "Exports are not configured yet" in client.get(LIST).content.decode()
    monkeypatch.setattr(views, "EXPORT_SETTINGS_URL_NAME", "audit_logs")
    html = client.get(LIST).content.decode()
    assert f'class="gear" href="{LIST}"' in html


# --- keyset paging -----------------------------------------------------------------------------


def _walk_older(client, url):
    pages, response = [], client.get(url)
    while True:
        pages.append(ids_on(response))
        older = re.search(r'href="\?([^"]*)" rel="next"', response.content.decode())
        if not older:
            return pages, response
        response = client.get(f"{LIST}?{older.group(1).replace('&amp;', '&')}")


def test_keyset_paging_older_and_newer(client, world_a):
    base = timezone.now() - timedelta(hours=1)
    # Ties on created_at across page boundaries: the id breaks them.
    for i in range(130):
        make_entry(
            world_a.tenant, "TeamUpdate", user=world_a.owner, at=base + timedelta(seconds=i // 3)
        )
    client.force_login(world_a.reader)
    expected = expected_ids(world_a.reader, operation_name="TeamUpdate")
    assert len(expected) == 130
    pages, last = _walk_older(client, f"{LIST}?operation_name=TeamUpdate")
    assert [len(p) for p in pages] == [50, 50, 30]
    assert [i for p in pages for i in p] == expected
    assert 'rel="next"' not in last.content.decode()

    # Newer from the last page leads back to the middle page, with filters kept.
    newer = re.search(r'href="\?([^"]*)" rel="prev"', last.content.decode()).group(1)
    newer = newer.replace("&amp;", "&")
    assert "operation_name=TeamUpdate" in newer
    assert "dir=newer" in newer
    assert ids_on(client.get(f"{LIST}?{newer}")) == pages[1]

    # Newer from the middle page is the (full) first page.
    middle = client.get(f"{LIST}?{newer}").content.decode()
    first = re.search(r'href="\?([^"]*)" rel="prev"', middle).group(1).replace("&amp;", "&")
    assert ids_on(client.get(f"{LIST}?{first}")) == pages[0]


def test_first_page_has_no_newer_link_and_deep_cursor_uses_no_offset(
    client, world_a, django_assert_max_num_queries
):
    for _ in range(55):
        make_entry(world_a.tenant, user=world_a.owner)
    client.force_login(world_a.reader)
    html = client.get(LIST).content.decode()
    assert 'rel="prev"' not in html
    assert 'rel="next"' in html
    entry = AuditLogEntry.objects.get(pk=expected_ids(world_a.reader)[10])
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        response = client.get(f"{LIST}?cursor={encode_cursor(entry.created_at, entry.pk)}")
    assert ids_on(response) == expected_ids(world_a.reader)[11:61]
    assert not [q for q in queries if "OFFSET" in q["sql"].upper()]


def test_no_older_entries_is_explained(client, world_a):
    client.force_login(world_a.reader)
    oldest = AuditLogEntry.objects.get(pk=expected_ids(world_a.reader)[-1])
    response = client.get(f"{LIST}?cursor={encode_cursor(oldest.created_at, oldest.pk)}")
    assert ids_on(response) == []
    assert "There are no older entries" in response.content.decode()


# --- detail -------------------------------------------------------------------------------------


def test_detail_shows_the_full_entry_with_diff_and_json(client, world_a):
    row = entry_row(
        operation_name="StoryNameChange",
        tenant_id=world_a.tenant.pk,
        user=world_a.owner,
        target_type="story",
        target_id=5,
        target_repr="Phishing triage",
        inputs={"name": "Phishing triage"},
        outputs={"ok": True},
        changes={"name": ["Old <name>", "Phishing triage"], "enabled": [True, False]},
    )
    record_rows([row])
    entry = AuditLogEntry.objects.latest("id")
    client.force_login(world_a.reader)
    response = client.get(f"/settings/audit-logs/{entry.pk}/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "<h1>Renamed a story</h1>" in html
    assert '<th scope="row">name</th>' in html
    assert "Old &lt;name&gt;" in html
    assert '<td class="before"><code>true</code></td>' in html
    assert '<td class="after"><code>false</code></td>' in html
    assert "&quot;name&quot;: &quot;Phishing triage&quot;" in html
    assert "&quot;ok&quot;: true" in html
    assert entry.request_id in html
    assert world_a.owner.email in html


def test_detail_of_another_tenants_entry_is_404(client, world_a, world_b):
    theirs = expected_ids(world_b.owner)[0]
    for who in (world_a.owner, world_a.reader):
        client.force_login(who)
        assert client.get(f"/settings/audit-logs/{theirs}/").status_code == 404
    assert client.get("/settings/audit-logs/999999999/").status_code == 404


# --- download -----------------------------------------------------------------------------------


def test_csv_download_streams_the_filtered_rows(client, world_a, world_b, mixed):
    client.force_login(world_a.reader)
    response, body = download(client, "request_ip=10.0.0.1")
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"].startswith("text/csv")
    assert re.fullmatch(
        r'attachment; filename="audit-log-\d{8}T\d{6}Z\.csv"', response["Content-Disposition"]
    )
    rows = list(csv.DictReader(io.StringIO(body)))
    assert list(rows[0].keys()) == csv_header()
    assert [int(r["id"]) for r in rows] == [mixed["recent_owner"], mixed["weeks_owner"]]
    first = rows[0]
    entry = entry_to_json(AuditLogEntry.objects.get(pk=mixed["recent_owner"]))
    assert first["operation_name"] == "CredentialSave"
    assert first["created_at"] == entry["created_at"]
    assert first["user_email"] == world_a.owner.email
    assert first["target_type"] == "credential"
    assert first["target_id"] == "11"
    assert json.loads(first["inputs"]) == entry["inputs"]
    assert first["api_key_id"] == ""


def test_ndjson_download_is_the_wire_format(client, world_a, mixed):
    client.force_login(world_a.owner)
    response, body = download(client, "target_type=story", fmt="ndjson")
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "application/x-ndjson"
    lines = [json.loads(line) for line in body.splitlines()]
    expected = AuditLogEntry.objects.filter(pk__in=[mixed["days_member"], mixed["weeks_owner"]])
    assert lines == [entry_to_json(e) for e in expected.order_by("-created_at", "-id")]


def test_download_records_one_entry_with_filters_and_row_count(client, world_a, mixed):
    client.force_login(world_a.reader)
    start = AuditLogEntry.objects.latest("id").pk
    query = f"operation_name=StoryCreation&user_id={world_a.owner.pk}&range=30d"
    response, body = download(client, query)
    assert csv_ids(body) == [mixed["weeks_owner"]]
    recorded = list(AuditLogEntry.objects.filter(pk__gt=start))
    assert len(recorded) == 1
    entry = recorded[0]
    assert entry.operation_name == "AuditLogDownload"
    assert entry.tenant_id == world_a.tenant.pk
    assert entry.user_id == world_a.reader.pk
    assert entry.actor_type == "user"
    assert entry.inputs == {
        "format": "csv",
        "filters": {
            "operation_name": ["StoryCreation"],
            "user_id": [world_a.owner.pk],
            "range": "30d",
        },
    }
    assert entry.outputs == {"row_count": 1}
    assert entry.request_id == response["X-Request-ID"]


def test_unfiltered_download_counts_every_row_but_not_itself(client, world_a, mixed):
    client.force_login(world_a.owner)
    everything = expected_ids(world_a.owner)
    _, body = download(client, fmt="ndjson")
    ids = [json.loads(line)["id"] for line in body.splitlines()]
    assert ids == everything
    entry = AuditLogEntry.objects.filter(operation_name="AuditLogDownload").get()
    assert entry.outputs == {"row_count": len(everything)}
    assert entry.inputs == {"format": "ndjson", "filters": {}}
    assert entry.pk not in ids


def test_download_with_invalid_filters_is_a_400_page_and_records_nothing(client, world_a):
    client.force_login(world_a.reader)
    before = AuditLogEntry.objects.count()
    for query in ("format=csv&request_ip=nope", "format=xlsx", "format=ndjson&before=tomorrow"):
        response = client.get(f"{DOWNLOAD}?{query}")
        assert response.status_code == 400, query
        assert not response.streaming
        assert "The download could not start" in response.content.decode()
    assert AuditLogEntry.objects.count() == before


def test_download_never_includes_another_tenant(client, world_a, world_b, mixed):
    client.force_login(world_a.owner)
    _, body = download(client, f"user_id={world_b.owner.pk}")
    assert csv_ids(body) == []
    _, body = download(client)
    tenant_ids = {int(r["tenant_id"]) for r in csv.DictReader(io.StringIO(body))}
    assert tenant_ids == {world_a.tenant.pk}


def test_csv_cells_that_look_like_formulas_are_defused(client, world_a):
    make_entry(world_a.tenant, target_repr='=HYPERLINK("http://evil")', target_type="team")
    client.force_login(world_a.reader)
    _, body = download(client, "target_type=team")
    row = next(r for r in csv.DictReader(io.StringIO(body)) if r["target_name"].startswith("'="))
    assert row["target_name"] == '\'=HYPERLINK("http://evil")'


def test_download_links_carry_the_filters(client, world_a):
    client.force_login(world_a.reader)
    html = client.get(f"{LIST}?operation_name=Login&range=7d&cursor=x").content.decode()
    assert f'href="{DOWNLOAD}?operation_name=Login&amp;range=7d&amp;format=csv"' in html
    assert f'href="{DOWNLOAD}?operation_name=Login&amp;range=7d&amp;format=ndjson"' in html


def test_cursor_round_trip():
    created_at = datetime(2024, 1, 31, 23, 59, 59, 123, tzinfo=UTC)
    assert decode_cursor(encode_cursor(created_at, 42)) == (created_at, 42)
    with pytest.raises(InvalidCursor):
        decode_cursor("2024-01-31_x")
