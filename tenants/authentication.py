"""API key authentication: ``Authorization: Bearer <key>`` or ``X-User-Token: <key>``."""

from typing import Any

from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from . import services
from .models import ApiKey

BEARER = "bearer"


def raw_key_from(request: Request) -> str | None:
    """The key a request presents, if any; ``X-User-Email`` is accepted and ignored."""
    header = get_authorization_header(request).decode("latin-1").split()
    if header and header[0].lower() == BEARER:
        if len(header) != 2:
            raise AuthenticationFailed("Invalid bearer header: give exactly one key.")
        return header[1]
    token = request.META.get("HTTP_X_USER_TOKEN", "").strip()
    return token or None


class ApiKeyAuthentication(BaseAuthentication):
    """Authenticates a request by one of the tenant's API keys; ``request.auth`` is the key."""

    def authenticate(self, request: Request) -> tuple[Any, ApiKey] | None:
        raw = raw_key_from(request)
        if raw is None:
            return None
        api_key = (
            ApiKey.objects.select_related("user", "user__tenant")
            .filter(key_hash=ApiKey.hash_key(raw))
            .first()
        )
        if api_key is None or not api_key.user.is_active:
            raise AuthenticationFailed("Invalid API key.")
        # The key's use is recorded right away, before DRF binds the user: the audit
        # context reads the actor from the underlying request when the entry is written.
        request._request.user = api_key.user
        request._request.auth = api_key
        services.api_key_mark_used(api_key=api_key)
        return api_key.user, api_key

    def authenticate_header(self, request: Request) -> str:
        return "Bearer"
