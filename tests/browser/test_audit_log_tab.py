"""A real browser on the Settings → Audit logs tab: sign in, filter, page, detail, download;
and on an owner's pages, the admin console and the API docs. On every page, the
Content-Security-Policy must not block anything (Chromium reports each violation).

Headless Chromium from Debian's ``chromium`` package, driven by Playwright (its own browser
downloads are never used). Skipped only on a developer machine without ``/usr/bin/chromium``;
with ``CI`` set, a missing browser fails the test.
"""

import csv
import os
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from auditlog.models import AuditLogEntry
from auditlog.services import entry_row, record_rows
from tenants import services

from .. import factories

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TEAMS = 62

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists() and not os.environ.get("CI"),
        reason="/usr/bin/chromium is not installed (apt-get install chromium); CI requires it",
    ),
]


def sync_api():
    """Playwright's sync API; on CI its absence is a failure, elsewhere a skip."""
    if os.environ.get("CI"):
        from playwright import sync_api

        return sync_api
    return pytest.importorskip("playwright.sync_api")


@pytest.fixture
def tenant_log(transactional_db):
    """A tenant with a reader, more than a page of ``TeamCreation`` entries, and an old one."""
    tenant = factories.tenant("Initech")
    reader = factories.reader(tenant)
    factories.owner(tenant)
    for i in range(TEAMS):
        services.team_create(tenant=tenant, name=f"Team {i:02d}")
    old = entry_row(operation_name="TeamCreation", tenant_id=tenant.pk, target_repr="Old team")
    old["created_at"] = timezone.now() - timedelta(days=45)
    record_rows([old])
    recent = list(
        AuditLogEntry.objects.filter(
            tenant_id=tenant.pk,
            operation_name="TeamCreation",
            created_at__gte=timezone.now() - timedelta(days=7),
        )
        .order_by("-created_at", "-id")
        .values_list("id", flat=True)
    )
    assert len(recent) == TEAMS
    return tenant, reader, recent


