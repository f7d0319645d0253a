"""Read-only views of the export bookkeeping in Django's default admin (staff only)."""

from django.contrib import admin

from .models import ExportBatch, ExportManifest, ExportState


class ReadOnlyAdmin(admin.ModelAdmin):
    """Export rows are written by the exporter only."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ExportState)
class ExportStateAdmin(ReadOnlyAdmin):
    list_display = ("tenant", "cutoff", "last_success_at", "last_attempt_at", "last_error")


@admin.register(ExportBatch)
class ExportBatchAdmin(ReadOnlyAdmin):
    list_display = ("tenant", "seq", "count", "first_id", "last_id", "delivered_at", "key")


@admin.register(ExportManifest)
class ExportManifestAdmin(ReadOnlyAdmin):
    list_display = ("tenant", "seq", "first_batch_seq", "last_batch_seq", "cutoff", "delivered_at")
    exclude = ("body",)
