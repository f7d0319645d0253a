"""Content-Security-Policy on every response: our own origin only, inline code only by nonce.

The pages load no third-party script, style or font, so the policy is ``'self'``; the few
inline blocks that must stay inline (Swagger UI's initialisation) carry the request's nonce.
A page an attacker manages to inject markup into can then neither run script nor send data
elsewhere.

Django 5.2 has no CSP of its own; Django 6.0 does, and this module follows its shape (the
``SECURE_CSP`` setting, a ``NONCE`` placeholder, ``request.csp_nonce`` and a ``csp`` context
processor giving templates ``csp_nonce``), so moving to it means deleting this module and
naming Django's middleware and context processor instead.
"""

import secrets
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse

SELF = "'self'"
NONE = "'none'"
NONCE = "<CSP_NONCE_SENTINEL>"
HEADER = "Content-Security-Policy"
# With DEBUG on, these are Django's own error pages, which are inline styles and scripts.
DEBUG_PAGE_STATUSES = (404, 500)


def policy(directives: dict[str, list[str]], nonce: str) -> str:
    """The header value of ``directives``, with ``NONCE`` standing for this response's nonce."""
    return "; ".join(
        " ".join([name, *(f"'nonce-{nonce}'" if s == NONCE else s for s in sources)])
        for name, sources in directives.items()
    )


class ContentSecurityPolicyMiddleware:
    """Gives each request a fresh nonce and each response the ``SECURE_CSP`` policy."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.csp_nonce = secrets.token_urlsafe(16)
        response = self.get_response(request)
        if settings.DEBUG and response.status_code in DEBUG_PAGE_STATUSES:
            return response
        if settings.SECURE_CSP and HEADER not in response:
            response[HEADER] = policy(settings.SECURE_CSP, request.csp_nonce)
        return response


def csp(request: HttpRequest) -> dict[str, Any]:
    """Template context: ``csp_nonce``, for ``<script nonce="{{ csp_nonce }}">``."""
    return {"csp_nonce": getattr(request, "csp_nonce", "")}
