"""The activity chart of the Audit logs tab: the filtered entries over time, by category.

One aggregate query: the tab's filtered queryset (the one selector, the one FilterSet),
``created_at`` truncated to a bucket in the viewer's zone (Django's ``Trunc``, so PostgreSQL
and SQLite alike) and grouped with ``operation_name``; Python maps each name to its catalog
category. The query names every operation of the catalog, which changes nothing it counts
(entries only hold catalog names) but lets PostgreSQL answer from the
``(tenant, operation_name, created_at)`` index alone: one short range per operation, no
table rows read (other filters may lead PostgreSQL to their own indexes instead).

Buckets are sized to the span: minutes for an hour, hours for a day, days for a week or a
month, weeks for a year, months, years; at most ``MAX_BARS``. The span is the filters' own
time range; without one, the last ``DEFAULT_SPAN`` (a whole log is millions of rows to
count). The count costs what the span holds (about 45 ms per 100,000 entries), so on
PostgreSQL a span the planner estimates at more than ``AUDIT_LOG_CHART_MAX_ENTRIES`` is not
counted at all, and a count may take at most ``AUDIT_LOG_CHART_TIMEOUT_MS``: a longer one is
cancelled (in a savepoint, so the request's transaction goes on). Either way the tab says
the range is too large to chart, rather than making every view of a long range slow. Each bar
links to its own range as ``after`` (its start less a microsecond: ``after`` is exclusive and
times carry microseconds) and ``before`` (its end), so a click lists exactly the entries the
bar counted.
"""

import calendar
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from django.conf import settings
from django.db import OperationalError, connections
from django.db.models import Count, QuerySet
from django.db.models.functions import Trunc

from .filters import RANGE_PRESETS
from .operations import CATEGORIES, OPERATIONS
from .pgsettings import local_settings

MAX_BARS = 72
DEFAULT_SPAN = timedelta(days=7)
# Smallest first: the first unit that fits the span in ``MAX_BARS`` bars is used.
UNITS = (
    ("minute", timedelta(minutes=1)),
    ("hour", timedelta(hours=1)),
    ("day", timedelta(days=1)),
    ("week", timedelta(days=7)),
    ("month", timedelta(days=31)),
    ("year", timedelta(days=366)),
)
# The drawing's coordinate system (the SVG scales to the page's width).
WIDTH, HEIGHT = 1000, 120


@dataclass(frozen=True)
class Segment:
    """One category's part of a bar."""

    category: str
    css: str
    count: int
    y: float
    height: float


@dataclass(frozen=True)
class Bar:
    """One bucket: its time range, its counts by category, where it sits and links to."""

    start: datetime
    end: datetime
    label: str
    total: int
    segments: tuple[Segment, ...]
    left: float
    x: float
    width: float
    href: str


class TooLong(Exception):
    """The chart's count took longer than ``AUDIT_LOG_CHART_TIMEOUT_MS``."""


@contextmanager
def time_limit(alias: str, milliseconds: int) -> Iterator[None]:
    """Run a block of queries for at most ``milliseconds`` (PostgreSQL), else ``TooLong``.

    The request's transaction goes on: the cancelled statement only rolls back its block.
    """
    if milliseconds <= 0:
        yield
        return
    try:
        with local_settings(alias, statement_timeout=f"{milliseconds}ms"):
            yield
    except OperationalError as error:
        if getattr(error.__cause__, "sqlstate", None) == "57014":  # query_canceled
            raise TooLong from error
        raise


@dataclass(frozen=True)
class Chart:
    """The bars, the span they cover and what the reader needs to read them."""

    bars: tuple[Bar, ...]
    unit: str
    start: datetime
    end: datetime
    defaulted: bool
    total: int
    peak: int
    legend: tuple[tuple[str, str, int], ...]
    slot: float


def span(cleaned: dict, now: datetime) -> tuple[datetime, datetime, bool]:
    """``(start, end, defaulted)`` of the time the filters select (the default when none)."""
    end = min(cleaned.get("before") or now, now)
    if cleaned.get("after"):
        start = cleaned["after"]
    elif cleaned.get("range"):
        start = now - RANGE_PRESETS[cleaned["range"]]
    else:
        return end - DEFAULT_SPAN, end, True
    return start, end, False


def unit_for(length: timedelta) -> str:
    """The smallest bucket that draws ``length`` in at most ``MAX_BARS`` bars."""
    for unit, size in UNITS:
        if length <= size * MAX_BARS:
            return unit
    return UNITS[-1][0]


def floor(moment: datetime, unit: str) -> datetime:
    """The start of the bucket holding the wall-clock time ``moment`` (naive)."""
    moment = moment.replace(second=0, microsecond=0)
    if unit == "minute":
        return moment
    moment = moment.replace(minute=0)
    if unit == "hour":
        return moment
    moment = moment.replace(hour=0)
    if unit == "week":
        return moment - timedelta(days=moment.weekday())
    if unit == "month":
        return moment.replace(day=1)
    if unit == "year":
        return moment.replace(month=1, day=1)
    return moment


def following(moment: datetime, unit: str) -> datetime:
    """The start of the bucket after the one starting at ``moment`` (naive, wall clock)."""
    if unit == "month":
        year, month = divmod(moment.month, 12)
        return moment.replace(year=moment.year + year, month=month + 1)
    if unit == "year":
        return moment.replace(year=moment.year + 1)
    return moment + dict(UNITS)[unit]


