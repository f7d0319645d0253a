"""Routes of the export settings API (``/api/v1/audit_logs/export_settings...``).

Included before the audit log API, which owns the rest of ``/api/v1/audit_logs``.
"""

from django.urls import re_path

from . import apis

urlpatterns = [
    re_path(
        r"^audit_logs/export_settings/?$",
        apis.ExportSettingsApi.as_view(),
        name="audit_log_export_settings_api",
    ),
    re_path(
        r"^audit_logs/export_settings/test/?$",
        apis.ExportConnectionTestApi.as_view(),
        name="audit_log_export_settings_test_api",
    ),
    re_path(
        r"^audit_logs/export_settings/regenerate_external_id/?$",
        apis.ExportRegenerateExternalIdApi.as_view(),
        name="audit_log_export_regenerate_external_id_api",
    ),
    re_path(
        r"^audit_logs/export_public_key/?$",
        apis.ExportPublicKeyApi.as_view(),
        name="audit_log_export_public_key_api",
    ),
]
