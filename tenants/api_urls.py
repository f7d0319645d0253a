"""Routes of the domain REST API (``/api/v1/...``)."""

from django.urls import path
from rest_framework.routers import DefaultRouter

from . import apis

router = DefaultRouter()
router.register("users", apis.UserViewSet, basename="user")
router.register("teams", apis.TeamViewSet, basename="team")
router.register("credentials", apis.CredentialViewSet, basename="credential")
router.register("resources", apis.ResourceViewSet, basename="resource")
router.register("stories", apis.StoryViewSet, basename="story")
router.register("pages", apis.PageViewSet, basename="page")
router.register("api_keys", apis.ApiKeyViewSet, basename="api-key")

urlpatterns = [
    path("tenant/", apis.TenantApi.as_view(), name="tenant"),
    *router.urls,
]
