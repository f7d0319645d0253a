"""Errors of the audit log API, all answered as ``{"errors": [{"message", "details"}]}``."""

from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

MESSAGES = {
    status.HTTP_401_UNAUTHORIZED: "Unauthorized",
    status.HTTP_403_FORBIDDEN: "Forbidden",
    status.HTTP_404_NOT_FOUND: "Not found",
    status.HTTP_405_METHOD_NOT_ALLOWED: "Method not allowed",
    status.HTTP_406_NOT_ACCEPTABLE: "Not acceptable",
    status.HTTP_413_REQUEST_ENTITY_TOO_LARGE: "Request body too large",
    status.HTTP_429_TOO_MANY_REQUESTS: "Too many requests",
}


class InvalidParameters(exceptions.APIException):
    """One or more query parameters are malformed: ``{parameter: details}``."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "invalid_parameters"

    def __init__(self, problems: dict[str, Any]) -> None:
        self.problems = problems
        super().__init__(detail="Invalid parameters.")


class RequestBodyTooLarge(exceptions.APIException):
    """A body over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (Django's own answer is an HTML 400)."""

    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "request_body_too_large"

    def __init__(self) -> None:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        super().__init__(detail=f"A request body may be at most {limit:,} bytes.")


def _text(detail: Any) -> str:
    if isinstance(detail, list | tuple):
        return " ".join(_text(d) for d in detail)
    if isinstance(detail, dict):
        return " ".join(f"{k}: {_text(v)}" for k, v in detail.items())
    return str(detail)


def errors_body(exc: exceptions.APIException) -> dict[str, list[dict[str, Any]]]:
    """The error body for an API exception."""
    if isinstance(exc, InvalidParameters):
        return {
            "errors": [
                {
                    "message": f"Invalid parameter: {name}",
                    "details": _text(details),
                    "parameter": name,
                }
                for name, details in exc.problems.items()
            ]
        }
    message = MESSAGES.get(exc.status_code, "Bad request")
    return {"errors": [{"message": message, "details": _text(exc.detail)}]}


def exception_handler(exc: Exception, context: dict) -> Response | None:
    """DRF's handling (status, ``WWW-Authenticate``, ``Retry-After``) with our error body."""
    if isinstance(exc, Http404):
        exc = exceptions.NotFound("No audit log entry with that id.")
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, RequestDataTooBig):
        exc = RequestBodyTooLarge()
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(exc, exceptions.APIException):
        response.data = errors_body(exc)
    return response
