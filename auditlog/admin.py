"""The admin console's read-only view of the audit log (registered by the hosting project)."""

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from .models import AuditLogEntry
from .selectors import audit_log_entries_for


class AuditLogEntryAdmin(admin.ModelAdmin):
    """Entries of the signed-in user's tenant; nothing can be added, changed or deleted."""

    list_display = ("created_at", "operation_name", "user_email", "target_repr", "request_ip")
    list_filter = ("operation_name",)
    date_hierarchy = "created_at"
    ordering = ("-created_at", "-id")
    show_full_result_count = False
    # Facet counts would COUNT(*) the whole log once per filter choice.
    show_facets = admin.ShowFacets.NEVER
    list_select_related = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[AuditLogEntry]:
        return audit_log_entries_for(request.user)

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
