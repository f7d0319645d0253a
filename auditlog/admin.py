"""The admin console's read-only view of the audit log (registered by the hosting project).

It reads through the one selector and filters with the one FilterSet, so the changelist
takes the same query string as the tab, the API and the download.
"""

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, QueryDict

from .filters import AuditLogEntryFilterSet, operation_choices
from .models import AuditLogEntry
from .selectors import audit_log_entries_for

# FilterSet parameters the admin's own ChangeList must not see (it would take them for
# model lookups). ``operation_name`` and ``user_id`` stay: the sidebar filters below show them.
_FILTERSET_ONLY = {
    *AuditLogEntryFilterSet.base_filters,
    "user_id[]",
    "operation_name[]",
} - {"operation_name", "user_id"}


class _ShownByFilterSet(admin.SimpleListFilter):
    """A sidebar of choices whose filtering the FilterSet has already done."""

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        return queryset


class OperationFilter(_ShownByFilterSet):
    title = "operation"
    parameter_name = "operation_name"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(name, name) for _, ops in operation_choices() for name, _ in ops]


class UserFilter(_ShownByFilterSet):
    title = "user"
    parameter_name = "user_id"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        users = get_user_model()._default_manager.filter(tenant_id=request.user.tenant_id)
        return [(str(pk), email) for pk, email in users.values_list("pk", "email")]


class AuditLogEntryAdmin(admin.ModelAdmin):
    """Entries of the signed-in user's tenant; nothing can be added, changed or deleted."""

    list_display = ("created_at", "operation_name", "user_email", "target_repr", "request_ip")
    list_filter = (OperationFilter, UserFilter)
    date_hierarchy = "created_at"
    # Exact matches only, each served by an index led by the tenant.
    search_fields = ("=request_id", "=target_id")
    ordering = ("-created_at", "-id")
    show_full_result_count = False
    # Facet counts would COUNT(*) the whole log once per filter choice.
    show_facets = admin.ShowFacets.NEVER
    list_select_related = False

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        request.audit_log_filters = request.GET.copy()
        own = QueryDict(mutable=True)
        for name, values in request.GET.lists():
            if name not in _FILTERSET_ONLY:
                own.setlist(name, values)
        request.GET = own
        return super().changelist_view(request, extra_context)

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
