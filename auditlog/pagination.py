"""Paging of the audit log API: Tines-style page numbers, anchored, plus keyset cursors.

Page numbers are what existing Tines clients send; they are served with ``OFFSET``, bounded
by an anchor (an implicit ``before``) fixed at the first request, so entries arriving while
a client pages never shift a page. Cursors (``(created_at, id)`` of the last entry, opaque)
are for deep reads: they walk the ``(tenant, -created_at, -id)`` index without ``OFFSET``.
"""

import base64
import binascii
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.http.request import split_domain_port, validate_host
from django.utils import timezone

from .exceptions import InvalidParameters
from .serializers import rfc3339

DEFAULT_PER_PAGE = 20
MAX_PER_PAGE = 500
# Counts are exact up to this many entries; past it ``count`` reports the cap.
COUNT_CAP = 10_000
# Keeps ``(page - 1) * per_page`` far from a 64-bit OFFSET overflow.
MAX_PAGE = 2**31 - 1
MAX_ENTRY_ID = 2**63 - 1


@dataclass(frozen=True)
class PageRequest:
    """What the caller asked for: a page number or a cursor, and how many entries."""

    per_page: int
    page: int
    cursor: tuple[datetime, int] | None
    anchor: datetime | None


@dataclass(frozen=True)
class Page:
    """One page of entries (``values()`` rows) and what is known about the rest."""

    rows: list[dict[str, Any]]
    has_next: bool
    count: int
    count_is_capped: bool
    next_cursor: str | None


class InvalidCursor(ValueError):
    """A cursor that no response of ours produced."""


def encode_cursor(created_at: datetime, entry_id: int) -> str:
    """The opaque cursor that continues after the entry ``(created_at, entry_id)``."""
    raw = f"{rfc3339(created_at)}|{entry_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    """The ``(created_at, id)`` a cursor points after; ``InvalidCursor`` if malformed."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, _, entry_id = raw.partition("|")
        created_at = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        number = int(entry_id)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidCursor(cursor) from None
    if not 0 < number <= MAX_ENTRY_ID:
        raise InvalidCursor(cursor)
    return created_at, number


def older_than(queryset: QuerySet, cursor: tuple[datetime, int]) -> QuerySet:
    """Entries before ``cursor`` in the newest-first order: ``(created_at, id) < (c, i)``.

    ``created_at <= c`` is the index range on ``(tenant, -created_at, -id)``; the OR only
    trims ties at its edge, so a deep page costs what the first one does. No OFFSET.
    """
    created_at, entry_id = cursor
    return queryset.filter(created_at__lte=created_at).filter(
        Q(created_at__lt=created_at) | Q(id__lt=entry_id)
    )


def newer_than(queryset: QuerySet, cursor: tuple[datetime, int]) -> QuerySet:
    """Entries after ``cursor`` in the newest-first order: ``(created_at, id) > (c, i)``."""
    created_at, entry_id = cursor
    return queryset.filter(created_at__gte=created_at).filter(
        Q(created_at__gt=created_at) | Q(id__gt=entry_id)
    )


def _positive_int(params: Any, name: str, default: int, maximum: int | None = None) -> int:
    value = params.get(name, "")
    if value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise InvalidParameters({name: f"{name} must be a whole number, got {value!r}."}) from None
    if number < 1:
        raise InvalidParameters({name: f"{name} must be 1 or more, got {number}."})
    if maximum is not None and number > maximum:
        raise InvalidParameters({name: f"{name} must be at most {maximum}, got {number}."})
    return number


def parse_page_request(params: Any) -> PageRequest:
    """Read ``per_page``, ``page`` and ``cursor``; malformed values are ``InvalidParameters``."""
    per_page = min(_positive_int(params, "per_page", DEFAULT_PER_PAGE), MAX_PER_PAGE)
    page = _positive_int(params, "page", 1, maximum=MAX_PAGE)
    raw_cursor = params.get("cursor", "")
    try:
        cursor = decode_cursor(raw_cursor) if raw_cursor else None
    except InvalidCursor:
        raise InvalidParameters(
            {"cursor": "Not a cursor: pass meta.next_cursor of a previous response unchanged."}
        ) from None
    if cursor is not None and params.get("page", "") not in ("", "1"):
        raise InvalidParameters({"cursor": "Give either page or cursor, not both."})
    # Without a ``before`` of the caller's, page numbers count back from this instant, which
    # ``next_page`` carries along: entries written meanwhile are newer and never shift a page.
    anchor = None if cursor is not None or params.get("before") else timezone.now()
    return PageRequest(per_page=per_page, page=page, cursor=cursor, anchor=anchor)


