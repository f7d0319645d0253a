"""The GCRA limit shared by the API rate limits and the sign-in throttle, in the real Redis.

Each test gets its own cache key prefix (``tests/conftest.py``), so budgets start full.
"""

import os
import time

import pytest
from django.test import Client

from auditlog.throttling import Gcra, parse_rate

URL = "/api/v1/audit_logs"
in_redis = pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="REDIS_URL is not set")


def test_rates_are_parsed_with_a_multiple_of_the_unit():
    assert parse_rate("5/15min") == (5, 900)
    assert parse_rate("1000/min") == (1000, 60)
    assert parse_rate("50 / 2h") == (50, 7200)
    assert parse_rate("3/s") == (3, 1)
    with pytest.raises(ValueError, match="not a rate"):
        parse_rate("5 per minute")


@pytest.fixture(params=["redis", "memory"])
def cache_kind(request, settings):
    """The Redis script, and the same steps in the process's memory (no REDIS_URL)."""
    if request.param == "redis":
        if not os.environ.get("REDIS_URL"):
            pytest.skip("REDIS_URL is not set")
    else:
        settings.CACHES = {
            "default": {
                "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                "LOCATION": f"gcra-{time.monotonic_ns()}",
            }
        }
    return request.param


def test_a_burst_then_one_per_interval_and_what_gives_it_back(cache_kind):
    gcra = Gcra(name="probe", limit=4, period=60, burst=3)  # 3 at once, then one per 30 s
    hits = [gcra.hit("someone") for _ in range(4)]
    assert [(h.allowed, h.remaining) for h in hits] == [(True, 2), (True, 1), (True, 0), (False, 0)]
    assert [h.retry_after for h in hits[:2]] == [0, 0]
    assert 29 <= hits[2].retry_after <= 30  # the lockout's wait: the next interval
    assert 29 <= hits[3].retry_after <= 30
    assert gcra.hit("someone-else").allowed  # every identity has its own budget

    gcra.give_back(hits[2])
    again = [gcra.hit("someone") for _ in range(2)]
    assert [(h.allowed, h.remaining) for h in again] == [(True, 0), (False, 0)]
    gcra.clear(hits[0])
    assert gcra.hit("someone").remaining == 2


@in_redis
def test_no_window_of_the_period_holds_more_than_the_limit(settings, world_a):
    """A client bursting where an epoch-aligned window resets gets no second budget."""
    settings.AUDIT_LOG_API_RATE = "10/2s"
    limit, period = parse_rate(settings.AUDIT_LOG_API_RATE)
    client = Client(headers={"Authorization": f"Bearer {world_a.keys['reader']}"})
    client.get(URL)  # a first request pays the one-time costs, then the budget starts full
    settings.CACHES = {
        "default": {**settings.CACHES["default"], "KEY_PREFIX": f"edge-{time.time_ns()}"}
    }
    # Begin a quarter period before a fixed window would reset, and send through the reset.
    time.sleep((0.75 * period - time.time() % period) % period)
    passed, slowest, end = [], 0.0, time.time() + 1.5 * period
    while time.time() < end:
        sent = time.time()
        response = client.get(URL)
        slowest = max(slowest, time.time() - sent)
        if response.status_code == 200:
            passed.append(sent)
        else:
            assert response.status_code == 429
            assert int(response["Retry-After"]) >= 1
    # Redis saw each request between its sending and its answer: a window narrowed by the
    # slowest answer, in the senders' times, stays inside one period of Redis's times.
    most = max(sum(start <= t < start + period - slowest for t in passed) for start in passed)
    assert most <= limit, (most, slowest)
    assert len(passed) > limit  # and the budget refills as time passes


@in_redis
def test_a_key_has_one_budget_from_every_address(settings, world_a):
    settings.AUDIT_LOG_API_RATE = "4/min"  # 2 at once
    settings.TRUSTED_PROXY_COUNT = 1
    client = Client(headers={"Authorization": f"Bearer {world_a.keys['reader']}"})
    statuses = [
        client.get(URL, REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=address).status_code
        for address in ("192.0.2.1", "198.51.100.2", "203.0.113.3")
    ]
    assert statuses == [200, 200, 429]
    session = Client()
    session.force_login(world_a.reader)
    assert [
        session.get(URL, REMOTE_ADDR=address).status_code
        for address in ("192.0.2.1", "198.51.100.2", "203.0.113.3")
    ] == [200, 200, 429]
