"""``/api/v1/audit_logs/export_settings`` and friends (tenant owners only).

Errors are DRF's (``{field: [messages]}``, ``{"detail": ...}``), documented for every view by
the project's schema class; the annotations here name the bodies.
"""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from . import aws, manifests
from .connection import export_connection_test
from .permissions import IsExportConfigurator
from .serializers import ExportSettingsSerializer
from .settings import (
    export_settings_ensure,
    export_settings_regenerate_external_id,
    export_settings_update,
)

TAGS = ["export_settings"]

CONNECTION_TEST_SCHEMA = inline_serializer(
    "ExportConnectionTest",
    {
        "ok": serializers.BooleanField(),
        "message": serializers.CharField(help_text="Success, or the failing step in words."),
        "steps": inline_serializer(
            "ExportConnectionTestStep",
            {
                "step": serializers.ChoiceField(choices=list(aws.STEP_WORDS)),
                "description": serializers.CharField(),
                "ok": serializers.BooleanField(),
                "code": serializers.CharField(allow_null=True, help_text="AWS's error code."),
                "message": serializers.CharField(),
            },
            many=True,
        ),
    },
)

PUBLIC_KEY_SCHEMA = inline_serializer(
    "ExportPublicKey",
    {
        "algorithm": serializers.CharField(),
        "public_key": serializers.CharField(help_text="Base64 of the raw 32-byte key."),
        "public_key_pem": serializers.CharField(),
    },
)


class ExportSettingsApi(APIView):
    """GET the settings and status; PUT changes (a 400 names each bad field)."""

    permission_classes = [IsExportConfigurator]

    @extend_schema(
        tags=TAGS, summary="The export settings and status", responses=ExportSettingsSerializer
    )
    def get(self, request: Request) -> Response:
        config = export_settings_ensure(tenant_id=request.user.tenant_id)
        return Response(ExportSettingsSerializer(config).data)

    @extend_schema(
        tags=TAGS,
        summary="Change the export settings (PUT and PATCH alike)",
        description="Send only what changes; enabling (or changing the role while enabled) "
        "is refused unless STS refuses the role without the External ID. Static AWS keys are "
        "refused: give a role to assume.",
        request=ExportSettingsSerializer,
        responses=ExportSettingsSerializer,
    )
    def put(self, request: Request) -> Response:
        serializer = ExportSettingsSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        config = export_settings_ensure(tenant_id=request.user.tenant_id)
        config = export_settings_update(config=config, **serializer.validated_data)
        return Response(ExportSettingsSerializer(config).data)

    patch = put


class ExportConnectionTestApi(APIView):
    """POST: test the saved configuration; 200 with ``ok`` false names the failing step."""

    permission_classes = [IsExportConfigurator]

    @extend_schema(
        tags=TAGS,
        summary="Test the saved settings",
        request=None,
        responses=CONNECTION_TEST_SCHEMA,
    )
    def post(self, request: Request) -> Response:
        config = export_settings_ensure(tenant_id=request.user.tenant_id)
        return Response(export_connection_test(config=config).as_json())


class ExportRegenerateExternalIdApi(APIView):
    """POST: a new External ID (the export is disabled until the role trusts it)."""

    permission_classes = [IsExportConfigurator]

    @extend_schema(
        tags=TAGS,
        summary="Give the tenant a new External ID",
        request=None,
        responses=ExportSettingsSerializer,
    )
    def post(self, request: Request) -> Response:
        config = export_settings_ensure(tenant_id=request.user.tenant_id)
        config = export_settings_regenerate_external_id(config=config)
        return Response(ExportSettingsSerializer(config).data)


class ExportPublicKeyApi(APIView):
    """GET: the Ed25519 public key that verifies export manifests."""

    permission_classes = [IsExportConfigurator]

    @extend_schema(
        tags=TAGS, summary="The key that verifies export manifests", responses=PUBLIC_KEY_SCHEMA
    )
    def get(self, request: Request) -> Response:
        return Response(
            {
                "algorithm": manifests.ALGORITHM,
                "public_key": manifests.public_key_b64(),
                "public_key_pem": manifests.public_key_pem(),
            }
        )
