"""The audit log API, wire-compatible with the public Tines audit-log API.

Every endpoint reads through ``audit_log_entries_for`` (an entry of another tenant is never
in the queryset: 404), filters with ``AuditLogEntryFilterSet``, writes with
``entry_to_json``, and answers errors as ``{"errors": [{"message", "details"}]}``.
Reading the log is not itself recorded (that would flood it).
"""

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from .context import ACTOR_TYPES
from .exceptions import InvalidParameters, exception_handler
from .filters import AuditLogEntryFilterSet
from .operations import OPERATIONS, TARGET_TYPES
from .pagination import (
    COUNT_CAP,
    DEFAULT_PER_PAGE,
    MAX_ENTRY_ID,
    MAX_PAGE,
    MAX_PER_PAGE,
    meta_for,
    paginate,
    parse_page_request,
)
from .permissions import CanReadAuditLog
from .selectors import audit_log_entries_for
from .serializers import ENTRY_COLUMNS, entry_to_json
from .throttling import AuditLogApiThrottle

COUNT_DOCS = (
    f"`count` is exact up to {COUNT_CAP:,} entries; above that it reports {COUNT_CAP:,} and "
    f"`count_is_capped` is true (an exact count over a large log would dominate the request), "
    f"and `pages` is then a lower bound. Follow `next_page` (or `next_cursor`) until it is null "
    f"rather than counting pages."
)


@extend_schema_field(
    {
        "anyOf": [{"type": "string", "format": "ipv4"}, {"type": "string", "format": "ipv6"}],
        "nullable": True,
        "description": "The client's IPv4 or IPv6 address (null when unknown).",
    }
)
class IpAddressField(serializers.CharField):
    """An entry's ``request_ip``: IPv4 or IPv6 (DRF's own field documents neither)."""


ENTRY_SCHEMA = inline_serializer(
    "AuditLogEntry",
    {
        "id": serializers.IntegerField(),
        "created_at": serializers.DateTimeField(help_text="RFC 3339, UTC, with Z"),
        "updated_at": serializers.DateTimeField(help_text="Always equal to created_at"),
        "operation_name": serializers.CharField(help_text="A name of the operation catalog"),
        "inputs": serializers.JSONField(allow_null=True, help_text="What was asked, redacted"),
        "outputs": serializers.JSONField(),
        "request_ip": IpAddressField(allow_null=True),
        "request_user_agent": serializers.CharField(),
        "tenant_id": serializers.IntegerField(),
        "user_id": serializers.IntegerField(allow_null=True),
        "user_email": serializers.CharField(),
        "user_name": serializers.CharField(),
        "story_id": serializers.IntegerField(allow_null=True),
        "target": inline_serializer(
            "AuditLogTarget",
            {
                "type": serializers.CharField(),
                "id": serializers.CharField(help_text="The target's id, as a string"),
                "name": serializers.CharField(),
            },
        ),
        "changes": serializers.DictField(help_text="{field: [before, after]}, redacted"),
        "request_id": serializers.CharField(help_text="The server's id of the request"),
        "client_request_id": serializers.CharField(
            allow_null=True, help_text="The X-Request-ID the client sent, or null"
        ),
        "actor_type": serializers.ChoiceField(choices=ACTOR_TYPES),
        "api_key": inline_serializer(
            "AuditLogApiKey",
            {"id": serializers.IntegerField(), "name": serializers.CharField()},
            allow_null=True,
            help_text="The API key the actor used, or null",
        ),
    },
)

META_SCHEMA = inline_serializer(
    "AuditLogListMeta",
    {
        "current_page": serializers.URLField(),
        "previous_page": serializers.URLField(allow_null=True),
        "next_page": serializers.URLField(allow_null=True),
        "next_page_number": serializers.IntegerField(allow_null=True),
        "per_page": serializers.IntegerField(),
        "pages": serializers.IntegerField(),
        "count": serializers.IntegerField(help_text=COUNT_DOCS),
        "count_is_capped": serializers.BooleanField(),
        "next_cursor": serializers.CharField(allow_null=True),
    },
)

ERRORS_SCHEMA = inline_serializer(
    "Errors",
    {
        "errors": inline_serializer(
            "Error",
            {
                "message": serializers.CharField(),
                "details": serializers.CharField(),
                "parameter": serializers.CharField(required=False),
            },
            many=True,
        )
    },
)
ERROR_RESPONSES = {400: ERRORS_SCHEMA, 401: ERRORS_SCHEMA, 403: ERRORS_SCHEMA, 429: ERRORS_SCHEMA}

