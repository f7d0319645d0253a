"""Settings → Audit logs: the server-rendered tab, an entry's detail, and the download.

Every read goes through ``audit_log_entries_for`` and every filter through
``AuditLogEntryFilterSet``, so the tab, the download, the API and the admin agree.
Page views are not recorded; a download is (``AuditLogDownload``).
"""

import json
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from . import downloads, names, retention
from .activity import DEFAULT_SPAN, TooLong, activity
from .filters import ACTOR_TYPE_CHOICES, RANGE_CHOICES, AuditLogEntryFilterSet
from .models import AuditLogEntry
from .operations import OPERATIONS, TARGET_TYPES
from .pagination import (
    InvalidCursor,
    capped_count,
    decode_cursor,
    encode_cursor,
    newer_than,
    older_than,
)
from .permissions import AUDIT_LOG_READ, can_read_audit_log
from .selectors import audit_log_entries_for
from .serializers import rfc3339
from .services import record

PAGE_SIZE = 50
EXPORT_SETTINGS_URL_NAME = "audit_log_export_settings"
# Query parameters that page through the list rather than filter it.
PAGING_PARAMS = ("cursor", "dir")
# Parameters of the time range: a bar of the chart replaces them with its own.
TIME_PARAMS = ("range", "after", "before")
# Columns the list does not show: the JSON documents can be large.
LIST_DEFERRED = ("inputs", "outputs", "changes", "request_user_agent")


# --- shared helpers -------------------------------------------------------------------------


def viewer_timezone(request: HttpRequest) -> tzinfo:
    """The viewer's zone: ``?tz=``, else the ``tz`` cookie set by ``static/js/tz.js``, else UTC."""
    name = request.GET.get("tz") or request.COOKIES.get("tz") or "UTC"
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return UTC


def settings_menu(request: HttpRequest, active: str) -> dict[str, Any]:
    """The tenant/team menu shown beside every settings page."""
    items = [{"key": "general", "label": "General", "url": reverse("settings")}]
    if can_read_audit_log(request.user):
        items.append({"key": "audit_logs", "label": "Audit logs", "url": reverse("audit_logs")})
    teams = getattr(request.user, "teams", None)
    return {
        "menu_items": items,
        "menu_active": active,
        "menu_tenant": getattr(request.user, "tenant", None),
        "menu_teams": list(teams.order_by("name").values_list("name", flat=True)) if teams else [],
    }


