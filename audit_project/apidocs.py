"""The view serving the OpenAPI schema (``/api/v1/schema``); who may read it is
``openapi.SchemaAccess`` (``API_SCHEMA_PUBLIC``).

Apart from openapi.py because drf-spectacular's views module imports the settings that name
openapi.py's classes: importing the views from there would be circular.
"""

from drf_spectacular.views import SpectacularAPIView
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response


class SchemaView(SpectacularAPIView):
    """The schema; a refusal (``API_SCHEMA_PUBLIC=false``) is JSON like any API's error."""

    def handle_exception(self, exc: Exception) -> Response:
        response = super().handle_exception(exc)
        # Negotiation chose an OpenAPI renderer (YAML unless ?format=json) for the schema
        # itself; an error body rendered by it would be YAML under an OpenAPI media type.
        self.request.accepted_renderer = JSONRenderer()
        self.request.accepted_media_type = JSONRenderer.media_type
        return response
