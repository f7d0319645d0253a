"""Top-level URLs."""

from django.urls import include, path

from tenants.admin import site as tenant_admin_site

urlpatterns = [
    path("admin/", tenant_admin_site.urls),
    path("api/v1/", include("tenants.api_urls")),
    path("", include("tenants.urls")),
]
