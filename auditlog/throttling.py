"""Rate limit of the audit log API: per API key (or session user) and client IP.

A fixed-window counter in the default cache (Redis when ``REDIS_URL`` is set): one
``add`` and one atomic ``incr`` per request, so concurrent workers share one count.
"""

import math
import time
from typing import Any

from django.conf import settings
from django.core.cache import cache
from rest_framework.throttling import BaseThrottle

from .context import client_ip

PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    """``"1000/min"`` → ``(1000, 60)``; the period is read by its first letter, like DRF."""
    number, _, period = rate.partition("/")
    return int(number), PERIODS[period.strip()[0].lower()]


class AuditLogApiThrottle(BaseThrottle):
    """``settings.AUDIT_LOG_API_RATE`` requests per window, per key (or user) and IP."""

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
        limit, period = parse_rate(settings.AUDIT_LOG_API_RATE)
        now = time.time()
        window = int(now // period)
        cache_key = f"auditlog-api-rate:{self.identity(request)}:{period}:{window}"
        cache.add(cache_key, 0, timeout=period + 1)
        try:
            used = cache.incr(cache_key)
        except ValueError:  # expired between add and incr
            cache.add(cache_key, 1, timeout=period + 1)
            used = 1
        if used <= limit:
            return True
        self.retry_after = max(1, math.ceil((window + 1) * period - now))
        return False

    def wait(self) -> float:
        return self.retry_after
