"""Settings → Audit logs: the tab, an entry's detail and the download, through real requests."""

import csv
import html as markup
import io
import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from auditlog import views
from auditlog.downloads import csv_header
from auditlog.models import AuditLogEntry
from auditlog.pagination import InvalidCursor, decode_cursor, encode_cursor
from auditlog.serializers import entry_to_json
from auditlog.services import entry_row, record_rows
from tests import factories

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
    # and the chart's one aggregate (on PostgreSQL after one EXPLAIN for its estimate, inside
    # a savepoint that sets and restores its time limit: 5 more), and the request's own
    # savepoint pair: none per row.
    with django_assert_max_num_queries(16):
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


# --- the summary line and its chips ----------------------------------------------------------

SUMMARY = re.compile(r'<p id="summary-line" class="summary-line"><strong>([^<]*)</strong>')
CHIP = re.compile(
    r'<li class="chip"><span class="chip-name">([^<]*)</span> ([^<]*)\s*'
    r'<a href="([^"]*)" class="chip-remove"'
)


def summary_of(response) -> str:
    return markup.unescape(SUMMARY.search(response.content.decode()).group(1))


def chips_of(response) -> list[tuple[str, str, str]]:
    found = CHIP.findall(response.content.decode())
    return [tuple(markup.unescape(part).strip() for part in chip) for chip in found]


def test_summary_counts_the_matching_entries(client, world_a, mixed):
    client.force_login(world_a.reader)
    everything = len(expected_ids(world_a.reader))
    assert summary_of(client.get(LIST)) == f"{everything:,} entries in this tenant's log"
    response = client.get(f"{LIST}?request_ip=10.0.0.1")
    assert summary_of(response) == "2 entries match the filters"
    assert summary_of(client.get(f"{LIST}?request_id=req-two")) == "1 entry matches the filters"
    assert summary_of(client.get(f"{LIST}?request_id=nothing")) == "0 entries match the filters"


def test_summary_count_stops_at_the_api_cap(client, world_a, mixed, monkeypatch):
    from auditlog import pagination

    monkeypatch.setattr(pagination, "COUNT_CAP", 3)
    client.force_login(world_a.reader)
    assert len(expected_ids(world_a.reader)) > 3
    assert summary_of(client.get(LIST)) == "More than 3 entries in this tenant's log"
    client.force_login(world_a.reader)
    meta = client.get("/api/v1/audit_logs").json()["meta"]
    assert (meta["count"], meta["count_is_capped"]) == (3, True)


def test_each_chip_names_a_filter_and_drops_just_it(client, world_a, mixed):
    client.force_login(world_a.reader)
    query = (
        f"operation_name=StoryCreation&operation_name=Login&user_id={world_a.owner.pk}"
        "&request_ip=10.0.0.1&range=30d&cursor=abc&target_type=Story"
    )
    response = client.get(f"{LIST}?{query}")
    chips = chips_of(response)
    assert [(name, value) for name, value, _ in chips] == [
        ("Operation", "Created a story"),
        ("Operation", "Signed in"),
        ("User", f"{world_a.owner.name} <{world_a.owner.email}>"),
        ("IP address", "10.0.0.1"),
        ("Time", "Last 30 days"),
        ("Target type", "Story"),
    ]
    by_value = {value: href for _, value, href in chips}
    # Dropping one value of a list keeps the others; paging starts over.
    assert by_value["Signed in"] == (
        f"?operation_name=StoryCreation&user_id={world_a.owner.pk}"
        "&request_ip=10.0.0.1&range=30d&target_type=Story"
    )
    for _, value, href in chips:
        rest = client.get(f"{LIST}{href}")
        assert rest.status_code == 200, href
        assert len(chips_of(rest)) == len(chips) - 1
        assert value not in [v for _, v, _ in chips_of(rest)]
    assert ids_on(client.get(f"{LIST}{by_value['10.0.0.1']}")) == [mixed["weeks_owner"]]
    assert chips_of(client.get(LIST)) == []


