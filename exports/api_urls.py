"""Routes of the export settings API (``/api/v1/audit_logs/export_settings...``)."""

urlpatterns: list = []
