"""A real browser on the export settings page: an owner's first export, an auditor's view.

The owner pastes a destination (a role in the S3/STS stand-in that trusts the tenant's
External ID), sees the permission policy follow what is typed, copies the External ID, tests
the connection before saving, saves, exports now and finds the objects listed; the auditor
finds the status, read only. No Content-Security-Policy violation on the way.
"""

import os
import re

import pytest

from exports.models import ExportBatch, ExportSettings
from exports.settings import export_settings_ensure

from .. import factories
from .test_audit_log_tab import (
    assert_violations_are_seen,
    launch,
    pytestmark,
    sign_in,
    sync_api,
    watch_csp,
)

__all__ = ["pytestmark"]

PAGE = "/settings/audit-logs/export/"
GREEN, RED = "rgb(26, 127, 55)", "rgb(164, 14, 38)"


@pytest.fixture
def tenant(transactional_db, s3, worker_in_process):
    """A tenant with an owner and an auditor, and a role (prefix ``browser``) for its ID."""
    tenant = factories.tenant("Hooli")
    owner, auditor = factories.owner(tenant), factories.reader(tenant)
    config = export_settings_ensure(tenant_id=tenant.pk)
    role = s3.create_role(external_id=config.external_id, prefix="browser")
    return tenant, owner, auditor, config.external_id, role


def test_an_owner_exports_for_the_first_time_and_an_auditor_watches(
    tenant, s3, live_server, tmp_path
):
    tenant, owner, auditor, external_id, role = tenant
    # The browser runs alone (see test_audit_log_tab): no ORM call while it runs.
    with sync_api().sync_playwright() as playwright:
        chromium = launch(playwright)
        try:
            seen = drive(chromium, live_server.url, owner, auditor, external_id, role, s3, tmp_path)
        finally:
            chromium.close()
    assert seen["violations"] == []
    assert seen["clipboard"] == external_id
    config = ExportSettings.objects.get(tenant_id=tenant.pk)
    assert (config.enabled, config.bucket, config.prefix, config.role_arn) == (
        True,
        s3.bucket,
        "browser",
        role,
    )
    batches = ExportBatch.objects.filter(tenant_id=tenant.pk).order_by("-pk")
    keys = [f"s3://{s3.bucket}/browser/{key}" for key in batches.values_list("key", flat=True)]
    assert keys
    assert seen["listed"] == keys
    assert seen["auditor_listed"] == keys


def style(locator, prop: str) -> str:
    return locator.evaluate(f"el => getComputedStyle(el).{prop}")


def listed_keys(page) -> list[str]:
    return page.locator("table code").all_inner_texts()


def drive(chromium, url, owner, auditor, external_id, role, s3, tmp_path) -> dict:
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=url)
    violations = watch_csp(context)
    page = context.new_page()
    page.set_default_timeout(15_000)
    seen: dict = {"violations": violations}

    sign_in(page, url, owner)
    assert_violations_are_seen(page, violations)
    page.goto(f"{url}/settings/audit-logs/")
    page.get_by_role("link", name="Export settings").click()
    page.wait_for_url(f"{url}{PAGE}")

    # The checkbox sits right before its label, on its line.
    box = page.get_by_label("Export to S3 every 15 minutes").bounding_box()
    label = page.locator("label[for=id_enabled]").bounding_box()
    assert 0 <= label["x"] - (box["x"] + box["width"]) < 16
    assert abs((label["y"] + label["height"] / 2) - (box["y"] + box["height"] / 2)) < 4

    # The External ID is shown whole, and its Copy button copies it.
    shown = page.locator("#external-id")
    assert shown.input_value() == external_id
    assert shown.evaluate("el => el.scrollWidth <= el.clientWidth")
    page.locator("button[data-copy=external-id]").click()
    page.get_by_role("button", name="Copied").wait_for()
    seen["clipboard"] = page.evaluate("navigator.clipboard.readText()")

    # The permission policy follows the bucket and prefix as they are typed.
    page.get_by_label("Bucket").fill(s3.bucket)
    page.get_by_label("Prefix").fill("/browser/")
    policy = page.locator("#permission-policy")
    assert f'"arn:aws:s3:::{s3.bucket}/browser/*"' in policy.inner_text()
    typed_policy = policy.inner_text()
    page.get_by_label("Region").fill(s3.region)
    page.get_by_label("Role ARN").fill(role)
    page.get_by_label("Export to S3 every 15 minutes").check()

    # Test connection tests what is typed, saves nothing, keeps the form as it was.
    page.get_by_role("button", name="Test connection").click()
    result = page.locator("#test-result")
    assert "Connection works" in result.inner_text()
    assert "they are not saved yet" in result.inner_text()
    assert style(result, "borderTopColor") == GREEN
    assert page.get_by_label("Role ARN").input_value() == role
    assert page.get_by_label("Prefix").input_value() == "/browser/"  # as typed
    assert page.get_by_label("Export to S3 every 15 minutes").is_checked()
    assert page.locator("#export-state").inner_text() == "Off"

    # A bad value is a field error, in red; then the good values are saved.
    page.get_by_label("Bucket").fill("Not_A_Bucket")
    page.get_by_role("button", name="Save").click()
    error = page.locator("#bucket-error")
    assert error.is_visible()
    assert style(error, "color") == RED
    page.get_by_label("Bucket").fill(s3.bucket)
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(f"{url}{PAGE}")
    saved = page.locator(".messages li")
    assert saved.inner_text() == "Export settings saved."
    assert style(saved, "color") == "rgb(17, 99, 41)"
    assert page.locator("#permission-policy").inner_text() == typed_policy  # the server agrees
    assert page.locator("#export-state").inner_text() == "On, every 15 minutes"

    # Export now: the objects are listed under Recent objects.
    page.get_by_role("button", name="Export now").click()
    page.wait_for_url(f"{url}{PAGE}")
    assert page.locator(".messages li").inner_text().startswith("Export queued")
    page.reload()
    seen["listed"] = listed_keys(page)
    # A picture for a human to look at (EXPORT_PAGE_SCREENSHOT=/tmp/export_settings.png).
    shot = os.environ.get("EXPORT_PAGE_SCREENSHOT") or str(tmp_path / "export_settings.png")
    page.screenshot(path=shot, full_page=True)

    # The auditor: the link leads to the status, read only.
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, url, auditor)
    page.goto(f"{url}/settings/audit-logs/")
    page.get_by_role("link", name="Export settings").click()
    page.wait_for_url(f"{url}{PAGE}")
    assert page.locator("#read-only").is_visible()
    assert page.locator("#destination").inner_text().startswith(f"s3://{s3.bucket}/browser/")
    assert page.locator("#external-id").count() == 0
    assert role not in page.content()
    assert not re.search(r"Export now|Save|Test connection", page.locator("main").inner_text())
    seen["auditor_listed"] = listed_keys(page)
    context.close()
    return seen