def test_chips_show_times_in_the_viewers_zone(client, world_a, mixed):
    client.force_login(world_a.reader)
    client.cookies["tz"] = "Asia/Tokyo"
    response = client.get(f"{LIST}?after=2024-03-01T10:00:00Z&before=2024-03-01T10:30:00.5Z")
    assert chips_of(response)[:2] == [
        ("After", "2024-03-01 19:00:00 JST", "?before=2024-03-01T10%3A30%3A00.5Z"),
        ("Before", "2024-03-01 19:30:00.500000 JST", "?after=2024-03-01T10%3A00%3A00Z"),
    ]


# --- the time range: one start, one end, never empty -----------------------------------------


def test_after_later_than_before_is_a_form_error_in_the_tab_and_the_api(client, world_a, mixed):
    client.force_login(world_a.reader)
    for after, before in (
        ("2024-03-02T00:00:00Z", "2024-03-01T00:00:00Z"),
        ("2024-03-01T00:00:00Z", "2024-03-01T00:00:00Z"),
    ):
        response = client.get(f"{LIST}?after={after}&before={before}")
        assert response.status_code == 400
        html = response.content.decode()
        assert "Some filters are not valid" in html
        assert "after must be earlier than before" in html
        assert "No entries match" not in html
        assert 'id="id_after_error"' in html
        api = client.get(f"/api/v1/audit_logs?after={after}&before={before}")
        assert api.status_code == 400
        (error,) = api.json()["errors"]
        assert error["parameter"] == "after"
        assert "after must be earlier than before" in error["details"]
        assert client.get(f"{DOWNLOAD}?after={after}&before={before}").status_code == 400


def test_a_preset_and_after_together_are_refused_and_the_rule_is_shown(client, world_a, mixed):
    client.force_login(world_a.reader)
    html = client.get(LIST).content.decode()
    assert "A preset (up to now), or “Any time” and a custom range below: not both." in html
    response = client.get(f"{LIST}?range=7d&after=2024-03-01T00:00:00Z")
    assert response.status_code == 400
    assert "Give range or after, not both" in response.content.decode()
    api = client.get("/api/v1/audit_logs?range=7d&after=2024-03-01T00:00:00Z")
    assert api.status_code == 400
    assert [e["parameter"] for e in api.json()["errors"]] == ["range"]