# An empty value is what the tab's form sends for a field left blank: it means "absent"
# for every parameter but ``user_id`` (not a number: 400) and ``operation_name`` (no match).
EMPTY = {"type": "string", "maxLength": 0}
EMPTY_MEANS_ABSENT = " Empty means absent."
ABSENT_WHEN_EMPTY = frozenset(
    {
        *("before", "after", "range", "target_type", "target_id", "request_ip", "request_id"),
        *("per_page", "page", "cursor"),
    }
)


def blank_or(*schemas: dict[str, Any]) -> dict[str, Any]:
    """A parameter schema that also admits the empty value."""
    return {"oneOf": [*schemas, EMPTY]}


TIMESTAMP = {"type": "string", "format": "date-time"}
ACTORS_DOCS = (
    ". `user_id`, `api_key_id` and `actor_type` given together match an entry by any of them."
)
LIST_PARAMETERS = [
    OpenApiParameter(
        "before",
        blank_or(TIMESTAMP),
        description="Entries created strictly before (RFC 3339; without an offset, UTC)."
        + EMPTY_MEANS_ABSENT,
    ),
    OpenApiParameter(
        "after",
        blank_or(TIMESTAMP),
        description="Entries created strictly after (RFC 3339; without an offset, UTC). "
        "Must be earlier than `before`; not with `range`." + EMPTY_MEANS_ABSENT,
    ),
    OpenApiParameter(
        "user_id",
        OpenApiTypes.INT,
        many=True,
        description="One or more user ids: `user_id=1`, `user_id=1&user_id=2` or `user_id[]=1`"
        + ACTORS_DOCS,
    ),
    OpenApiParameter(
        "api_key_id",
        OpenApiTypes.INT,
        many=True,
        description="Entries made with one or more API keys (also `api_key_id[]=...`)"
        + ACTORS_DOCS,
    ),
    OpenApiParameter(
        "actor_type",
        OpenApiTypes.STR,
        many=True,
        enum=list(ACTOR_TYPES),
        description="Entries by one or more kinds of actor (also `actor_type[]=...`)" + ACTORS_DOCS,
    ),
    OpenApiParameter(
        "operation_name",
        OpenApiTypes.STR,
        many=True,
        enum=sorted(OPERATIONS),
        description="One or more operation names (case-sensitive; unknown names match nothing); "
        "also `operation_name[]=...`",
    ),
    OpenApiParameter(
        "target_type",
        {"type": "string", "maxLength": 64},
        description="A target type, in any case: " + ", ".join(f"`{t}`" for t in TARGET_TYPES),
    ),
    OpenApiParameter("target_id", {"type": "string", "maxLength": 64}),
    OpenApiParameter(
        "request_ip",
        blank_or({"type": "string", "format": "ipv4"}, {"type": "string", "format": "ipv6"}),
        description="An exact IPv4 or IPv6 address." + EMPTY_MEANS_ABSENT,
    ),
    OpenApiParameter("request_id", {"type": "string", "maxLength": 64}),
    OpenApiParameter(
        "range",
        blank_or({"type": "string", "enum": ["24h", "7d", "30d"]}),
        description="Entries of the last 24 hours, 7 or 30 days; not with `after` (each sets "
        "the start), but with a `before` later than the range's start." + EMPTY_MEANS_ABSENT,
    ),
    OpenApiParameter(
        "per_page",
        blank_or({"type": "integer", "minimum": 1}),
        description=f"Default {DEFAULT_PER_PAGE}; 1 to {MAX_PER_PAGE}, larger values are clamped."
        + EMPTY_MEANS_ABSENT,
    ),
    OpenApiParameter(
        "page",
        blank_or({"type": "integer", "minimum": 1, "maximum": MAX_PAGE}),
        description="Default 1." + EMPTY_MEANS_ABSENT,
    ),
    OpenApiParameter(
        "cursor",
        OpenApiTypes.STR,
        description="`meta.next_cursor` of the previous response: keyset paging for deep reads",
    ),
]


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    """Documents the API key scheme (named by path: ``auditlog`` does not import ``tenants``)."""

    target_class = "tenants.authentication.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "`Authorization: Bearer <key>`, or the key in `X-User-Token` "
            "(an `X-User-Email` header is accepted and ignored).",
        }


