"""Routes of the Settings pages and the Audit logs tab (``/settings/...``)."""

from django.urls import path

from . import views

urlpatterns = [
    path("", views.settings_index, name="settings"),
    path("audit-logs/", views.audit_log_list, name="audit_logs"),
    path("audit-logs/download", views.audit_log_download, name="audit_log_download"),
    path("audit-logs/<int:pk>/", views.audit_log_detail, name="audit_log_detail"),
]