def audit_log_reader(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Anonymous users go to sign in; signed-in users without the permission get a 403 page."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not can_read_audit_log(request.user):
            return render(
                request,
                "auditlog/forbidden.html",
                {**settings_menu(request, "audit_logs"), "permission": AUDIT_LOG_READ},
                status=403,
            )
        return view(request, *args, **kwargs)

    return wrapper


def filterset_for(request: HttpRequest) -> AuditLogEntryFilterSet:
    """The FilterSet over the viewer's entries, bound to the query string.

    Timestamps without an offset are read in the viewer's zone, the one the tab shows.
    """
    zone = viewer_timezone(request)
    filterset = AuditLogEntryFilterSet(
        request.GET, queryset=audit_log_entries_for(request.user), naive_zone=zone
    )
    users = (
        get_user_model()
        ._default_manager.filter(tenant_id=request.user.tenant_id)
        .order_by("name", "email")
        .values_list("pk", "name", "email")
    )
    fields = filterset.form.fields
    fields["user_id"].choices = [
        (pk, f"{name} <{email}>" if name else email) for pk, name, email in users
    ]
    keys = names.names_of(request.user.tenant_id, "api_key")
    fields["api_key_id"].choices = sorted(keys.items(), key=lambda item: item[1].lower())
    zone_name = getattr(zone, "key", "UTC")
    for name, (label, help_text) in FIELD_TEXT.items():
        fields[name].label = label.format(zone=zone_name)
        fields[name].help_text = help_text.format(zone=zone_name)
        if help_text:
            fields[name].widget.attrs["aria-describedby"] = f"id_{name}_help"
    for name in ("after", "before"):
        fields[name].widget.attrs["placeholder"] = "2024-01-31 09:00"
    return filterset


# Labels and hints of the filter form (the FilterSet's own labels are written for the API).
FIELD_TEXT = {
    "range": (
        "Time range",
        "A preset (up to now), or “Any time” and a custom range below: not both.",
    ),
    "after": (
        "Custom range: after ({zone})",
        "Read in {zone}, the zone times are shown in, unless it ends in Z or an offset "
        "(+01:00). E.g. 2024-01-31 09:00.",
    ),
    "before": ("Custom range: before ({zone})", "Exclusive; read in {zone} like after."),
    "user_id": ("Users", ""),
    "api_key_id": ("API keys", "Entries made with these keys."),
    "actor_type": ("Other actors", ""),
    "operation_name": ("Operations", "Grouped by category."),
    "target_type": ("Target type", "Any case: Credential and credential are the same."),
    "target_id": ("Target id", ""),
    "request_ip": ("IP address", "An exact IPv4 or IPv6 address."),
    "request_id": ("Request id", "The server's id of one request (its X-Request-ID answer)."),
}
# How a summary chip names each filter.
CHIP_NAMES = {
    "range": "Time",
    "after": "After",
    "before": "Before",
    "user_id": "User",
    "api_key_id": "API key",
    "actor_type": "Actor",
    "operation_name": "Operation",
    "target_type": "Target type",
    "target_id": "Target id",
    "request_ip": "IP address",
    "request_id": "Request id",
}


def active_filters(filterset: AuditLogEntryFilterSet) -> dict[str, Any]:
    """The filters a valid FilterSet applied, JSON-friendly (for links and the download entry)."""
    used: dict[str, Any] = {}
    for name, value in filterset.form.cleaned_data.items():
        if value in (None, "", []):
            continue
        used[name] = rfc3339(value) if isinstance(value, datetime) else value
    return used


def filter_pairs(request: HttpRequest, leave_out: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """The request's non-empty filter parameters (no paging, none of ``leave_out``), in order."""
    dropped = {*PAGING_PARAMS, *leave_out, *(f"{name}[]" for name in leave_out)}
    return [
        (k, item)
        for k, values in request.GET.lists()
        if k not in dropped
        for item in values
        if item != ""
    ]


def filter_query(request: HttpRequest, **extra: str) -> str:
    """The request's filter parameters (no paging), plus ``extra``, as a query string."""
    return urlencode([*filter_pairs(request), *extra.items()])


def filter_chips(
    request: HttpRequest, filterset: AuditLogEntryFilterSet, zone: tzinfo
) -> list[dict[str, str]]:
    """Each filter value the list applies, named for people, with a link that drops just it."""
    pairs = filter_pairs(request)
    choices = {
        "user_id": {str(k): v for k, v in filterset.form.fields["user_id"].choices},
        "api_key_id": dict(filterset.form.fields["api_key_id"].choices),
        "actor_type": dict(ACTOR_TYPE_CHOICES),
        "operation_name": {name: op.description for name, op in OPERATIONS.items()},
        "target_type": TARGET_TYPES,
        "range": dict(RANGE_CHOICES),
    }
    cleaned = filterset.form.cleaned_data
    chips = []
    for index, (key, value) in enumerate(pairs):
        name = key.removesuffix("[]")
        if name not in CHIP_NAMES:
            continue
        if name in ("after", "before"):
            shown = _local(cleaned[name], zone)
        elif name == "target_type":
            shown = TARGET_TYPES.get(value.lower(), value)
        else:
            shown = choices.get(name, {}).get(value, value)
        rest = urlencode(pairs[:index] + pairs[index + 1 :])
        chips.append({"name": CHIP_NAMES[name], "value": shown, "remove_url": f"?{rest}"})
    return chips


def _local(instant: datetime, zone: tzinfo) -> str:
    """An instant in the viewer's zone, to the microsecond only when it has them."""
    local = instant.astimezone(zone)
    text = f"{local:%Y-%m-%d %H:%M:%S}" + (f".{local:%f}" if local.microsecond else "")
    return f"{text} {local:%Z}"


def summary_line(count: int, capped: bool, filtered: bool) -> str:
    """How many entries the list holds, exact up to the API's count cap."""
    where = "match the filters" if filtered else "in this tenant's log"
    if capped:
        return f"More than {count:,} entries {where}"
    if count == 1:
        return f"1 entry {'matches the filters' if filtered else where}"
    return f"{count:,} entries {where}"


def export_settings_url() -> str | None:
    """The export settings page, once the exports app routes it."""
    try:
        return reverse(EXPORT_SETTINGS_URL_NAME)
    except NoReverseMatch:
        return None


# --- keyset pagination ----------------------------------------------------------------------


@dataclass
class Page:
    """One keyset page of entries, newest first, and where the links lead."""

    entries: list[AuditLogEntry]
    older_cursor: str | None
    newer_cursor: str | None


def keyset_page(queryset: QuerySet, cursor: tuple[datetime, int] | None, newer: bool) -> Page:
    """``PAGE_SIZE`` entries older (or newer) than ``cursor``, by ``(created_at, id)``."""
    if cursor is None:
        rows = list(queryset.order_by("-created_at", "-id")[: PAGE_SIZE + 1])
        return _page(rows[:PAGE_SIZE], has_older=len(rows) > PAGE_SIZE, has_newer=False)
    if newer:
        rows = list(newer_than(queryset, cursor).order_by("created_at", "id")[: PAGE_SIZE + 1])
        if len(rows) <= PAGE_SIZE:
            # Back at the top: show a full first page rather than a short one.
            return keyset_page(queryset, None, newer=False)
        return _page(rows[:PAGE_SIZE][::-1], has_older=True, has_newer=True)
    rows = list(older_than(queryset, cursor).order_by("-created_at", "-id")[: PAGE_SIZE + 1])
    return _page(rows[:PAGE_SIZE], has_older=len(rows) > PAGE_SIZE, has_newer=True)


def _cursor_of(entry: AuditLogEntry) -> str:
    return encode_cursor(entry.created_at, entry.pk)


def _page(entries: list[AuditLogEntry], *, has_older: bool, has_newer: bool) -> Page:
    return Page(
        entries=entries,
        older_cursor=_cursor_of(entries[-1]) if has_older and entries else None,
        newer_cursor=_cursor_of(entries[0]) if has_newer and entries else None,
    )


# --- views ----------------------------------------------------------------------------------


@login_required
def settings_index(request: HttpRequest) -> HttpResponse:
    """The tenant's Settings page: the menu, and what each section is for."""
    return render(request, "settings/index.html", settings_menu(request, "general"))


@audit_log_reader
def audit_log_list(request: HttpRequest) -> HttpResponse:
    """The Audit logs tab: filters, how many entries match, the activity chart, and a
    keyset-paged table newest first with download links."""
    filterset = filterset_for(request)
    context: dict[str, Any] = {
        **settings_menu(request, "audit_logs"),
        "filterset": filterset,
        "form": filterset.form,
        "export_settings_url": export_settings_url(),
        "page_size": PAGE_SIZE,
        "retention_days": retention.window_days(),
    }
    if not filterset.is_valid():
        context["invalid"] = True
        _mark_invalid(filterset)
        return _render_in_zone(request, "auditlog/list.html", context, status=400)

    cursor = None
    if request.GET.get("cursor"):
        try:
            cursor = decode_cursor(request.GET["cursor"])
        except InvalidCursor:
            context["cursor_error"] = True
    queryset = filterset.qs.defer(*LIST_DEFERRED).describable()
    page = keyset_page(queryset, cursor, newer=request.GET.get("dir") == "newer")
    for entry in page.entries:
        entry.iso_utc = rfc3339(entry.created_at)
        entry.operation = OPERATIONS.get(entry.operation_name)
    filters = active_filters(filterset)
    zone = viewer_timezone(request)
    count, capped = capped_count(filterset.qs)
    bar_filters = filter_pairs(request, leave_out=TIME_PARAMS)

    def bar_link(after: datetime, before: datetime) -> str:
        return "?" + urlencode(
            [*bar_filters, ("after", rfc3339(after)), ("before", rfc3339(before))]
        )

    try:
        chart = activity(filterset.qs, filterset.form.cleaned_data, zone, timezone.now(), bar_link)
    except TooLong:
        chart, context["chart_too_long"] = None, True
    context.update(
        summary=summary_line(count, capped, bool(filters)),
        chips=filter_chips(request, filterset, zone),
        chart=chart,
        default_span_days=DEFAULT_SPAN.days,
        # The list's own query string: the detail's back link returns to this very page.
        detail_query=urlencode(
            [(k, v) for k, values in request.GET.lists() for v in values if v != ""]
        ),
    )
    context.update(
        page=page,
        entries=page.entries,
        filtered=bool(filters),
        older_url=f"?{filter_query(request, cursor=page.older_cursor)}"
        if page.older_cursor
        else None,
        newer_url=f"?{filter_query(request, cursor=page.newer_cursor, dir='newer')}"
        if page.newer_cursor
        else None,
        download_csv_url=f"{reverse('audit_log_download')}?{filter_query(request, format='csv')}",
        download_ndjson_url=(
            f"{reverse('audit_log_download')}?{filter_query(request, format='ndjson')}"
        ),
        clear_url=reverse("audit_logs"),
        paged=cursor is not None,
    )
    if not page.entries and (filters or cursor is not None):
        context["log_is_empty"] = not audit_log_entries_for(request.user).exists()
    return _render_in_zone(request, "auditlog/list.html", context)


@audit_log_reader
def audit_log_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """One entry in full; an entry of another tenant does not exist here (404)."""
    entry = get_object_or_404(audit_log_entries_for(request.user), pk=pk)
    entry.iso_utc = rfc3339(entry.created_at)
    entry.operation = OPERATIONS.get(entry.operation_name)
    query = urlencode([(k, v) for k, values in request.GET.lists() for v in values if v != ""])
    known = names.resolve(entry.tenant_id, names.referenced_ids(entry))
    context = {
        **settings_menu(request, "audit_logs"),
        "entry": entry,
        "target_name": known.get((entry.target_type, entry.target_id)),
        "story_name": known.get(("story", str(entry.story_id))),
        "inputs_json": _pretty(entry.inputs),
        "outputs_json": _pretty(entry.outputs),
        "diff": _diff_rows(entry, known),
        "references": _input_references(entry, known),
        "back_url": f"{reverse('audit_logs')}?{query}" if query else reverse("audit_logs"),
    }
    return _render_in_zone(request, "auditlog/detail.html", context)


@audit_log_reader
def audit_log_download(request: HttpRequest) -> HttpResponse:
    """The filtered entries as CSV or NDJSON, streamed; records one ``AuditLogDownload``.

    Row count: the entry is recorded *before* streaming (inside the request's transaction,
    with the request's actor), so the count comes from one ``COUNT`` over the same filtered
    queryset, bounded by a snapshot time taken first. The stream uses that same bound, so
    it returns exactly the counted rows (and never the download's own entry), barring an
    entry that commits later with an earlier timestamp. The ``COUNT`` is exact, not capped:
    it walks the same tenant-led index range the download itself then streams, so it costs
    a fraction of the download, and an audit record of a download must not guess its size.
    """
    fmt = request.GET.get("format", "csv")
    filterset = filterset_for(request)
    format_error = (
        None if fmt in downloads.FORMATS else f"Unknown format {fmt!r}: use csv or ndjson."
    )
    if format_error or not filterset.is_valid():
        return render(
            request,
            "auditlog/download_error.html",
            {
                **settings_menu(request, "audit_logs"),
                "form": filterset.form,
                "format_error": format_error,
                "back_url": f"{reverse('audit_logs')}?{filter_query(request)}",
            },
            status=400,
        )
    snapshot = timezone.now()
    queryset = filterset.qs.filter(created_at__lt=snapshot)
    row_count = queryset.count()
    record(
        operation_name="AuditLogDownload",
        tenant_id=request.user.tenant_id,
        inputs={"format": fmt, "filters": active_filters(filterset)},
        outputs={"row_count": row_count},
    )
    response = StreamingHttpResponse(
        downloads.stream(queryset, fmt), content_type=downloads.FORMATS[fmt]
    )
    response["Content-Disposition"] = f'attachment; filename="{downloads.filename(fmt, snapshot)}"'
    response["Cache-Control"] = "no-store"
    return response


# --- rendering helpers ----------------------------------------------------------------------


def _render_in_zone(
    request: HttpRequest, template: str, context: dict[str, Any], status: int = 200
) -> HttpResponse:
    zone = viewer_timezone(request)
    with timezone.override(zone):
        return render(
            request, template, {**context, "viewer_tz": getattr(zone, "key", "UTC")}, status=status
        )


def _mark_invalid(filterset: AuditLogEntryFilterSet) -> None:
    """Point assistive technology at each invalid field's error message."""
    for name in filterset.form.errors:
        if name in filterset.form.fields:
            attrs = filterset.form.fields[name].widget.attrs
            attrs["aria-invalid"] = "true"
            attrs["aria-describedby"] = " ".join(
                filter(None, [attrs.get("aria-describedby"), f"id_{name}_error"])
            )


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


def _shown(value: Any) -> str:
    if value is None:
        return "—"
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _ids_in(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _named(value: Any, target_type: str | None, known: dict[tuple[str, str], str]) -> str:
    """A value of a related field, with the names of the ids it holds: ``Ops (#1)``."""
    if target_type is None or value is None:
        return _shown(value)
    shown = []
    for item in _ids_in(value):
        label = known.get((target_type, str(item)))
        shown.append(f"{label} (#{item})" if label else _shown(item))
    return ", ".join(shown) if isinstance(value, list) else shown[0]


def _diff_rows(entry: AuditLogEntry, known: dict[tuple[str, str], str]) -> list[dict[str, str]]:
    """``{field: [before, after]}`` as rows for a before/after table, ids named."""
    rows = []
    for field, pair in sorted((entry.changes or {}).items()):
        before, after = pair if isinstance(pair, list) and len(pair) == 2 else (None, pair)
        related = names.field_target_type(entry.target_type, field)
        rows.append(
            {
                "field": field,
                "before": _named(before, related, known),
                "after": _named(after, related, known),
            }
        )
    return rows


def _input_references(
    entry: AuditLogEntry, known: dict[tuple[str, str], str]
) -> list[dict[str, str]]:
    """The inputs that point at other objects, with those objects' names."""
    rows = []
    for field, value in sorted(names.field_inputs(entry).items()):
        related = names.field_target_type(entry.target_type, field)
        if related and value not in (None, []):
            rows.append({"field": field, "value": _named(value, related, known)})
    return rows
