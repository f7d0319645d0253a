"""Routes of the audit log API (``/api/v1/audit_logs...``), its schema and its docs.

``export_settings`` routes (exports.api_urls) are included before these, so the detail
route below never sees them.
"""

from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from . import apis

audit_log_patterns = [
    re_path(r"^audit_logs/?$", apis.AuditLogListApi.as_view(), name="audit-log-list"),
    re_path(
        r"^audit_logs/operations/?$",
        apis.OperationListApi.as_view(),
        name="audit-log-operations",
    ),
    re_path(
        r"^audit_logs/(?P<entry_id>[^/]+)/?$",
        apis.AuditLogDetailApi.as_view(),
        name="audit-log-detail",
    ),
]

# The same endpoints as documented: canonical paths, without the optional trailing slash.
documented_patterns = [
    path("api/v1/audit_logs", apis.AuditLogListApi.as_view()),
    path("api/v1/audit_logs/operations", apis.OperationListApi.as_view()),
    path("api/v1/audit_logs/<int:entry_id>", apis.AuditLogDetailApi.as_view()),
]

urlpatterns = [
    *audit_log_patterns,
    re_path(
        r"^schema/?$",
        SpectacularAPIView.as_view(urlconf=documented_patterns),
        name="audit-api-schema",
    ),
    re_path(
        r"^docs/?$",
        SpectacularSwaggerView.as_view(
            url_name="audit-api-schema", template_name="auditlog/swagger_ui.html"
        ),
        name="audit-api-docs",
    ),
]
