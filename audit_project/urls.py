"""Top-level URLs."""

from django.urls import include, path

urlpatterns = [
    path("", include("tenants.urls")),
]
