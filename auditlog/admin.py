"""The admin console's read-only view of the audit log (registered by the hosting project).

It reads through the one selector and filters with the one FilterSet, so the changelist
takes the same query string as the tab, the API and the download.

Nothing here scans a tenant's whole log, which is what makes admin audit logs unusable at a
few million rows: the count is capped as the API's is (``COUNT_CAP``), there is no date
hierarchy (its year list is a ``DISTINCT`` over every entry; the "Time range" filter and
``after``/``before`` take its place), and the search box matches by prefix through
expression indexes led by the tenant (migration ``0006``), never ``LIKE '%…%'``.
"""

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.paginator import Paginator
from django.db import connections
from django.db.models import BooleanField, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.http import HttpRequest, HttpResponse, QueryDict
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import format_html

from .filters import RANGE_CHOICES, TEXT_LENGTH, AuditLogEntryFilterSet, operation_choices
from .models import AuditLogEntry
from .pagination import COUNT_CAP, capped_count
from .pgsettings import local_settings
from .selectors import audit_log_entries_for
from .views import viewer_timezone

# Sidebar filters of the changelist: parameters it knows, the FilterSet applies.
SIDEBAR = ("operation_name", "user_id", "range")
# FilterSet parameters the admin's own ChangeList must not see (it would take them for
# model lookups).
_FILTERSET_ONLY = {
    *AuditLogEntryFilterSet.base_filters,
    *(f"{name}[]" for name in AuditLogEntryFilterSet.base_filters),
} - set(SIDEBAR)
SEARCH_HELP = (
    "Finds entries whose user email or target name starts with what you type (any case, "
    "e.g. alice@ or Security Ops), or whose request id or target id is exactly it."
)


class _ShownByFilterSet(admin.SimpleListFilter):
    """A sidebar of choices whose filtering the FilterSet has already done."""

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        return queryset


class OperationFilter(_ShownByFilterSet):
    title = "operation"
    parameter_name = "operation_name"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(name, text) for _, ops in operation_choices() for name, text in ops]


class RangeFilter(_ShownByFilterSet):
    title = "time range"
    parameter_name = "range"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return RANGE_CHOICES


class UserFilter(_ShownByFilterSet):
    title = "user"
    parameter_name = "user_id"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        users = get_user_model()._default_manager.filter(tenant_id=request.user.tenant_id)
        return [(str(pk), email) for pk, email in users.values_list("pk", "email")]


