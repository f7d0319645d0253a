"""Brute-force protection of both sign-in pages, counted in the suite's real cache (Redis).

Each test gets its own cache key prefix (``tests/conftest.py``), so counts start at zero.
"""

import json
import logging
import os
import re
import time

import pytest
import redis
from django.conf import settings
from django.test import Client, RequestFactory

from audit_project.logformat import JsonFormatter
from auditlog.models import AuditLogEntry
from auditlog.throttling import parse_rate
from tenants import throttling

from .. import factories

pytestmark = pytest.mark.django_db

PAGES = ["/login/", "/admin/login/"]
IP = "203.0.113.7"
OTHER_IP = "198.51.100.9"
REFUSAL = "Too many failed sign-in attempts"


def last_id() -> int:
    return AuditLogEntry.objects.order_by("-id").values_list("id", flat=True).first() or 0


def entries_after(start: int) -> list[AuditLogEntry]:
    return list(AuditLogEntry.objects.filter(id__gt=start).order_by("id"))


def attempt(client: Client, page: str, email: str, password: str, ip: str = IP):
    data = {"username": email, "password": password, "next": "/"}
    return client.post(page, data, REMOTE_ADDR=ip)


def account_limit() -> int:
    return parse_rate(settings.SIGN_IN_FAILURES_PER_ACCOUNT)[0]


def error_text(response) -> str:
    """The form's non-field error, with its numbers blanked (the wait ticks down)."""
    html = response.content.decode()
    found = re.search(r'<div class="errors"[^>]*>(.*?)</div>', html, re.S)
    return re.sub(r"\d+", "N", re.sub(r"<[^>]+>", "", found.group(1)).strip()) if found else ""


@pytest.mark.parametrize("page", PAGES)
def test_twenty_wrong_passwords_lock_the_account_and_refuse_the_right_one(client, world_a, page):
    owner, limit = world_a.owner, account_limit()
    start = last_id()
    statuses = [attempt(client, page, owner.email, f"wrong-{i}").status_code for i in range(20)]
    # The failure that reaches the limit is already answered with the lockout.
    assert statuses == [200] * (limit - 1) + [429] * (21 - limit)

    refused = attempt(client, page, owner.email, factories.PASSWORD)
    assert refused.status_code == 429
    wait = int(refused["Retry-After"])
    assert 1 <= wait <= parse_rate(settings.SIGN_IN_FAILURES_PER_ACCOUNT)[1]
    assert throttling.locked_out_message(wait) in refused.content.decode()
    assert "_auth_user_id" not in client.session

    # The real failures are recorded, then one lockout; blocked attempts leave nothing.
    entries = entries_after(start)
    assert [e.operation_name for e in entries] == ["LoginFailure"] * limit + ["LoginLockout"]
    lockout = entries[-1]
    assert lockout.tenant_id == world_a.tenant.pk
    assert lockout.target_id == str(owner.pk)
    assert lockout.request_ip == IP
    assert lockout.inputs["inputs"]["email"] == owner.email
    assert lockout.inputs["inputs"]["scope"] == "account"
    assert lockout.inputs["inputs"]["failures"] == limit


def test_an_account_lockout_holds_from_every_address_and_spares_other_accounts(client, world_a):
    for _ in range(account_limit()):
        attempt(client, "/login/", world_a.member.email, "wrong")
    from_elsewhere = attempt(
        Client(), "/login/", world_a.member.email, factories.PASSWORD, OTHER_IP
    )
    assert from_elsewhere.status_code == 429
    assert attempt(client, "/login/", world_a.owner.email, factories.PASSWORD).status_code == 302


def test_the_lockout_looks_the_same_whether_or_not_the_account_exists(client, world_a, caplog):
    start = last_id()
    caplog.set_level(logging.WARNING, logger="auditlog.services")
    tries = account_limit() + 1
    known = [
        attempt(client, "/login/", world_a.member.email, "x", "192.0.2.1") for _ in range(tries)
    ]
    unknown = [
        attempt(client, "/login/", "nobody@example.test", "x", "192.0.2.2") for _ in range(tries)
    ]
    assert [r.status_code for r in known] == [r.status_code for r in unknown]
    assert [r.has_header("Retry-After") for r in known] == [
        r.has_header("Retry-After") for r in unknown
    ]
    assert [error_text(r) for r in known] == [error_text(r) for r in unknown]
    assert REFUSAL in error_text(unknown[-1])
    # The unknown email has no tenant to file entries under: the application log has them.
    assert {e.inputs["inputs"]["email"] for e in entries_after(start)} == {world_a.member.email}
    assert "LoginLockout for an unknown account" in caplog.text
    assert "nobody@example.test" not in caplog.text