# Violations reach the console as Chromium's own "Refused to ... Content Security Policy"
# errors; the listener (an init script, which the policy does not govern) adds the details.
REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (e) => console.error(
  `CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || "inline code"}`
));
"""


def watch_csp(context) -> list[str]:
    """Every CSP violation reported in any page of ``context``, as console text."""
    context.add_init_script(REPORT_VIOLATIONS)
    seen: list[str] = []

    def on_console(message) -> None:
        if "Content Security Policy" in message.text or message.text.startswith("CSP violation"):
            seen.append(message.text)

    context.on("console", on_console)
    return seen


def assert_violations_are_seen(page, seen: list[str]) -> None:
    """The watch works: an image from another origin is blocked and reported."""
    page.evaluate(
        "() => { const i = document.createElement('img');"
        " i.src = 'https://csp-probe.invalid/x.png'; document.body.append(i); }"
    )
    page.wait_for_timeout(500)
    assert any("img-src" in text for text in seen), seen
    seen.clear()


def launch(playwright):
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
    )


def row_ids(page) -> list[int]:
    return [
        int(i)
        for i in page.locator("tbody tr").evaluate_all("rows => rows.map(r => r.dataset.entryId)")
    ]


def test_reader_filters_pages_opens_detail_and_downloads_csv(tenant_log, live_server, tmp_path):
    tenant, reader, recent = tenant_log
    # The browser runs first and alone: Playwright's sync API keeps an event loop running in
    # this thread, and ORM calls made under it would use (and leak) another connection.
    with sync_api().sync_playwright() as playwright:
        chromium = launch(playwright)
        try:
            target = drive(chromium, live_server.url, reader, recent, tmp_path)
        finally:
            chromium.close()

    with target.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["id"]) for r in rows] == recent
    assert {r["operation_name"] for r in rows} == {"TeamCreation"}
    assert {int(r["tenant_id"]) for r in rows} == {tenant.pk}
    recorded = AuditLogEntry.objects.get(tenant_id=tenant.pk, operation_name="AuditLogDownload")
    assert recorded.user_id == reader.pk
    assert recorded.inputs == {
        "format": "csv",
        "filters": {"operation_name": ["TeamCreation"], "range": "7d"},
    }
    assert recorded.outputs == {"row_count": TEAMS}


def drive(chromium, url: str, reader, recent: list[int], tmp_path: Path) -> Path:
    """Sign in, open the tab from the menu, filter, page, open a detail, download CSV."""
    context = chromium.new_context(accept_downloads=True, timezone_id="Europe/Paris")
    violations = watch_csp(context)
    page = context.new_page()
    page.set_default_timeout(15_000)

    # Sign in through the real form.
    page.goto(f"{url}/login/")
    assert_violations_are_seen(page, violations)
    page.get_by_label("Email").fill(reader.email)
    page.get_by_label("Password").fill(factories.PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{url}/")

    # Home → Settings → the Audit logs tab of the menu.
    page.get_by_role("link", name="Settings").click()
    page.wait_for_url(f"{url}/settings/")
    page.get_by_role("navigation", name="Initech").get_by_role("link", name="Audit logs").click()
    page.wait_for_url(f"{url}/settings/audit-logs/")
    assert page.get_by_role("heading", level=1).inner_text() == "Audit logs"

    # Filter by an operation and a time range; the form is submitted from the keyboard.
    page.get_by_role("group", name="Operations").get_by_label("Created a team").check()
    page.get_by_label("Time range").select_option("7d")
    page.get_by_role("button", name="Apply filters").press("Enter")
    page.wait_for_url(re.compile(r".*operation_name=TeamCreation.*"))
    assert "range=7d" in page.url
    assert "Europe/Paris" in page.locator("table.entries caption").inner_text()
    first_page = row_ids(page)
    assert first_page == recent[:50]
    assert page.locator("tbody tr").first.locator("td").nth(1).inner_text() == "Created a team"
    # A picture of the tab for a human to look at (AUDIT_TAB_SCREENSHOT=/tmp/audit_tab.png).
    page.screenshot(
        path=os.environ.get("AUDIT_TAB_SCREENSHOT") or str(tmp_path / "audit_tab.png"),
        full_page=True,
    )

    # Page to older entries; an entry's detail links back to that same page and filters.
    page.get_by_role("link", name="Older →").click()
    page.wait_for_url(re.compile(r".*cursor=.*"))
    assert row_ids(page) == recent[50:]
    assert page.get_by_role("link", name="Older →").count() == 0
    second_page = page.url
    page.locator(f'tr[data-entry-id="{recent[55]}"] th a').click()
    page.wait_for_url(re.compile(rf".*/settings/audit-logs/{recent[55]}/\?.*"))
    page.get_by_role("link", name="← Audit logs").click()
    page.wait_for_url(re.compile(r".*/settings/audit-logs/\?.*"))
    assert page.url == second_page
    assert row_ids(page) == recent[50:]
    page.get_by_role("link", name="← Newer").click()
    page.wait_for_url(re.compile(r".*dir=newer.*"))
    assert row_ids(page) == first_page

    # Open an entry's detail, then come back.
    page.locator(f'tr[data-entry-id="{recent[3]}"] th a').click()
    page.wait_for_url(re.compile(rf".*/settings/audit-logs/{recent[3]}/\?.*"))
    assert page.get_by_role("heading", level=1).inner_text() == "Created a team"
    assert "TeamCreation" in page.locator("main").inner_text()
    assert page.get_by_role("heading", name="Changes").count() == 1
    assert page.locator("pre.json").count() == 2
    page.go_back()
    page.wait_for_url(re.compile(r".*operation_name=TeamCreation.*"))

    # Download the filtered rows as CSV.
    with page.expect_download() as download_info:
        page.get_by_role("link", name="CSV").click()
    download = download_info.value
    assert re.fullmatch(r"audit-log-\d{8}T\d{6}Z\.csv", download.suggested_filename)
    target = tmp_path / download.suggested_filename
    download.save_as(target)
    context.close()
    assert violations == []
    return target


@pytest.fixture
def owner_site(transactional_db):
    """A tenant with an owner, a team and a few entries."""
    tenant = factories.tenant("Umbrella")
    owner = factories.owner(tenant)
    services.team_create(tenant=tenant, name="Red team")
    return owner


def test_owner_pages_admin_console_and_api_docs_run_under_the_policy(owner_site, live_server):
    with sync_api().sync_playwright() as playwright:
        chromium = launch(playwright)
        try:
            violations, dialogs = drive_owner(chromium, live_server.url, owner_site)
        finally:
            chromium.close()
    assert violations == []
    assert dialogs == [
        "Generate a new External ID? The export is switched off until the role trusts the new one."
    ]


def drive_owner(chromium, url: str, owner) -> tuple[list[str], list[str]]:
    """The export settings, the admin console and the API docs, as an owner."""
    context = chromium.new_context()
    violations = watch_csp(context)
    page = context.new_page()
    page.set_default_timeout(15_000)
    dialogs: list[str] = []

    def dismiss(dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", dismiss)

    page.goto(f"{url}/login/")
    page.get_by_label("Email").fill(owner.email)
    page.get_by_label("Password").fill(factories.PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{url}/")

    def visit(path: str) -> None:
        page.goto(f"{url}{path}")
        page.wait_for_load_state("load")
        assert violations == [], path

    # The export settings: the confirmation runs from a static script, not an inline handler.
    visit("/settings/audit-logs/export/")
    external_id = page.locator("#external-id").input_value()
    page.get_by_role("button", name="Regenerate External ID").click()
    page.wait_for_timeout(500)
    assert violations == []
    assert page.locator("#external-id").input_value() == external_id  # dismissed: unchanged

    # The admin console: its index, the audit log, a change list and an add form.
    for path in ("/admin/", "/admin/auditlog/auditlogentry/", "/admin/tenants/team/"):
        visit(path)
        assert page.locator("#content").count() == 1
    visit("/admin/tenants/team/add/")
    page.get_by_label("Name").fill("Blue team")
    page.get_by_role("button", name="Save", exact=True).click()
    page.wait_for_url(re.compile(r".*/admin/tenants/team/$"))

    # The API docs: Swagger UI starts (its nonce'd script ran) and lists the operations.
    visit("/api/v1/docs")
    page.locator(".opblock").first.wait_for()
    assert page.locator(".opblock").count() >= 3
    page.locator(".opblock").first.click()  # expanding an operation renders more of the UI
    page.wait_for_timeout(500)
    context.close()
    return violations, dialogs


def sign_in(page, url: str, user) -> None:
    page.goto(f"{url}/login/")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(factories.PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{url}/")


def test_a_click_on_a_chart_bar_narrows_the_list_to_it(tenant_log, live_server):
    tenant, reader, recent = tenant_log
    long_name = "Maximiliana Bartholomew-Featherstonehaugh of the Incident Response Rota"
    services.user_update(user=factories.user(tenant), name=long_name)
    with sync_api().sync_playwright() as playwright:
        chromium = launch(playwright)
        try:
            context = chromium.new_context(timezone_id="Europe/Paris")
            violations = watch_csp(context)
            page = context.new_page()
            page.set_default_timeout(15_000)
            sign_in(page, live_server.url, reader)
            page.goto(
                f"{live_server.url}/settings/audit-logs/?operation_name=TeamCreation&range=30d"
            )
            summary = page.locator("#summary-line")
            assert summary.inner_text() == "62 entries match the filters:"
            bars = page.locator("svg.activity-chart a.bar")
            # 30 days in days: every team was created today; the old one is 45 days back.
            assert bars.count() == 1
            assert "62 entries" in bars.first.get_attribute("aria-label")
            bars.first.click()
            page.wait_for_url(re.compile(r".*after=.*before=.*"))
            assert "range=" not in page.url
            assert "operation_name=TeamCreation" in page.url
            assert summary.inner_text() == "62 entries match the filters:"
            assert row_ids(page) == recent[:50]
            # The day's chart is drawn in hours, and a bar of it narrows again.
            assert "per hour (Europe/Paris)" in page.locator("#activity-caption").inner_text()
            hour = page.locator("svg.activity-chart a.bar").last
            counted = int(re.search(r": (\d+) entr", hour.get_attribute("aria-label")).group(1))
            hour.click()
            page.wait_for_url(re.compile(r".*after=.*"))
            assert summary.inner_text().startswith(f"{counted} entr")
            assert "per minute" in page.locator("#activity-caption").inner_text()
            context.close()
        finally:
            chromium.close()
    assert violations == []


def test_admin_audit_log_fits_1280_pixels(owner_site, live_server, tmp_path):
    long_name = "Security Operations: Incident Response and Threat Hunting (EMEA night shift)"
    services.team_create(tenant=owner_site.tenant, name=long_name)
    row = entry_row(operation_name="TeamUpdate", tenant_id=owner_site.tenant.pk, user=owner_site)
    row.update(request_ip="2001:db8:85a3:1234:5678:8a2e:370:7334", target_repr=long_name)
    record_rows([row])
    with sync_api().sync_playwright() as playwright:
        chromium = launch(playwright)
        try:
            context = chromium.new_context(viewport={"width": 1280, "height": 900})
            violations = watch_csp(context)
            page = context.new_page()
            page.set_default_timeout(15_000)
            sign_in(page, live_server.url, owner_site)
            page.goto(f"{live_server.url}/admin/auditlog/auditlogentry/")
            page.locator("#result_list").wait_for()
            widths = page.evaluate(
                "() => { const box = document.querySelector('#changelist .results');"
                " return {page: document.documentElement.scrollWidth,"
                " table: document.querySelector('#result_list').getBoundingClientRect().right,"
                " overflow: box.scrollWidth - box.clientWidth}; }"
            )
            # A picture to look at (AUDIT_ADMIN_SCREENSHOT=/tmp/admin_log.png).
            page.screenshot(
                path=os.environ.get("AUDIT_ADMIN_SCREENSHOT") or str(tmp_path / "admin.png"),
                full_page=True,
            )
            text = page.locator("#result_list").inner_text()
            context.close()
        finally:
            chromium.close()
    assert widths["page"] <= 1280, widths
    assert widths["table"] <= 1280, widths
    assert widths["overflow"] <= 0, widths  # no column hidden behind a scroll bar
    assert long_name in text
    assert "Created a team" in text
    assert "TeamCreation" in text
    assert " UTC" in text
    assert violations == []
