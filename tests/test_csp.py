"""Content-Security-Policy: every page gets the strict policy, and no page needs more.

The browser test (tests/browser/) proves Chromium reports no violation on the pages it
visits; this checks the markup of every kind of page for what the policy would block.
"""

import re
from html.parser import HTMLParser

import pytest

from auditlog.models import AuditLogEntry

pytestmark = pytest.mark.django_db

POLICY = {
    "default-src": ["'self'"],
    "script-src": ["'self'", "'nonce-*'"],
    "style-src": ["'self'", "'nonce-*'"],
    "img-src": ["'self'", "data:"],
    "object-src": ["'none'"],
    "base-uri": ["'none'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}


def parse_policy(header: str) -> tuple[dict[str, list[str]], str]:
    """``({directive: sources}, nonce)`` with the nonce written as ``'nonce-*'``."""
    nonces = set(re.findall(r"'nonce-([A-Za-z0-9_-]+)'", header))
    assert len(nonces) == 1, header
    (nonce,) = nonces
    directives = {}
    for part in header.replace(nonce, "*").split(";"):
        name, *sources = part.split()
        directives[name] = sources
    return directives, nonce


class InlineCode(HTMLParser):
    """Collects what a strict policy blocks: inline code without the nonce, handlers, styles."""

    def __init__(self, nonce: str) -> None:
        super().__init__()
        self.nonce = nonce
        self.blocked: list[str] = []
        self.inline_blocks = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for name, value in attrs:
            if name.startswith("on"):
                self.blocked.append(f"<{tag} {name}=...>: inline event handler")
            if name == "style":
                self.blocked.append(f"<{tag} style=...>: inline style attribute")
            if name in ("href", "src", "action") and (value or "").lower().startswith(
                "javascript:"
            ):
                self.blocked.append(f"<{tag} {name}=javascript:...>")
        data_block = values.get("type", "").startswith("application/json")
        if (tag == "script" and "src" not in values and not data_block) or tag == "style":
            self.inline_blocks += 1
            if values.get("nonce") != self.nonce:
                self.blocked.append(f"<{tag}> without this response's nonce")


def pages(world) -> list[str]:
    entry = AuditLogEntry.objects.filter(tenant_id=world.tenant.pk).first()
    return [
        "/",
        "/settings/",
        "/settings/audit-logs/",
        f"/settings/audit-logs/{entry.pk}/",
        "/settings/audit-logs/export/",
        "/admin/",
        "/admin/auditlog/auditlogentry/",
        "/admin/tenants/team/",
        "/admin/tenants/team/add/",
        f"/admin/tenants/team/{world.team.pk}/change/",
        "/admin/tenants/credential/add/",
        "/api/v1/docs",
    ]


def check(response) -> InlineCode:
    assert response.status_code == 200
    directives, nonce = parse_policy(response["Content-Security-Policy"])
    assert directives == POLICY
    found = InlineCode(nonce)
    found.feed(response.content.decode())
    assert found.blocked == []
    return found


def test_every_page_gets_the_policy_and_needs_nothing_it_blocks(client, world_a):
    check(client.get("/login/"))
    check(client.get("/admin/login/"))
    client.force_login(world_a.owner)
    for url in pages(world_a):
        check(client.get(url))


def test_the_docs_page_runs_its_inline_script_by_nonce(client, db):
    found = check(client.get("/api/v1/docs"))
    assert found.inline_blocks == 2  # Swagger UI's styles and its initialisation


def test_each_response_has_its_own_nonce(client, db):
    nonces = {parse_policy(client.get("/login/")["Content-Security-Policy"])[1] for _ in range(3)}
    assert len(nonces) == 3


def test_api_responses_carry_the_policy_too(api, world_a):
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {world_a.keys['owner']}")
    response = api.get("/api/v1/teams/")
    assert parse_policy(response["Content-Security-Policy"])[0] == POLICY


def test_django_debug_pages_are_left_without_the_policy(client, db, settings):
    # Django's debug 404 and 500 pages are inline styles and scripts (local runs only).
    assert "Content-Security-Policy" in client.get("/no-such-page/")
    settings.DEBUG = True
    assert "Content-Security-Policy" not in client.get("/no-such-page/")
    assert "Content-Security-Policy" in client.get("/login/")
