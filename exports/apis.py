"""``/api/v1/audit_logs/export_settings`` and friends (tenant owners only)."""

from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from . import manifests
from .connection import export_connection_test
from .permissions import IsExportConfigurator
from .serializers import ExportSettingsSerializer
from .settings import (
    export_settings_ensure,
    export_settings_regenerate_external_id,
    export_settings_update,
)


class ExportSettingsApi(APIView):
    """GET the settings and status; PUT changes (a 400 names each bad field)."""

    permission_classes = [IsExportConfigurator]

    def get(self, request: Request) -> Response:
        config = export_settings_ensure(tenant_id=request.user.tenant_id)
        return Response(ExportSettingsSerializer(config).data)

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

    def post(self, request: Request) -> Response:
        config = export_settings_ensure(tenant_id=request.user.tenant_id)
        return Response(export_connection_test(config=config).as_json())


class ExportRegenerateExternalIdApi(APIView):
    """POST: a new External ID (the export is disabled until the role trusts it)."""

    permission_classes = [IsExportConfigurator]

    def post(self, request: Request) -> Response:
        config = export_settings_ensure(tenant_id=request.user.tenant_id)
        config = export_settings_regenerate_external_id(config=config)
        return Response(ExportSettingsSerializer(config).data)


class ExportPublicKeyApi(APIView):
    """GET: the Ed25519 public key that verifies export manifests."""

    permission_classes = [IsExportConfigurator]

    def get(self, request: Request) -> Response:
        return Response(
            {
                "algorithm": manifests.ALGORITHM,
                "public_key": manifests.public_key_b64(),
                "public_key_pem": manifests.public_key_pem(),
            }
        )
