"""Routes of the audit log API (``/api/v1/audit_logs...``).

``export_settings`` routes (exports.api_urls) are included before these, so the detail
route below never sees them.
"""

from django.urls import re_path

from . import apis

urlpatterns = [
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
