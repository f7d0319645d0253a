"""Routes of the export settings page (``/settings/audit-logs/export/``)."""

from django.urls import path

from . import views

urlpatterns = [
    path("audit-logs/export/", views.export_settings, name="audit_log_export_settings"),
]
