"""Binds the request's audit context for the view and echoes the request id."""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from .context import request_context


class AuditContextMiddleware:
    """Sets the audit context of each request and answers with its ``X-Request-ID``."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with request_context(request) as ctx:
            request.audit_request_id = ctx.request_id
            response = self.get_response(request)
        response["X-Request-ID"] = ctx.request_id
        return response