def bucket_starts(start: datetime, end: datetime, unit: str, zone: tzinfo) -> list[datetime]:
    """Wall-clock starts (naive, in ``zone``) of the buckets from ``start`` up to ``end``."""
    moment = floor(start.astimezone(zone).replace(tzinfo=None), unit)
    stop = end.astimezone(zone).replace(tzinfo=None)
    starts = [moment]
    while (moment := following(moment, unit)) < stop:
        starts.append(moment)
    return starts


def estimated_rows(queryset: QuerySet) -> int:
    """PostgreSQL's estimate of the rows ``queryset`` matches (0 elsewhere): a plan, no scan.

    A count that the estimate already puts past ``AUDIT_LOG_CHART_MAX_ENTRIES`` is not
    started: waiting for the time limit to cancel it would cost the tab that limit first.
    """
    if connections[queryset.db].vendor != "postgresql":
        return 0
    plan = json.loads(queryset.order_by().values("pk").explain(format="json"))
    return int(plan[0]["Plan"]["Plan Rows"])


def counts(
    queryset: QuerySet, unit: str, zone: tzinfo, start: datetime, end: datetime
) -> dict[datetime, dict[str, int]]:
    """``{bucket start (naive, wall clock): {category: entries}}``: the one aggregate query."""
    rows = (
        queryset.order_by()
        .filter(created_at__gte=start, created_at__lt=end)
        .annotate(bucket=Trunc("created_at", unit, tzinfo=zone))
        .values("bucket", "operation_name")
        .annotate(entries=Count("*"))
    )
    if estimated_rows(queryset.filter(created_at__gte=start, created_at__lt=end)) > (
        settings.AUDIT_LOG_CHART_MAX_ENTRIES
    ):
        raise TooLong
    with time_limit(queryset.db, settings.AUDIT_LOG_CHART_TIMEOUT_MS):
        rows = list(rows)
    found: dict[datetime, dict[str, int]] = {}
    for row in rows:
        key = row["bucket"].astimezone(zone).replace(tzinfo=None)
        category = OPERATIONS[row["operation_name"]].category
        by_category = found.setdefault(key, {})
        by_category[category] = by_category.get(category, 0) + row["entries"]
    return found


def activity(
    queryset: QuerySet,
    cleaned: dict,
    zone: tzinfo,
    now: datetime,
    link: Callable[[datetime, datetime], str],
) -> Chart | None:
    """The chart of ``queryset`` (already filtered by ``cleaned``); None for an empty span.

    ``link(after, before)`` is the address of the tab narrowed to one bar. Raises
    ``TooLong`` when the span holds too many entries to count in time.
    """
    start, end, defaulted = span(cleaned, now)
    if start >= end:
        return None
    unit = unit_for(end - start)
    # A span longer than ``MAX_BARS`` years (``after=0001-01-01``) shows its last years.
    start = max(start, end - UNITS[-1][1] * MAX_BARS)
    walls = bucket_starts(start, end, unit, zone)
    edges = [wall.replace(tzinfo=zone) for wall in [*walls, following(walls[-1], unit)]]
    if not cleaned.get("operation_name"):
        queryset = queryset.filter(operation_name__in=list(OPERATIONS))
    found = counts(queryset, unit, zone, edges[0], edges[-1])
    totals = [sum(found.get(wall, {}).values()) for wall in walls]
    peak = max(totals, default=0)
    slot = WIDTH / len(walls)
    bars = []
    for index, wall in enumerate(walls):
        by_category = found.get(wall, {})
        segments, top = [], float(HEIGHT)
        for number, category in enumerate(CATEGORIES):
            entries = by_category.get(category, 0)
            if entries:
                height = HEIGHT * entries / peak
                top -= height
                segments.append(Segment(category, f"cat-{number}", entries, top, height))
        bar_start, bar_end = edges[index], edges[index + 1]
        bars.append(
            Bar(
                start=bar_start,
                end=bar_end,
                label=bar_label(bar_start, bar_end, unit),
                total=totals[index],
                segments=tuple(segments),
                left=index * slot,
                x=index * slot + slot * 0.1,
                width=slot * 0.8,
                href=link(bar_start - timedelta(microseconds=1), bar_end),
            )
        )
    per_category = {c: sum(found.get(w, {}).get(c, 0) for w in walls) for c in CATEGORIES}
    legend = tuple(
        (category, f"cat-{number}", per_category[category])
        for number, category in enumerate(CATEGORIES)
    )
    return Chart(
        bars=tuple(bars),
        unit=unit,
        start=edges[0],
        end=edges[-1],
        defaulted=defaulted,
        total=sum(totals),
        peak=peak,
        legend=legend,
        slot=slot,
    )


def bar_label(start: datetime, end: datetime, unit: str) -> str:
    """A bucket in words, in the zone of ``start``: ``Wed 31 Jan 2024, 10:00 to 11:00 CET``."""
    if unit == "minute":
        return f"{start:%a %d %b %Y, %H:%M} {start:%Z}"
    if unit == "hour":
        return f"{start:%a %d %b %Y, %H:%M} to {end:%H:%M} {start:%Z}"
    if unit == "day":
        return f"{start:%a %d %b %Y}"
    if unit == "week":
        return f"Week of {start:%a %d %b %Y}"
    if unit == "month":
        return f"{calendar.month_name[start.month]} {start.year}"
    return f"{start.year}"
