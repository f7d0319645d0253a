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

from . import downloads, retention
from .filters import AuditLogEntryFilterSet
from .models import AuditLogEntry
from .operations import OPERATIONS
from .pagination import InvalidCursor, decode_cursor, encode_cursor, newer_than, older_than
from .permissions import AUDIT_LOG_READ, can_read_audit_log
from .selectors import audit_log_entries_for
from .serializers import rfc3339
from .services import record

PAGE_SIZE = 50
EXPORT_SETTINGS_URL_NAME = "audit_log_export_settings"
# Query parameters that page through the list rather than filter it.
PAGING_PARAMS = ("cursor", "dir")
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
    """The FilterSet over the viewer's entries, bound to the query string."""
    filterset = AuditLogEntryFilterSet(request.GET, queryset=audit_log_entries_for(request.user))
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
    for name, (label, help_text) in FIELD_TEXT.items():
        fields[name].label = label
        fields[name].help_text = help_text
        if help_text:
            fields[name].widget.attrs["aria-describedby"] = f"id_{name}_help"
    for name in ("after", "before"):
        fields[name].widget.attrs["placeholder"] = "2024-01-31T09:00:00Z"
    return filterset


# Labels and hints of the filter form (the FilterSet's own labels are written for the API).
FIELD_TEXT = {
    "range": ("Time range", "A preset, or leave at “Any time” and use a custom range below."),
    "after": ("Custom range: after", "UTC unless an offset is given, e.g. 2024-01-31T09:00:00Z."),
    "before": ("Custom range: before", "UTC unless an offset is given (exclusive)."),
    "user_id": ("Users", "Select one or more (Ctrl/⌘ or Shift to select several)."),
    "operation_name": ("Operations", "Grouped by category; select one or more."),
    "target_type": ("Target type", "e.g. credential, story, team, user."),
    "target_id": ("Target id", ""),
    "request_ip": ("IP address", "An exact IPv4 or IPv6 address."),
    "request_id": ("Request id", "The X-Request-ID of one request."),
}


def active_filters(filterset: AuditLogEntryFilterSet) -> dict[str, Any]:
    """The filters a valid FilterSet applied, JSON-friendly (for links and the download entry)."""
    used: dict[str, Any] = {}
    for name, value in filterset.form.cleaned_data.items():
        if value in (None, "", []):
            continue
        used[name] = rfc3339(value) if isinstance(value, datetime) else value
    return used


def filter_query(request: HttpRequest, **extra: str) -> str:
    """The request's filter parameters (no paging), plus ``extra``, as a query string."""
    params = [(k, v) for k, v in request.GET.lists() if k not in PAGING_PARAMS]
    pairs = [(k, item) for k, values in params for item in values if item != ""]
    pairs.extend(extra.items())
    return urlencode(pairs)


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
    """The Audit logs tab: filters, a keyset-paged table newest first, download links."""
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
    queryset = filterset.qs.defer(*LIST_DEFERRED)
    page = keyset_page(queryset, cursor, newer=request.GET.get("dir") == "newer")
    for entry in page.entries:
        entry.iso_utc = rfc3339(entry.created_at)
        entry.operation = OPERATIONS.get(entry.operation_name)
    filters = active_filters(filterset)
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
    context = {
        **settings_menu(request, "audit_logs"),
        "entry": entry,
        "inputs_json": _pretty(entry.inputs),
        "outputs_json": _pretty(entry.outputs),
        "diff": _diff_rows(entry.changes),
        "back_url": reverse("audit_logs"),
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


def _diff_rows(changes: Any) -> list[dict[str, str]]:
    """``{field: [before, after]}`` as rows for a before/after table."""
    rows = []
    for field, pair in sorted((changes or {}).items()):
        before, after = pair if isinstance(pair, list) and len(pair) == 2 else (None, pair)
        rows.append({"field": field, "before": _shown(before), "after": _shown(after)})
    return rows