@pytest.mark.parametrize("page", PAGES)
def test_one_address_trying_many_emails_is_locked_out(client, world_a, world_b, page):
    limit = parse_rate(settings.SIGN_IN_FAILURES_PER_IP)[0]
    assert limit > account_limit()
    start = last_id()
    # Each email fails once only: no account limit is near, the address's limit is reached.
    emails = [f"guess{i}@example.test" for i in range(limit - 1)] + [world_b.member.email]
    statuses = [attempt(client, page, email, "wrong").status_code for email in emails]
    assert statuses == [200] * (limit - 1) + [429]

    refused = attempt(client, page, world_a.owner.email, factories.PASSWORD)
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) >= 1
    assert REFUSAL in refused.content.decode()
    elsewhere = attempt(Client(), page, world_a.owner.email, factories.PASSWORD, OTHER_IP)
    assert elsewhere.status_code == 302

    entries = [e for e in entries_after(start) if e.operation_name != "Login"]
    assert [e.operation_name for e in entries] == ["LoginFailure", "LoginLockout"]
    assert entries[1].tenant_id == world_b.tenant.pk
    assert entries[1].inputs["inputs"]["scope"] == "ip"
    assert entries[1].request_ip == IP


def test_the_address_is_taken_from_the_trusted_proxy(client, world_a, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    settings.SIGN_IN_FAILURES_PER_IP = "2/15min"

    def through_proxy(email: str, password: str, client_says: str):
        data = {"username": email, "password": password}
        return client.post(
            "/login/", data, REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=f"{client_says}, {IP}"
        )

    # What the client writes in X-Forwarded-For is not its address: the proxy's hop is.
    assert through_proxy("a@example.test", "x", "192.0.2.1").status_code == 200
    assert through_proxy("b@example.test", "x", "192.0.2.2").status_code == 429
    assert through_proxy(world_a.owner.email, factories.PASSWORD, "192.0.2.3").status_code == 429


def test_signing_in_clears_the_accounts_failures(client, world_a):
    email, limit = world_a.member.email, account_limit()
    assert [attempt(client, "/login/", email, "wrong").status_code for _ in range(limit - 1)] == [
        200
    ] * (limit - 1)
    assert attempt(client, "/login/", email, factories.PASSWORD).status_code == 302
    client.post("/logout/")
    # Counted from zero again: as many failures as before are still answered normally.
    statuses = [attempt(client, "/login/", email, "wrong").status_code for _ in range(limit)]
    assert statuses == [200] * (limit - 1) + [429]


def test_right_passwords_are_not_held_against_the_address(client, world_a, settings):
    settings.SIGN_IN_FAILURES_PER_IP = "2/15min"  # an office behind one address
    for user in (world_a.owner, world_a.reader, world_a.member, world_a.owner):
        assert attempt(client, "/login/", user.email, factories.PASSWORD).status_code == 302
        client.post("/logout/")
    assert attempt(client, "/login/", "a@example.test", "wrong").status_code == 200
    assert attempt(client, "/login/", "b@example.test", "wrong").status_code == 429


def test_the_right_password_refused_by_policy_is_not_a_failure(client, world_a):
    start = last_id()
    for _ in range(account_limit() + 1):  # a member may not enter the console, password or not
        attempt(client, "/admin/login/", world_a.member.email, factories.PASSWORD)
        assert "_auth_user_id" not in client.session
    assert entries_after(start) == []
    assert attempt(client, "/login/", world_a.member.email, factories.PASSWORD).status_code == 302


def test_concurrent_attempts_cannot_share_the_last_try(client, world_a, rf):
    email, limit = world_a.member.email, account_limit()
    for _ in range(limit - 1):
        attempt(client, "/login/", email, "wrong")
    start = last_id()
    # Two workers, each with the last try's password still unchecked.
    first, second = (
        throttling.SignInThrottle(rf.post("/login/", REMOTE_ADDR=IP), email) for _ in "12"
    )
    assert first.admit() == 0
    assert second.admit() > 0  # refused before its password is checked, and uncounted
    assert first.counts["account"].remaining == 0
    assert first.password_failed() > 0
    assert [e.operation_name for e in entries_after(start)] == ["LoginLockout"]
    assert attempt(client, "/login/", email, factories.PASSWORD).status_code == 429


def test_the_right_password_works_again_once_the_window_has_passed(client, world_a, settings):
    settings.SIGN_IN_FAILURES_PER_ACCOUNT = "2/2s"
    start = last_id()
    assert attempt(client, "/login/", world_a.member.email, "wrong").status_code == 200
    assert attempt(client, "/login/", world_a.member.email, "wrong").status_code == 429
    refused = attempt(client, "/login/", world_a.member.email, factories.PASSWORD)
    assert refused.status_code == 429
    wait = int(refused["Retry-After"])
    assert 1 <= wait <= 2
    time.sleep(wait)
    assert attempt(client, "/login/", world_a.member.email, factories.PASSWORD).status_code == 302
    ops = [e.operation_name for e in entries_after(start)]
    assert ops == ["LoginFailure", "LoginFailure", "LoginLockout", "Login"]


def test_a_missing_password_is_a_form_error_and_not_counted(client, world_a):
    for _ in range(account_limit() + 1):
        response = attempt(client, "/login/", world_a.member.email, "")
        assert response.status_code == 200
    assert attempt(client, "/login/", world_a.member.email, factories.PASSWORD).status_code == 302


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="REDIS_URL is not set")
def test_failures_are_counted_in_redis_without_the_email(client, world_a, settings):
    attempt(client, "/login/", world_a.member.email, "wrong")
    server = redis.Redis.from_url(os.environ["REDIS_URL"])
    prefix = settings.CACHES["default"]["KEY_PREFIX"]
    keys = {k.decode(): server.get(k) for k in server.scan_iter(f"{prefix}:*")}
    assert sorted(k.split(":")[2] for k in keys) == [
        "signin-failures-account",
        "signin-failures-ip",
    ]
    # One arrival time each, shared by every worker: one failure's worth ahead of Redis's clock.
    seconds, micros = server.time()
    now_ms = seconds * 1000 + micros // 1000
    period = parse_rate(settings.SIGN_IN_FAILURES_PER_ACCOUNT)[1]
    assert all(0 < int(tat) - now_ms <= period * 1000 for tat in keys.values())
    assert not [k for k in keys if world_a.member.email in k]
    assert [k for k in keys if k.endswith(f":{IP}")]
    assert all(0 < server.ttl(k) <= period for k in keys)


