"""Rate limits by GCRA (the generic cell rate algorithm), and the API rate limits built on it.

A limit of ``limit`` events per ``period`` seconds with a burst of ``burst`` events:

- Each identity has one value, its theoretical arrival time (TAT): when it would be back
  to a full burst. An event at ``now`` is allowed while ``TAT - now <= tolerance``; an
  allowed event moves TAT to ``max(TAT, now) + interval``, a refused one changes nothing.
- ``interval = period / (limit - burst + 1)`` (rounded up to the millisecond) and
  ``tolerance = (burst - 1) * interval``. What that guarantees: **no window of ``period``
  seconds, wherever it starts, holds more than ``limit`` allowed events.** Proof: let the
  window's first allowed event be at ``c``; after k allowed events TAT ≥ c + k·interval,
  so the next one needs ``now >= c + k·interval - tolerance``, which lies inside
  ``[c, c + period)`` only while ``k < period / interval + burst - 1 = limit``: at most
  ``limit`` events in all. A client gets ``burst`` events at once, then one per
  ``interval`` (``limit - burst + 1`` per period, sustained).
- With Redis (``REDIS_URL``) one Lua script reads and moves TAT atomically, on Redis's
  clock (``TIME``): every worker on every host shares one count and one clock, and of
  concurrent events exactly one sees the budget run out (the sign-in throttle records its
  lockout once thanks to that). The key expires when TAT passes: an idle identity costs
  nothing. Without Redis (the local run), the same steps run in this process under a lock.
"""

import math
import re
import threading
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from rest_framework.throttling import BaseThrottle

from .context import client_ip

PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([smhd])[a-z]*\s*$", re.IGNORECASE)

# KEYS[1]: the identity's TAT (ms). ARGV: interval, tolerance (ms), cost (1 hit, -1 give back).
# Returns {allowed, remaining, wait_ms}: wait_ms until the next event may pass (0: now).
GCRA_SCRIPT = """
local clock = redis.call("TIME")
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local interval, tolerance, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local tat = math.max(tonumber(redis.call("GET", KEYS[1]) or 0), now)
if cost > 0 and tat - now > tolerance then
  return {0, 0, tat - tolerance - now}
end
tat = tat + cost * interval
if tat > now then
  redis.call("SET", KEYS[1], string.format("%d", tat), "PX", tat - now)
else
  redis.call("DEL", KEYS[1])
end
local remaining = math.max(0, math.floor((tolerance - (tat - now)) / interval) + 1)
return {1, remaining, math.max(0, tat - tolerance - now)}
"""

_in_process = threading.Lock()


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
class Hit:
    """An event's verdict: allowed, how many more may pass now, the seconds until the next
    may (0: at once; at least 1 otherwise), and the identity's cache key."""

    allowed: bool
    remaining: int
    retry_after: int
    key: str


@dataclass(frozen=True)
class Gcra:
    """``limit`` events per identity in any ``period`` seconds, ``burst`` of them at once."""

    name: str
    limit: int
    period: int
    burst: int

    @classmethod
    def for_rate(cls, name: str, rate: str, *, burst: int | None = None) -> "Gcra":
        """The limit of a rate setting; the burst defaults to the whole limit."""
        limit, period = parse_rate(rate)
        return cls(name=name, limit=limit, period=period, burst=min(limit, burst or limit))

    @property
    def interval_ms(self) -> int:
        # Rounded up: a shorter interval would let one event more into some window.
        return math.ceil(self.period * 1000 / (self.limit - self.burst + 1))

    def hit(self, identity: str) -> Hit:
        """Count one event if the budget allows it; ``remaining`` is left after it."""
        # The key names the limit: an arrival time spaced for another rate means nothing to
        # this one, so a changed setting starts every budget afresh.
        key = f"{self.name}:{self.limit}-{self.period}-{self.burst}:{identity}"
        return self._run(key, cost=1)

    def give_back(self, hit: Hit) -> None:
        """Uncount the allowed event that ``hit`` was."""
        if hit.allowed:
            self._run(hit.key, cost=-1)

    def clear(self, hit: Hit) -> None:
        """Forget every event of the identity ``hit`` was counted for: a full budget again."""
        caches["default"].delete(hit.key)

    def _run(self, key: str, *, cost: int) -> Hit:
        interval = self.interval_ms
        tolerance = (self.burst - 1) * interval
        cache = caches["default"]
        if isinstance(cache, RedisCache):
            full_key = cache.make_and_validate_key(key)
            client = cache._cache.get_client(full_key, write=True)
            reply = client.register_script(GCRA_SCRIPT)(
                keys=[full_key], args=[interval, tolerance, cost]
            )
            allowed, remaining, wait_ms = (int(value) for value in reply)
        else:
            allowed, remaining, wait_ms = _step_in_process(cache, key, interval, tolerance, cost)
        retry_after = math.ceil(wait_ms / 1000)
        return Hit(bool(allowed), remaining, max(1, retry_after) if wait_ms else 0, key)


def _step_in_process(
    cache: Any, key: str, interval: int, tolerance: int, cost: int
) -> tuple[int, int, int]:
    """GCRA_SCRIPT's steps, for a cache only this process uses (the local run's memory)."""
    with _in_process:
        now = int(time.time() * 1000)
        tat = max(cache.get(key) or 0, now)
        if cost > 0 and tat - now > tolerance:
            return 0, 0, tat - tolerance - now
        tat += cost * interval
        if tat > now:
            cache.set(key, tat, timeout=(tat - now) / 1000)
        else:
            cache.delete(key)
        remaining = max(0, (tolerance - (tat - now)) // interval + 1)
        return 1, remaining, max(0, tat - tolerance - now)


class ApiKeyRateThrottle(BaseThrottle):
    """``settings.<rate_setting>`` requests in any period, per API key (or session user).

    One budget per key wherever it is used from; requests nothing authenticated share their
    address's budget. Half the limit may come at once, the other half is spread over the
    period (``Gcra``): never more than the limit in any period-long window. Each API
    subclasses it with its own setting and counter name: its own budget.
    """

    rate_setting = ""
    counter_name = ""

    def __init__(self) -> None:
        self.retry_after = 1

    def identity(self, request: Any) -> str:
        key = getattr(request, "auth", None)
        if getattr(key, "key_hash", None):
            return f"key:{key.pk}"
        if request.user and request.user.is_authenticated:
            return f"user:{request.user.pk}"
        return f"anon:{client_ip(request) or 'unknown'}"

    def allow_request(self, request: Any, view: Any) -> bool:
        limit, period = parse_rate(getattr(settings, self.rate_setting))
        gcra = Gcra(self.counter_name, limit, period, burst=math.ceil(limit / 2))
        hit = gcra.hit(self.identity(request))
        self.retry_after = hit.retry_after
        return hit.allowed

    def wait(self) -> float:
        return self.retry_after


class AuditLogApiThrottle(ApiKeyRateThrottle):
    """The audit log API's budget: ``AUDIT_LOG_API_RATE``."""

    rate_setting = "AUDIT_LOG_API_RATE"
    counter_name = "auditlog-api-rate"
