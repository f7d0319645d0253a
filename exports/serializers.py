"""The export settings as the API shows and accepts them."""

from typing import Any

from rest_framework import serializers

from . import selectors
from .models import ExportSettings
from .settings import permission_policy, trust_policy

# Static keys of the tenant are never accepted: assumed roles only.
STATIC_KEY_FIELDS = (
    "aws_access_key_id",
    "aws_secret_access_key",
    "access_key_id",
    "secret_access_key",
    "session_token",
)


class ExportStatusSerializer(serializers.Serializer):
    """The export's progress (``selectors.ExportStatus.as_json``), as the API shows it."""

    last_success_at = serializers.DateTimeField(allow_null=True)
    last_attempt_at = serializers.DateTimeField(allow_null=True)
    last_error = serializers.CharField(allow_null=True)
    backlog_count = serializers.IntegerField(help_text="Entries not yet delivered.")
    backlog_count_is_lower_bound = serializers.BooleanField(
        help_text="The backlog is counted up to a cap; true when it is larger."
    )
    backlog_oldest_at = serializers.DateTimeField(allow_null=True)


class ExportSettingsSerializer(serializers.Serializer):
    """``enabled``, ``bucket``, ``region``, ``prefix``, ``role_arn``; the rest is read-only."""

    enabled = serializers.BooleanField(required=False)
    bucket = serializers.CharField(required=False, allow_blank=True, max_length=63)
    region = serializers.CharField(required=False, allow_blank=True, max_length=32)
    prefix = serializers.CharField(required=False, allow_blank=True, max_length=200)
    role_arn = serializers.CharField(required=False, allow_blank=True, max_length=2048)
    external_id = serializers.CharField(read_only=True)
    status = ExportStatusSerializer(read_only=True)
    trust_policy = serializers.JSONField(
        read_only=True, help_text="The trust policy to give the role (with the External ID)."
    )
    permission_policy = serializers.JSONField(
        read_only=True, help_text="The role's permission policy: s3:PutObject and nothing else."
    )

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise serializers.ValidationError({"non_field_errors": ["Send a JSON object."]})
        errors = {}
        for name in data:
            if name in STATIC_KEY_FIELDS:
                errors[name] = [
                    "Static AWS keys are never accepted: give us an IAM role (role_arn) to assume."
                ]
            elif name not in self.fields:
                errors[name] = ["Unknown field."]
        if errors:
            raise serializers.ValidationError(errors)
        data = {k: v for k, v in data.items() if k in self.fields and not self.fields[k].read_only}
        return super().to_internal_value(data)

    def to_representation(self, instance: ExportSettings) -> dict[str, Any]:
        status = selectors.export_status(tenant_id=instance.tenant_id)
        return {
            "enabled": instance.enabled,
            "bucket": instance.bucket,
            "region": instance.region,
            "prefix": instance.prefix,
            "role_arn": instance.role_arn,
            "external_id": instance.external_id,
            "status": status.as_json(),
            "trust_policy": trust_policy(instance),
            "permission_policy": permission_policy(instance),
        }