@pytest.fixture
def lockouts(caplog):
    """The structured lockout lines logged, and what ``sign_in_locked_out`` was sent."""
    caplog.set_level(logging.WARNING, logger="audit_project.security")
    sent: list[dict] = []

    def receive(sender, **fields):
        sent.append(fields)

    throttling.sign_in_locked_out.connect(receive)
    yield lambda: ([r for r in caplog.records if hasattr(r, "event")], sent)
    throttling.sign_in_locked_out.disconnect(receive)


def test_an_address_locked_out_on_emails_nobody_has_is_logged_once(client, world_a, lockouts):
    limit = parse_rate(settings.SIGN_IN_FAILURES_PER_IP)[0]
    start = last_id()
    emails = [f"spray{i}@example.test" for i in range(limit + 5)]
    statuses = [attempt(client, "/login/", email, "wrong").status_code for email in emails]
    assert statuses == [200] * (limit - 1) + [429] * 6
    assert entries_after(start) == []  # no account, no tenant to file an entry under

    records, sent = lockouts()
    assert [r.event for r in records] == ["sign_in_ip_lockout"]  # not one per refusal
    line = json.loads(JsonFormatter().format(records[0]))
    assert line["event"] == "sign_in_ip_lockout"
    assert line["logger"] == "audit_project.security"
    assert line["client_ip"] == IP
    assert (
        line["account_key"]
        == throttling.SignInThrottle(
            RequestFactory().post("/login/"), emails[limit - 1]
        ).identities["account"]
    )
    assert 1 <= line["retry_after"] <= parse_rate(settings.SIGN_IN_FAILURES_PER_IP)[1]
    assert "spray" not in json.dumps(line)  # the email only as its keyed hash
    assert [s["kind"] for s in sent] == ["ip"]
    assert sent[0]["client_ip"] == IP


def test_an_account_lockout_is_logged_once_and_kept_in_its_tenants_log(client, world_a, lockouts):
    start = last_id()
    for i in range(account_limit() + 3):
        attempt(client, "/login/", world_a.member.email, f"wrong-{i}")
    records, sent = lockouts()
    assert [r.event for r in records] == ["sign_in_account_lockout"]
    assert records[0].event_fields["client_ip"] == IP
    assert world_a.member.email not in records[0].getMessage()
    assert [s["kind"] for s in sent] == ["account"]
    ops = [e.operation_name for e in entries_after(start)]
    assert ops == ["LoginFailure"] * account_limit() + ["LoginLockout"]