class CappedPaginator(Paginator):
    """Pages whose count stops at ``COUNT_CAP``, as the API's does: never a full COUNT(*).

    ``known``: a count the search has already established, so it is not counted twice.
    """

    def __init__(self, *args: Any, known: tuple[int, bool] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.known = known

    @cached_property
    def count(self) -> int:
        counted, self.count_is_capped = self.known or capped_count(self.object_list)
        return counted


def _among(queryset: QuerySet, ids: list[int]) -> QuerySet:
    """``queryset`` narrowed to ``ids``; on PostgreSQL as one array parameter, because
    thousands of placeholders cost more to build and send than the query costs to run."""
    if connections[queryset.db].vendor != "postgresql":
        return queryset.filter(pk__in=ids)
    column = f'"{AuditLogEntry._meta.db_table}"."id"'
    # The SQL is constant; the ids travel as one bound parameter.
    among = RawSQL(f"{column} = ANY(%s)", (ids,), output_field=BooleanField())  # noqa: S611
    return queryset.filter(among)


class AuditLogEntryAdmin(admin.ModelAdmin):
    """Entries of the signed-in user's tenant; nothing can be added, changed or deleted."""

    list_display = ("time", "operation", "actor", "target", "ip_address")
    list_display_links = ("time",)
    list_filter = (RangeFilter, OperationFilter, UserFilter)
    # The search itself is ``get_search_results``; a field here shows the box.
    search_fields = ("user_email",)
    search_help_text = SEARCH_HELP
    ordering = ("-created_at", "-id")
    paginator = CappedPaginator
    show_full_result_count = False
    # Facet counts would COUNT(*) the whole log once per filter choice.
    show_facets = admin.ShowFacets.NEVER
    list_select_related = False

    class Media:
        css = {"all": ("css/admin_auditlog.css",)}

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        request.audit_log_filters = request.GET.copy()
        own = QueryDict(mutable=True)
        for name, values in request.GET.lists():
            if name not in _FILTERSET_ONLY:
                own.setlist(name, values)
        request.GET = own
        # Times in the zone of the Audit logs tab (the viewer's, else UTC), each with its zone.
        with timezone.override(viewer_timezone(request)):
            response = super().changelist_view(request, extra_context)
            if hasattr(response, "render"):
                response.render()
        return response

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        """The whole text as typed (not split into words): a prefix of a user's email or a
        target's name, any case, or an exact request id or target id.

        Each alternative is a range of an index led by the tenant (``UPPER(…) LIKE 'X%'``
        on ``text_pattern_ops`` expression indexes in PostgreSQL). Up to ``COUNT_CAP``
        matches are then listed by id: sorting them by time reads only them, whereas walking
        the time index in search of rare matches (the plan a ``LIMIT`` tempts PostgreSQL
        into) could read the tenant's whole log. More matches than that are common enough
        for the time index to meet the newest of them quickly.
        """
        term = search_term.strip()[:254]
        if not term or "\x00" in term:
            return queryset, False
        condition = Q(user_email__istartswith=term) | Q(target_repr__istartswith=term)
        if len(term) <= TEXT_LENGTH:
            condition |= Q(request_id=term) | Q(target_id=term)
        matches = queryset.filter(condition)
        with local_settings(matches.db, enable_seqscan="off"):
            found = list(matches.order_by().values_list("pk", flat=True)[: COUNT_CAP + 1])
        if len(found) <= COUNT_CAP:
            return _among(queryset, found), False
        request.audit_log_count = (COUNT_CAP, True)
        return matches, False

    def get_paginator(
        self, request: HttpRequest, queryset: QuerySet, per_page: int, *args: Any, **kwargs: Any
    ) -> CappedPaginator:
        return CappedPaginator(
            queryset, per_page, *args, known=getattr(request, "audit_log_count", None), **kwargs
        )

    @admin.display(description="time", ordering="-created_at")
    def time(self, entry: AuditLogEntry) -> str:
        local = timezone.localtime(entry.created_at)
        return format_html("{}<br>{}", f"{local:%Y-%m-%d}", f"{local:%H:%M:%S %Z}")

    @admin.display(description="operation")
    def operation(self, entry: AuditLogEntry) -> str:
        return format_html(
            '{}<br><code class="quiet">{}</code>', entry.description, entry.operation_name
        )

    @admin.display(description="by")
    def actor(self, entry: AuditLogEntry) -> str:
        if not entry.user_email:
            return entry.actor_type
        # An email may break before its @ rather than overflow the column.
        local, at, domain = entry.user_email.partition("@")
        email = format_html("{}<wbr>{}{}", local, at, domain)
        if entry.api_key_id:
            return format_html('{}<br><span class="quiet">key {}</span>', email, entry.api_key_name)
        return email

    @admin.display(description="IP address")
    def ip_address(self, entry: AuditLogEntry) -> str:
        return entry.request_ip or "—"

    @admin.display(description="target")
    def target(self, entry: AuditLogEntry) -> str:
        if not (entry.target_repr or entry.target_type):
            return "—"
        number = f" #{entry.target_id}" if entry.target_id else ""
        return format_html(
            '{}<br><span class="quiet">{}{}</span>',
            entry.target_repr or "—",
            entry.target_type,
            number,
        )

    def get_queryset(self, request: HttpRequest) -> QuerySet[AuditLogEntry]:
        entries = audit_log_entries_for(request.user)
        data = getattr(request, "audit_log_filters", None)
        if not data:
            return entries
        filterset = AuditLogEntryFilterSet(data, queryset=entries)
        if not filterset.is_valid():
            for field, errors in filterset.errors.items():
                messages.error(request, f"{field}: {' '.join(errors)}")
            return entries.none()
        return filterset.qs

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
