"""Top-level URLs."""

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import include, path, re_path
from django.views.defaults import page_not_found
from drf_spectacular.views import SpectacularSwaggerView

from audit_project.apidocs import SchemaView
from tenants.admin import site as tenant_admin_site

urlpatterns = [
    path("admin/", tenant_admin_site.urls),
    # Export routes first: they live under /api/v1/audit_logs/ too.
    path("api/v1/", include("exports.api_urls")),
    path("api/v1/", include("auditlog.api_urls")),
    path("api/v1/", include("tenants.api_urls")),
    # One OpenAPI schema of every API above (audit_project/openapi.py), and its docs.
    re_path(r"^api/v1/schema/?$", SchemaView.as_view(), name="audit-api-schema"),
    re_path(
        r"^api/v1/docs/?$",
        SpectacularSwaggerView.as_view(
            url_name="audit-api-schema", template_name="auditlog/swagger_ui.html"
        ),
        name="audit-api-docs",
    ),
    path("settings/", include("exports.urls")),
    path("settings/", include("auditlog.urls")),
    path("", include("tenants.urls")),
]


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """An unknown URL under ``/api/`` is a JSON 404, as every other answer of the APIs is
    (``/api/v1/teams/1.5/`` matches no route); elsewhere, the product's page (404.html)."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    return page_not_found(request, exception)


handler404 = not_found
