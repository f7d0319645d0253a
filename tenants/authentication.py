"""API key authentication (placeholder, filled in by the domain API work)."""

from rest_framework.authentication import BaseAuthentication


class ApiKeyAuthentication(BaseAuthentication):
    """Authenticates ``Authorization: Bearer <key>`` and ``X-User-Token: <key>``."""

    def authenticate(self, request):
        return None
