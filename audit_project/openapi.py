"""The OpenAPI schema of every API (``/api/v1/schema``): what drf-spectacular cannot infer.

One schema documents the audit log API, its export settings and the domain API. Three
things are added here, for every endpoint at once, so that no view can forget them:

- **Errors as they are answered.** The audit log API documents its own
  ``{"errors": [...]}`` bodies (``auditlog.apis``). Every other endpoint answers errors the
  DRF way (``tenants.apis.exception_handler``): ``{field: [messages]}`` for invalid input,
  ``{"detail": "..."}`` otherwise, except a body over the upload limit, which is a 413 with
  ``{"errors": [...]}`` on every path. ``ApiSchema`` adds to each operation the statuses it
  can answer: 401, 403 and 429 always; 400 and 413 on every unsafe method (a service may
  refuse it; the session's CSRF check reads a form body), 415 where it takes a body; 404
  where a path names an object, and on paginated lists (a page past the last one).
- **Ids are integers.** Routers match any ``{id}`` segment (a non-number is a JSON 404, not
  an HTML one), so the type comes from here rather than from the route.
- **Error headers.** Every 401 carries ``WWW-Authenticate`` and every 429 ``Retry-After``,
  in every API (the audit log's own responses included).
- **Canonical paths.** A route with an optional trailing slash (``audit_logs/?``) is
  documented without it, as the Tines API spells its paths.
"""

import re
from typing import Any

from django.conf import settings
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, inline_serializer
from rest_framework import permissions, serializers

from auditlog.apis import ERRORS_SCHEMA

# Ids count from 1 (a route like ``members/(?P<user_id>\d+)`` matches no sign).
ID = {"type": "integer", "minimum": 1}
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

DETAIL_SCHEMA = inline_serializer("Detail", {"detail": serializers.CharField()})


VALIDATION_ERRORS = {
    "type": "object",
    "description": "Each invalid field with its messages (`non_field_errors`: the body as a "
    'whole); a list or nested object names the failing item (`{"0": [...]}`).',
    "additionalProperties": {
        "anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "object"}]
    },
    "example": {"name": ["This field is required."]},
}

ERROR_DESCRIPTIONS = {
    400: 'Invalid input: `{field: [messages]}` naming each field, or `{"detail": ...}` for '
    "a body that is not JSON (or nests more than 32 levels).",
    401: "No credentials, or an API key that is unknown, revoked or belongs to an inactive user.",
    403: "The caller's tenant role, team role or key does not allow this (or, signed in with "
    "a session, the CSRF token is missing).",
    404: "No such object in the caller's tenant: another tenant's id is a 404 too.",
    413: "The body is larger than the upload limit (`DATA_UPLOAD_MAX_MEMORY_SIZE`).",
    415: "The body's Content-Type is not accepted (send `application/json`).",
    429: "Over the rate limit (`DOMAIN_API_RATE`, per key and client address).",
}
LIST_404 = "A page number that is not a page of the list (`page` counts from 1)."

# Headers DRF sends with every 401 and 429, whichever API answers.
ERROR_HEADERS = {
    "401": {
        "WWW-Authenticate": {
            "schema": {"type": "string"},
            "required": True,
            "description": "`Bearer`: how to authenticate.",
        }
    },
    "429": {
        "Retry-After": {
            "schema": {"type": "integer"},
            "required": True,
            "description": "Seconds until the rate limit's window ends.",
        }
    },
}


def canonical_paths(endpoints: list[tuple]) -> list[tuple]:
    """Preprocessing hook: a route ending in an optional slash is documented without it."""
    return [
        (path.rstrip("/") if regex.endswith("/?$") else path, regex, method, callback)
        for path, regex, method, callback in endpoints
    ]


def error_headers(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Postprocessing hook: every API's 401 and 429 say which header comes with them."""
    for operations in result["paths"].values():
        for operation in operations.values():
            for code, headers in ERROR_HEADERS.items():
                if code in operation.get("responses", {}):
                    operation["responses"][code]["headers"] = headers
    return result


def id_description(name: str) -> str:
    """``id`` → "The object's id.", ``user_id`` → "The user's id."."""
    thing = name.removesuffix("_id").replace("_", " ") if name != "id" else "object"
    return f"The {thing}'s id (in the caller's tenant)."


class ApiSchema(AutoSchema):
    """drf-spectacular's schema, with integer ids and the error responses of the API."""

    def get_override_parameters(self) -> list:
        declared = super().get_override_parameters()
        named = {p.name for p in declared if isinstance(p, OpenApiParameter)}
        return [
            *declared,
            *(
                OpenApiParameter(name, ID, OpenApiParameter.PATH, description=id_description(name))
                for name in re.findall(r"{(\w+)}", self.path)
                if name not in named
            ),
        ]

    def error_statuses(self) -> dict[int, str]:
        """The error statuses this operation can answer, with what each one means."""
        codes = {401, 403, 429}
        if self.method in UNSAFE_METHODS:
            codes |= {400, 413}
            if self.get_request_serializer() is not None:
                codes.add(415)
        descriptions = {code: ERROR_DESCRIPTIONS[code] for code in sorted(codes)}
        if "{" in self.path:
            descriptions[404] = ERROR_DESCRIPTIONS[404]
        elif self.method == "GET" and self._is_list_view() and self.view.paginator:
            descriptions[404] = LIST_404
        return dict(sorted(descriptions.items()))

    def error_body(self, code: int) -> Any:
        if code == 413:
            return ERRORS_SCHEMA
        if code == 400:
            detail = self.resolve_serializer(DETAIL_SCHEMA, "response").ref
            return {"anyOf": [VALIDATION_ERRORS, detail]}
        return DETAIL_SCHEMA

    def _get_response_bodies(self, direction: str = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        for code, description in self.error_statuses().items():
            if str(code) in responses:
                continue
            response = OpenApiResponse(self.error_body(code), description=description)
            responses[str(code)] = self._get_response_for_code(
                response, str(code), direction=direction
            )
        return responses


class SchemaAccess(permissions.BasePermission):
    """The schema and its docs: anyone while ``API_SCHEMA_PUBLIC``, else a signed-in user or key."""

    def has_permission(self, request, view) -> bool:
        return settings.API_SCHEMA_PUBLIC or bool(request.user and request.user.is_authenticated)
