"""Every page and API answer of the product is private to a tenant: none may be cached."""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils.cache import patch_cache_control


class NoStoreMiddleware:
    """``Cache-Control: no-store`` on every response that does not set its own.

    A default rather than a decorator per view, so a new audit page or settings endpoint
    cannot forget it. Static files never reach it: whitenoise answers them earlier, with
    its own far-future header.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if not response.has_header("Cache-Control"):
            patch_cache_control(response, no_store=True)
        return response