def capped_count(queryset: QuerySet) -> tuple[int, bool]:
    """``(count, capped)``: exact up to ``COUNT_CAP``, else ``(COUNT_CAP, True)``.

    ``COUNT(*)`` over a LIMITed subquery reads at most ``COUNT_CAP + 1`` index entries,
    however large the tenant's log is.
    """
    counted = queryset.order_by()[: COUNT_CAP + 1].count()
    return (COUNT_CAP, True) if counted > COUNT_CAP else (counted, False)


def paginate(queryset: QuerySet, request: PageRequest, columns: tuple[str, ...]) -> Page:
    """The requested page of ``queryset`` (ordered ``-created_at, -id``) as ``values`` rows."""
    if request.anchor is not None:
        queryset = queryset.filter(created_at__lt=request.anchor)
    count, capped = capped_count(queryset)
    if request.cursor is not None:
        window = older_than(queryset, request.cursor)
    else:
        offset = (request.page - 1) * request.per_page
        if not capped and offset >= count:
            return Page([], False, count, capped, None)
        window = queryset[offset:]
    rows = list(window.values(*columns)[: request.per_page + 1])
    has_next = len(rows) > request.per_page
    rows = rows[: request.per_page]
    next_cursor = (
        encode_cursor(rows[-1]["created_at"], rows[-1]["id"]) if has_next and rows else None
    )
    return Page(rows, has_next, count, capped, next_cursor)


def _forwarded(request: HttpRequest, header: str) -> str:
    # The last trusted proxy sets (or appends to) the header; its value is the last item.
    return request.META.get(header, "").split(",")[-1].strip()


def absolute_url(request: HttpRequest, path_and_query: str) -> str:
    """An absolute URL on this site, honouring ``X-Forwarded-Proto``/``-Host`` only behind
    trusted proxies (``TRUSTED_PROXY_COUNT > 0``) and only for hosts in ``ALLOWED_HOSTS``."""
    scheme = request.scheme
    host = request.get_host()
    if settings.TRUSTED_PROXY_COUNT > 0:
        proto = _forwarded(request, "HTTP_X_FORWARDED_PROTO").lower()
        if proto in ("http", "https"):
            scheme = proto
        forwarded_host = _forwarded(request, "HTTP_X_FORWARDED_HOST")
        domain, _ = split_domain_port(forwarded_host)
        if domain and validate_host(domain, settings.ALLOWED_HOSTS):
            host = forwarded_host
    return f"{scheme}://{host}{path_and_query}"


def _page_url(request: HttpRequest, params: list[tuple[str, str]], **extra: Any) -> str:
    query = urlencode([*params, *((k, str(v)) for k, v in extra.items())])
    return absolute_url(request, f"{request.path}?{query}")


def meta_for(
    request: HttpRequest, page_request: PageRequest, page: Page, filters: list[tuple[str, str]]
) -> dict[str, Any]:
    """The Tines ``meta`` block; links repeat the caller's filters (and the anchor)."""
    per_page = page_request.per_page
    replaced = {"page", "per_page", "cursor"}
    if page_request.anchor is not None:
        replaced.add("before")  # an empty one, if any: the anchor stands in for it
    params = [(k, v) for k, v in filters if k not in replaced]
    if page_request.anchor is not None:
        params.append(("before", rfc3339(page_request.anchor)))
    params.append(("per_page", str(per_page)))
    number = page_request.page if page_request.cursor is None else None
    pages = max(1, math.ceil(page.count / per_page))
    if page.count_is_capped and number is not None:
        pages = max(pages, number + int(page.has_next))

    if number is None:
        current = _page_url(request, params, cursor=encode_cursor(*page_request.cursor))
        previous = None
        following = _page_url(request, params, cursor=page.next_cursor) if page.has_next else None
    else:
        current = _page_url(request, params, page=number)
        previous = _page_url(request, params, page=number - 1) if number > 1 else None
        following = _page_url(request, params, page=number + 1) if page.has_next else None
    return {
        "current_page": current,
        "previous_page": previous,
        "next_page": following,
        "next_page_number": number + 1 if number is not None and page.has_next else None,
        "per_page": per_page,
        "pages": pages,
        "count": page.count,
        "count_is_capped": page.count_is_capped,
        "next_cursor": page.next_cursor,
    }
