"""Routes of the audit log API (``/api/v1/audit_logs...``)."""

urlpatterns: list = []
