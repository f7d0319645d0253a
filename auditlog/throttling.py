"""Fixed-window counters in the default cache, and the API rate limits built on them.

The cache is Redis when ``REDIS_URL`` is set: one ``add`` and one atomic ``incr`` per
counted event, so concurrent workers share one count and each event learns the count it
made (of concurrent events, one alone sees the limit reached: the sign-in throttle records
its lockout once thanks to that).
Windows are aligned to the epoch: a count lasts until its window ends, at most ``period``
seconds, and a burst straddling two windows can reach twice the limit.
"""

import contextlib
import math
import re
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache
from rest_framework.throttling import BaseThrottle

from .context import client_ip

# The counters' clock, a seam for the tests: they start it at the beginning of a window.
clock = time.time

PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([smhd])[a-z]*\s*$", re.IGNORECASE)


def parse_rate(rate: str) -> tuple[int, int]:
    """``"1000/min"`` → ``(1000, 60)``, ``"5/15min"`` → ``(5, 900)``: a count per period.

    The unit is read by its first letter, like DRF; a number before it multiplies it.
    """
    match = _RATE.match(rate)
    if match is None:
        raise ValueError(f"not a rate like '5/15min': {rate!r}")
    number, multiple, unit = match.groups()
    return int(number), int(multiple or 1) * PERIODS[unit.lower()]


@dataclass(frozen=True)
class Count:
    """How many events a window holds, the seconds until it ends, and its cache key."""

    used: int
    retry_after: int
    key: str


@dataclass(frozen=True)
class FixedWindowCounter:
    """Events per identity per window of ``period`` seconds, named ``name`` in the cache."""

    name: str
    limit: int
    period: int

    @classmethod
    def for_rate(cls, name: str, rate: str) -> "FixedWindowCounter":
        limit, period = parse_rate(rate)
        return cls(name=name, limit=limit, period=period)

    def _window(self, identity: str) -> tuple[str, int]:
        now = clock()
        window = int(now // self.period)
        retry_after = max(1, math.ceil((window + 1) * self.period - now))
        return f"{self.name}:{identity}:{self.period}:{window}", retry_after

    def hit(self, identity: str) -> Count:
        """Count one event in the current window; ``used`` includes it."""
        key, retry_after = self._window(identity)
        cache.add(key, 0, timeout=self.period + 1)
        try:
            used = cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.add(key, 1, timeout=self.period + 1)
            used = 1
        return Count(used=used, retry_after=retry_after, key=key)

    def give_back(self, count: Count) -> None:
        """Uncount the event that ``hit`` returned ``count`` for."""
        with contextlib.suppress(ValueError):  # its window is over: nothing to give back
            cache.decr(count.key)

    def clear(self, count: Count) -> None:
        """Forget every event of the window ``count`` belongs to."""
        cache.delete(count.key)


class ApiKeyRateThrottle(BaseThrottle):
    """``settings.<rate_setting>`` requests per window, per key (or user) and IP.

    Each API subclasses it with its own setting and counter name: its own budget.
    """

    rate_setting = ""
    counter_name = ""

    def __init__(self) -> None:
        self.retry_after = 1

    def identity(self, request: Any) -> str:
        ip = client_ip(request) or "unknown"
        key = getattr(request, "auth", None)
        if getattr(key, "key_hash", None):
            return f"key:{key.pk}:{ip}"
        if request.user and request.user.is_authenticated:
            return f"user:{request.user.pk}:{ip}"
        return f"anon:{ip}"

    def allow_request(self, request: Any, view: Any) -> bool:
        counter = FixedWindowCounter.for_rate(
            self.counter_name, getattr(settings, self.rate_setting)
        )
        count = counter.hit(self.identity(request))
        if count.used <= counter.limit:
            return True
        self.retry_after = count.retry_after
        return False

    def wait(self) -> float:
        return self.retry_after


class AuditLogApiThrottle(ApiKeyRateThrottle):
    """The audit log API's budget: ``AUDIT_LOG_API_RATE``."""

    rate_setting = "AUDIT_LOG_API_RATE"
    counter_name = "auditlog-api-rate"