def test_a_preset_with_an_earlier_before_is_refused_and_a_later_one_narrows(client, world_a, mixed):
    client.force_login(world_a.reader)
    old = (timezone.now() - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    response = client.get(f"/api/v1/audit_logs?range=24h&before={old}")
    assert response.status_code == 400
    assert [e["parameter"] for e in response.json()["errors"]] == ["before"]
    assert "earlier than the start of the last 24 hours" in response.json()["errors"][0]["details"]
    assert client.get(f"{LIST}?range=24h&before={old}").status_code == 400
    before = (timezone.now() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    now = timezone.now()
    got = ids_on(client.get(f"{LIST}?range=7d&before={before}"))
    expected = expected_ids(
        world_a.reader,
        created_at__gte=now - timedelta(days=7),
        created_at__lt=now - timedelta(days=1),
    )
    assert expected == [mixed["days_member"]]
    assert got == expected


def test_the_api_pages_through_a_preset_range(client, world_a, mixed):
    # next_page carries the anchor as ``before``: a preset with a later before is valid.
    for _ in range(5):
        make_entry(world_a.tenant, user=world_a.owner, at=timezone.now() - timedelta(hours=1))
    client.force_login(world_a.reader)
    url, seen = "/api/v1/audit_logs?range=7d&per_page=2", []
    while url:
        body = client.get(url)
        assert body.status_code == 200, body.content
        seen += [e["id"] for e in body.json()["audit_logs"]]
        url = body.json()["meta"]["next_page"]
    now = timezone.now()
    assert seen == expected_ids(world_a.reader, created_at__gte=now - timedelta(days=7))


def test_custom_range_is_read_in_the_viewers_zone_and_says_so(client, world_a):
    at = datetime(2024, 3, 1, 10, 0, 30, tzinfo=UTC)
    inside = make_entry(world_a.tenant, at=at)
    in_utc = make_entry(world_a.tenant, at=at + timedelta(hours=9))  # what UTC would pick
    client.force_login(world_a.reader)
    client.cookies["tz"] = "Asia/Tokyo"
    query = "after=2024-03-01 19:00&before=2024-03-01T19:01"  # Tokyo: 10:00Z to 10:01Z
    response = client.get(f"{LIST}?{query}")
    assert ids_on(response) == [inside]
    html = response.content.decode()
    assert '<label for="id_after">Custom range: after (Asia/Tokyo)</label>' in html
    assert "Read in Asia/Tokyo, the zone times are shown in" in html
    # An explicit offset or Z means what it says, in any zone.
    assert ids_on(client.get(f"{LIST}?after=2024-03-01T10:00Z&before=2024-03-01T10:01Z")) == [
        inside
    ]
    # The download of that list reads the same way; the API reads a bare time as UTC.
    _, body = download(client, query)
    assert csv_ids(body) == [inside]
    api = client.get(f"/api/v1/audit_logs?{query}").json()["audit_logs"]
    assert [e["id"] for e in api] == [in_utc]


# --- filters from the catalog and the actors -----------------------------------------------------


def test_target_type_is_a_select_of_the_catalog_matched_in_any_case(client, world_a, mixed):
    client.force_login(world_a.reader)
    html = client.get(LIST).content.decode()
    select = re.search(r'<select name="target_type".*?</select>', html, re.S).group()
    assert '<option value="" selected>Any target type</option>' in select
    assert '<option value="story_version">Story version</option>' in select
    assert '<option value="api_key">API key</option>' in select
    stories = expected_ids(world_a.reader, target_type="story")
    assert len(stories) >= 2
    for spelling in ("story", "Story", "STORY"):
        response = client.get(f"{LIST}?target_type={spelling}")
        assert ids_on(response) == stories, spelling
        api = client.get(f"/api/v1/audit_logs?target_type={spelling}&per_page=500")
        assert [e["id"] for e in api.json()["audit_logs"]] == stories, spelling
    selected = client.get(f"{LIST}?target_type=STORY").content.decode()
    assert '<option value="story" selected>Story</option>' in selected
    # A type the catalog does not name is kept (and matches nothing), not refused.
    response = client.get(f"{LIST}?target_type=widget")
    assert response.status_code == 200
    assert ids_on(response) == []
    assert response.content.decode().count('<option value="widget" selected>widget</option>') == 1


@pytest.fixture
def actors(world_a, world_b):
    """Entries by a person, by their API key, by the system and by a task."""
    from tenants.models import ApiKey

    key = ApiKey.objects.get(user=world_a.owner)
    theirs = ApiKey.objects.get(user=world_b.owner)
    at = timezone.now() - timedelta(minutes=30)
    return {
        "key": key,
        "their_key": theirs,
        "by_member": make_entry(world_a.tenant, user=world_a.member, at=at, actor_type="user"),
        "by_key": make_entry(
            world_a.tenant,
            user=world_a.owner,
            at=at,
            actor_type="api_key",
            api_key_id=key.pk,
            api_key_name=key.name,
        ),
        "by_system": make_entry(world_a.tenant, at=at, actor_type="system"),
        "by_task": make_entry(world_a.tenant, at=at, actor_type="task"),
    }


def test_who_filter_offers_people_api_keys_and_other_actors(client, world_a, world_b, actors):
    client.force_login(world_a.reader)
    html = client.get(LIST).content.decode()
    key = actors["key"]
    assert f'name="api_key_id" value="{key.pk}"' in html
    assert f"{key.name} ({world_a.owner.email})" in html
    assert f'value="{actors["their_key"].pk}"' not in html
    for value, label in (("system", "System"), ("task", "Background tasks")):
        assert re.search(rf'name="actor_type" value="{value}"[^>]*>\s*{label}</label>', html)
    cases = {
        "actor_type=system": {"actor_type": "system"},
        "actor_type=system&actor_type=task": {"actor_type__in": ["system", "task"]},
        f"api_key_id={key.pk}": {"api_key_id": key.pk},
        f"api_key_id[]={key.pk}": {"api_key_id": key.pk},
    }
    for query, lookups in cases.items():
        expected = expected_ids(world_a.reader, **lookups)
        assert expected, query
        assert ids_on(client.get(f"{LIST}?{query}")) == expected, query
    # The actor filters together name several actors: an entry by any of them matches.
    union = f"user_id={world_a.member.pk}&actor_type=system&api_key_id={key.pk}"
    expected = list(
        AuditLogEntry.objects.filter(tenant_id=world_a.tenant.pk)
        .filter(Q(user_id=world_a.member.pk) | Q(actor_type="system") | Q(api_key_id=key.pk))
        .order_by("-created_at", "-id")
        .values_list("id", flat=True)
    )
    assert {actors["by_member"], actors["by_system"], actors["by_key"]} <= set(expected)
    assert actors["by_task"] not in expected
    assert ids_on(client.get(f"{LIST}?{union}")) == expected
    api = client.get(f"/api/v1/audit_logs?{union}&per_page=500").json()["audit_logs"]
    assert [e["id"] for e in api] == expected
    # With any other filter they still narrow, as every filter does.
    narrowed = ids_on(client.get(f"{LIST}?{union}&operation_name=TeamUpdate"))
    assert narrowed == [actors["by_system"], actors["by_key"], actors["by_member"]]
    # Another tenant's key matches nothing here.
    assert ids_on(client.get(f"{LIST}?api_key_id={actors['their_key'].pk}")) == []


# --- the detail's back link and names ------------------------------------------------------------


def test_detail_back_link_returns_to_the_same_filters_and_page(client, world_a):
    base = timezone.now() - timedelta(hours=1)
    for i in range(60):
        make_entry(world_a.tenant, user=world_a.owner, at=base + timedelta(seconds=i))
    client.force_login(world_a.reader)
    first = client.get(f"{LIST}?operation_name=TeamUpdate").content.decode()
    older = re.search(r'href="\?([^"]*)" rel="next"', first).group(1).replace("&amp;", "&")
    page_two = client.get(f"{LIST}?{older}")
    shown = ids_on(page_two)
    assert len(shown) == 10
    html = page_two.content.decode()
    link = re.search(rf'href="(/settings/audit-logs/{shown[0]}/\?[^"]*)"', html).group(1)
    detail = client.get(link.replace("&amp;", "&"))
    assert detail.status_code == 200
    back = re.search(r'<a href="([^"]*)">← Audit logs</a>', detail.content.decode()).group(1)
    back = back.replace("&amp;", "&")
    assert back == f"{LIST}?{older}"
    assert ids_on(client.get(back)) == shown
    # Without a query string, back is the tab itself; nothing but the tab is ever linked.
    plain = client.get(f"/settings/audit-logs/{shown[0]}/").content.decode()
    assert f'<a href="{LIST}">← Audit logs</a>' in plain
    hostile = client.get(f"/settings/audit-logs/{shown[0]}/?next=//evil.example").content.decode()
    assert f'<a href="{LIST}?next=%2F%2Fevil.example">← Audit logs</a>' in hostile


def test_detail_names_the_objects_its_ids_point_at_within_the_tenant(client, world_a, world_b):
    from tenants import services

    ops = factories.team(world_a.tenant, "Security Operations")
    red = factories.team(world_a.tenant, "Red Team")
    theirs = factories.team(world_b.tenant, "Globex Secret Projects")
    credential = services.credential_create(team=ops, name="Okta token", value="s3cret-v4lue")
    services.credential_update(credential=credential, team=red)
    moved = AuditLogEntry.objects.filter(
        operation_name="CredentialSave", target_id=str(credential.pk)
    ).latest("id")
    assert moved.changes["team"] == [ops.pk, red.pk]
    # An entry whose ids include another tenant's team (and a deleted one).
    crafted = make_entry(
        world_a.tenant,
        "CredentialSave",
        target_type="credential",
        target_id=str(credential.pk),
        changes={"team": [theirs.pk, ops.pk], "shared_with_teams": [[], [ops.pk, theirs.pk]]},
    )
    story = services.story_create(team=ops, name="Phishing triage")
    in_story = make_entry(world_a.tenant, "StoryNameChange", story_id=story.pk)
    client.force_login(world_a.reader)

    html = client.get(f"/settings/audit-logs/{moved.pk}/").content.decode()
    assert f"Okta token (#{credential.pk})" in html
    assert f'<td class="before"><code>Security Operations (#{ops.pk})</code></td>' in html
    assert f'<td class="after"><code>Red Team (#{red.pk})</code></td>' in html
    assert "s3cret-v4lue" not in html

    html = client.get(f"/settings/audit-logs/{crafted}/").content.decode()
    assert f'<td class="before"><code>{theirs.pk}</code></td>' in html
    assert f"Security Operations (#{ops.pk}), {theirs.pk}" in html
    assert "Globex" not in html

    html = client.get(f"/settings/audit-logs/{in_story}/").content.decode()
    assert f"Phishing triage (#{story.pk})" in html

    # Tenant B's reader sees its own team named in B's entries, never A's.
    client.force_login(world_b.reader)
    created = AuditLogEntry.objects.get(
        operation_name="TeamCreation", target_id=str(theirs.pk), tenant_id=world_b.tenant.pk
    )
    html = client.get(f"/settings/audit-logs/{created.pk}/").content.decode()
    assert f"Globex Secret Projects (#{theirs.pk})" in html
    assert client.get(f"/settings/audit-logs/{moved.pk}/").status_code == 404


def test_a_changed_credential_value_reads_as_such_and_keeps_its_name(client, world_a):
    from tenants import services

    credential = services.credential_create(
        team=world_a.team, name="Slack webhook", value="first-value"
    )
    services.credential_update(credential=credential, value="second-value")
    services.credential_update(credential=credential, name="Slack hook")
    saves = list(
        AuditLogEntry.objects.filter(operation_name="CredentialSave", target_id=str(credential.pk))
        .order_by("-id")
        .values_list("id", flat=True)
    )
    renamed, rotated, created = saves
    client.force_login(world_a.reader)
    html = client.get(f"{LIST}?target_type=credential").content.decode()
    rows = {
        int(i): markup.unescape(text)
        for i, text in re.findall(
            r'data-entry-id="(\d+)">.*?<span title="CredentialSave">([^<]*)</span>', html, re.S
        )
    }
    assert rows[rotated] == "Changed a credential's value"
    assert rows[renamed] == "Created or edited a credential"
    assert rows[created] == "Created or edited a credential"
    detail = client.get(f"/settings/audit-logs/{rotated}/").content.decode()
    assert "<h1>Changed a credential&#x27;s value</h1>" in detail
    api = client.get(f"/api/v1/audit_logs/{rotated}").json()
    assert api["operation_name"] == "CredentialSave"
    assert api["changes"] == {"value": ["REDACTED", "REDACTED"]}


# --- the activity chart ----------------------------------------------------------------------

BAR = re.compile(
    r'<a href="([^"]*)" class="bar" aria-label="([^"]*)"><title>[^<]*</title>(.*?)</a>', re.S
)


def bars_of(response) -> list[dict]:
    """The chart's bars: where each links, its label, its count and its category segments."""
    bars = []
    for href, label, inner in BAR.findall(response.content.decode()):
        label = markup.unescape(label)
        bars.append(
            {
                "href": markup.unescape(href),
                "label": label,
                "total": int(re.search(r": (\d+) entr", label).group(1)),
                "segments": re.findall(r'<rect class="(cat-\d)"', inner),
            }
        )
    return bars


def test_chart_draws_a_day_in_hours_stacked_by_category_for_the_filters(client, world_a):
    now = timezone.now()
    two, five = now - timedelta(hours=2), now - timedelta(hours=5)
    for name, at in (
        ("TeamUpdate", two),
        ("TeamUpdate", two),
        ("CredentialSave", two),
        ("StoryCreation", five),
    ):
        make_entry(world_a.tenant, name, at=at, request_id="chart")
    make_entry(world_a.tenant, "TeamUpdate", at=two, request_id="not-this-one")
    client.force_login(world_a.reader)
    response = client.get(f"{LIST}?range=24h&request_id=chart")
    html = response.content.decode()
    assert "4 entries per hour (UTC)" in html
    assert "<script" not in html.split('class="activity"')[1].split("</section>")[0]
    bars = bars_of(response)
    assert sorted(bar["total"] for bar in bars) == [1, 3]
    three = next(bar for bar in bars if bar["total"] == 3)
    # Stacked from the bottom in the catalog's order: credentials and resources, then teams.
    assert three["segments"] == ["cat-1", "cat-3"]
    assert "(Credentials and resources 1, Teams 2)" in html
    for bar in bars:
        assert "range=" not in bar["href"]
        assert "request_id=chart" in bar["href"]
        narrowed = client.get(f"{LIST}{bar['href']}")
        assert len(ids_on(narrowed)) == bar["total"]
        assert summary_of(narrowed).startswith(f"{bar['total']} entr")


def test_chart_days_are_the_viewers_days(client, world_a):
    make_entry(world_a.tenant, at=datetime(2024, 3, 5, 3, 30, tzinfo=UTC))  # 22:30 on 4 March
    make_entry(world_a.tenant, at=datetime(2024, 3, 5, 5, 30, tzinfo=UTC))  # 00:30 on 5 March
    client.force_login(world_a.reader)
    client.cookies["tz"] = "America/New_York"
    week = "after=2024-03-01&before=2024-03-08"  # midnights in New York
    response = client.get(f"{LIST}?{week}")
    assert "per day (America/New_York)" in response.content.decode()
    got = [(bar["label"], bar["total"]) for bar in bars_of(response)]
    assert got == [("Mon 04 Mar 2024: 1 entry", 1), ("Tue 05 Mar 2024: 1 entry", 1)]
    client.cookies["tz"] = "UTC"
    got = [(bar["label"], bar["total"]) for bar in bars_of(client.get(f"{LIST}?{week}"))]
    assert got == [("Tue 05 Mar 2024: 2 entries", 2)]


def test_a_bar_links_to_exactly_the_entries_it_counted(client, world_a):
    ten = datetime(2024, 3, 5, 10, tzinfo=UTC)
    tick = timedelta(microseconds=1)
    just_before = make_entry(world_a.tenant, at=ten - tick)
    at_start = make_entry(world_a.tenant, at=ten)
    at_end = make_entry(world_a.tenant, at=ten + timedelta(hours=1) - tick)
    next_hour = make_entry(world_a.tenant, at=ten + timedelta(hours=1))
    client.force_login(world_a.reader)
    response = client.get(f"{LIST}?after=2024-03-05T00:00:00Z&before=2024-03-06T00:00:00Z")
    bars = {bar["label"].split(" to ")[0]: bar for bar in bars_of(response)}
    assert {label: bar["total"] for label, bar in bars.items()} == {
        "Tue 05 Mar 2024, 09:00": 1,
        "Tue 05 Mar 2024, 10:00": 2,
        "Tue 05 Mar 2024, 11:00": 1,
    }
    bar = bars["Tue 05 Mar 2024, 10:00"]
    assert bar["href"] == (
        "?after=2024-03-05T09%3A59%3A59.999999Z&before=2024-03-05T11%3A00%3A00.000000Z"
    )
    assert ids_on(client.get(f"{LIST}{bar['href']}")) == [at_end, at_start]
    assert ids_on(client.get(f"{LIST}{bars['Tue 05 Mar 2024, 09:00']['href']}")) == [just_before]
    assert ids_on(client.get(f"{LIST}{bars['Tue 05 Mar 2024, 11:00']['href']}")) == [next_hour]
    # An hour's bar narrows to minutes.
    minutes = bars_of(client.get(f"{LIST}{bar['href']}"))
    assert [(b["label"], b["total"]) for b in minutes] == [
        ("Tue 05 Mar 2024, 10:00 UTC: 1 entry", 1),
        ("Tue 05 Mar 2024, 10:59 UTC: 1 entry", 1),
    ]


def test_without_a_time_range_the_chart_shows_the_last_week_and_says_so(client, world_a):
    make_entry(world_a.tenant, at=timezone.now() - timedelta(days=30))
    client.force_login(world_a.reader)
    response = client.get(LIST)
    html = response.content.decode()
    assert "in the last 7 days: no time range is set" in html
    recent = expected_ids(world_a.reader, created_at__gte=timezone.now() - timedelta(days=7))
    assert sum(bar["total"] for bar in bars_of(response)) == len(recent)
    assert len(recent) < len(expected_ids(world_a.reader))


def test_a_range_too_large_to_count_in_time_is_listed_without_its_chart(client, world_a, settings):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("the chart's time limit is PostgreSQL's statement_timeout")
    start = timezone.now() - timedelta(days=20)
    for chunk in range(4):
        rows = []
        for i in range(5000):
            row = entry_row(operation_name="TeamUpdate", tenant_id=world_a.tenant.pk)
            row["created_at"] = start + timedelta(seconds=60 * (chunk * 5000 + i))
            rows.append(row)
        record_rows(rows)
    settings.AUDIT_LOG_CHART_TIMEOUT_MS = 1
    client.force_login(world_a.reader)
    response = client.get(f"{LIST}?range=30d")
    assert response.status_code == 200
    html = response.content.decode()
    assert "too many entries to chart quickly" in html
    assert bars_of(response) == []
    assert len(ids_on(response)) == views.PAGE_SIZE
    assert summary_of(response) == "More than 10,000 entries match the filters"
    settings.AUDIT_LOG_CHART_TIMEOUT_MS = 10_000
    assert sum(bar["total"] for bar in bars_of(client.get(f"{LIST}?range=30d"))) >= 20_000


def test_a_range_estimated_too_large_is_not_counted_at_all(client, world_a, settings):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    if connection.vendor != "postgresql":
        pytest.skip("the estimate is PostgreSQL's planner's")
    start = timezone.now() - timedelta(days=20)
    rows = []
    for i in range(5000):
        row = entry_row(operation_name="TeamUpdate", tenant_id=world_a.tenant.pk)
        row["created_at"] = start + timedelta(seconds=60 * i)
        rows.append(row)
    record_rows(rows)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE auditlog_auditlogentry")
    settings.AUDIT_LOG_CHART_TIMEOUT_MS = 10_000
    settings.AUDIT_LOG_CHART_MAX_ENTRIES = 1_000
    client.force_login(world_a.reader)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(f"{LIST}?range=30d")
    assert response.status_code == 200
    assert "too many entries to chart quickly" in response.content.decode()
    assert bars_of(response) == []
    assert not [q for q in queries if "date_trunc" in q["sql"].lower()]  # never counted
    settings.AUDIT_LOG_CHART_MAX_ENTRIES = 100_000
    assert sum(bar["total"] for bar in bars_of(client.get(f"{LIST}?range=30d"))) >= 5_000


def test_the_time_limit_cancels_only_its_block_and_puts_the_setting_back(db):
    from django.db import connection, transaction

    from auditlog.activity import TooLong, time_limit

    if connection.vendor != "postgresql":
        pytest.skip("the chart's time limit is PostgreSQL's statement_timeout")

    def setting() -> str:
        with connection.cursor() as cursor:
            cursor.execute("SHOW statement_timeout")
            return cursor.fetchone()[0]

    before = setting()
    with transaction.atomic():  # the request's transaction
        with pytest.raises(TooLong), time_limit("default", 50), connection.cursor() as cursor:
            cursor.execute("SELECT pg_sleep(2)")
        assert setting() == before
        with time_limit("default", 5000), connection.cursor() as cursor:
            cursor.execute("SELECT pg_sleep(0.01)")
            assert setting() == "5s"
        assert setting() == before
        assert AuditLogEntry.objects.count() >= 0  # the transaction goes on
