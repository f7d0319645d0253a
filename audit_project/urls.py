"""Top-level URLs."""

from django.urls import include, path

from tenants.admin import site as tenant_admin_site

urlpatterns = [
    path("admin/", tenant_admin_site.urls),
    # Export routes first: they live under /api/v1/audit_logs/ too.
    path("api/v1/", include("exports.api_urls")),
    path("api/v1/", include("auditlog.api_urls")),
    path("api/v1/", include("tenants.api_urls")),
    path("settings/", include("exports.urls")),
    path("settings/", include("auditlog.urls")),
    path("", include("tenants.urls")),
]