class AuditLogSchema(AutoSchema):
    """drf-spectacular's schema, with the operation id each view names."""

    def get_operation_id(self) -> str:
        return self.view.operation_id

    def get_operation(self, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        operation = super().get_operation(*args, **kwargs)
        # In OpenAPI 3.0 ``name=`` is refused unless the parameter allows it.
        for parameter in (operation or {}).get("parameters", []):
            if parameter["name"] in ABSENT_WHEN_EMPTY:
                parameter["allowEmptyValue"] = True
        return operation


class AuditLogApiView(APIView):
    """Shared policy: key or session auth, the read permission, the rate limit, our errors."""

    operation_id = ""
    permission_classes = [IsAuthenticated, CanReadAuditLog]
    throttle_classes = [AuditLogApiThrottle]
    schema = AuditLogSchema()

    def get_exception_handler(self) -> Any:
        return exception_handler


# Classes (not ``get``) are decorated: that keeps the view's drf-spectacular AutoSchema.
@extend_schema(
    summary="List audit log entries",
    description=(
        "Newest first (`created_at`, then `id`, descending). Wire-compatible with the "
        "Tines audit-log API. Page-number links are anchored at the first request (an "
        "implicit `before`), so paging never skips or repeats an entry. " + COUNT_DOCS
    ),
    parameters=LIST_PARAMETERS,
    responses={
        200: inline_serializer(
            "AuditLogList",
            {"audit_logs": ENTRY_SCHEMA.__class__(many=True), "meta": META_SCHEMA},
        ),
        **ERROR_RESPONSES,
    },
)
class AuditLogListApi(AuditLogApiView):
    """``GET /api/v1/audit_logs``: the tenant's entries, newest first, Tines-compatible.

    Paging: ``page``/``per_page`` as in Tines, served with ``OFFSET`` but anchored: without
    a ``before`` of the caller's, the listing is bounded by the instant of the request and
    ``next_page``/``previous_page`` carry that anchor as ``before``, so entries written while
    a client pages never shift or repeat a page. ``cursor`` (``meta.next_cursor``) pages by
    keyset, ``(created_at, id) < (c, i)`` on the ``(tenant, -created_at, -id)`` index, for
    reads of any depth at constant cost.

    Counting: ``count`` is ``COUNT(*)`` over a subquery limited to ``COUNT_CAP + 1`` rows, so
    it is exact up to ``COUNT_CAP`` (10,000) entries and otherwise reports the cap with
    ``count_is_capped: true``; whether a next page exists is read from the page itself
    (``per_page + 1`` rows are fetched), never from the count. Three queries in all
    (authentication aside): the count, the page, nothing per row.
    """

    operation_id = "audit_logs_list"

    def get(self, request: Request) -> Response:
        filterset = AuditLogEntryFilterSet(
            request.query_params, queryset=audit_log_entries_for(request.user)
        )
        if not filterset.is_valid():
            raise InvalidParameters(dict(filterset.errors))
        page_request = parse_page_request(request.query_params)
        page = paginate(filterset.qs, page_request, ENTRY_COLUMNS)
        filters = [(k, v) for k, values in request.query_params.lists() for v in values]
        return Response(
            {
                "audit_logs": [entry_to_json(row) for row in page.rows],
                "meta": meta_for(request, page_request, page, filters),
            }
        )


@extend_schema(
    summary="One audit log entry",
    parameters=[OpenApiParameter("entry_id", OpenApiTypes.INT, OpenApiParameter.PATH)],
    responses={200: ENTRY_SCHEMA, 404: ERRORS_SCHEMA, **ERROR_RESPONSES},
)
class AuditLogDetailApi(AuditLogApiView):
    """``GET /api/v1/audit_logs/<id>``: one entry; another tenant's id is a 404."""

    operation_id = "audit_logs_retrieve"

    def get(self, request: Request, entry_id: str) -> Response:
        try:
            number = int(entry_id)
        except ValueError:
            problem = f"id must be a whole number, got {entry_id!r}."
            raise InvalidParameters({"id": problem}) from None
        row = None
        if 0 < number <= MAX_ENTRY_ID:
            row = audit_log_entries_for(request.user).filter(pk=number).values(*ENTRY_COLUMNS)
            row = row.first()
        if row is None:
            raise NotFound("No audit log entry with that id.")
        return Response(entry_to_json(row))


@extend_schema(
    summary="The operation catalog",
    responses={
        200: inline_serializer(
            "OperationCatalog",
            {
                "operations": inline_serializer(
                    "Operation",
                    {
                        "name": serializers.CharField(),
                        "category": serializers.CharField(),
                        "description": serializers.CharField(),
                        "target_type": serializers.CharField(),
                    },
                    many=True,
                )
            },
        ),
        **ERROR_RESPONSES,
    },
)
class OperationListApi(AuditLogApiView):
    """``GET /api/v1/audit_logs/operations``: the operation catalog."""

    operation_id = "audit_logs_operations"

    def get(self, request: Request) -> Response:
        return Response(
            {
                "operations": [
                    {
                        "name": op.name,
                        "category": op.category,
                        "description": op.description,
                        "target_type": op.target_type,
                    }
                    for op in OPERATIONS.values()
                ]
            }
        )
