"""The tenant's export configuration: the settings service, its validation, the IAM policies.

Enabling the export (or changing its role while enabled) is refused unless STS itself
refuses the role without the External ID (AWS's confused-deputy guidance), so a saved,
enabled configuration always names a role only we can assume, and only with the ID.
"""

import copy
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from . import aws, selectors
from .models import ExportSettings, new_external_id

EDITABLE_FIELDS = ("enabled", "bucket", "region", "prefix", "role_arn")
REQUIRED_WHEN_ENABLED = ("bucket", "region", "role_arn")


@transaction.atomic
def export_settings_ensure(*, tenant_id: int) -> ExportSettings:
    """The tenant's settings, created with their defaults and a fresh External ID on first use.

    Creating them is no entry (``ExportsConfig``): reading the settings changes nothing the
    tenant configured. Two first reads at once both get the one row.
    """
    config = selectors.export_settings_get(tenant_id=tenant_id)
    if config is None:
        config = ExportSettings(tenant_id=tenant_id)
        try:
            with transaction.atomic():
                config.save()
        except IntegrityError:
            config = selectors.export_settings_get(tenant_id=tenant_id)
    return config


def _normalise(name: str, value: Any) -> Any:
    if name == "enabled":
        return bool(value)
    value = "" if value is None else str(value).strip()
    return value.strip("/") if name == "prefix" else value


def _apply(config: ExportSettings, fields: dict[str, Any]) -> None:
    unknown = set(fields) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValidationError(dict.fromkeys(sorted(unknown), "This field cannot be set."))
    for name, value in fields.items():
        setattr(config, name, _normalise(name, value))
    config.full_clean()


def export_settings_draft(*, config: ExportSettings, **fields: Any) -> ExportSettings:
    """A copy of ``config`` with ``fields`` applied and validated, never saved.

    What a form holds before it is saved: the connection test runs on it, and the policies
    shown follow it, so that a tenant can test a destination before switching to it.
    """
    draft = copy.copy(config)
    _apply(draft, fields)
    return draft


@transaction.atomic
def export_settings_update(*, config: ExportSettings, **fields: Any) -> ExportSettings:
    """Change the configuration (``AuditLogExportConfigurationChange``).

    Enabling, or changing the role while enabled, first checks that the role cannot be
    assumed without the External ID (AWS's confused-deputy guidance); otherwise refused.
    """
    _apply(config, fields)
    if config.enabled:
        missing = [name for name in REQUIRED_WHEN_ENABLED if not getattr(config, name)]
        if missing:
            raise ValidationError(
                dict.fromkeys(missing, "This field is required to enable the export.")
            )
        before = getattr(config, "_audit_snapshot", {})
        if not before.get("enabled") or any(
            before.get(name) != getattr(config, name) for name in ("role_arn", "region")
        ):
            problem = confused_deputy_problem(config)
            if problem:
                raise ValidationError({"role_arn": problem})
    config.save()
    return config


@transaction.atomic
def export_settings_regenerate_external_id(*, config: ExportSettings) -> ExportSettings:
    """Give the tenant a new External ID (the old one stops working once the role is updated).

    Disables the export: the role's trust policy still names the old ID.
    """
    config.external_id = new_external_id()
    config.enabled = False
    config.full_clean()
    config.save()
    return config


def confused_deputy_problem(config: ExportSettings) -> str | None:
    """Why the role is unsafe (or cannot be shown safe), or ``None`` when STS refuses it.

    Only STS's own refusal (``AccessDenied``) proves the External ID is required; a network
    error or throttling proves nothing, so it does not count as safe either.
    """
    try:
        aws.assume_role(
            role_arn=config.role_arn, external_id=None, region=config.region, cached=False
        )
    except aws.AwsError as exc:
        if exc.code == "AccessDenied":
            return None
        return (
            f"Could not check that the role requires the External ID: {exc.message} "
            f"({exc.code}). The settings were not saved; try again."
        )
    return (
        "This role can be assumed without the External ID. Add the sts:ExternalId condition "
        "shown below to its trust policy (confused-deputy protection); the settings were not "
        "saved."
    )


def trust_policy(config: ExportSettings) -> dict[str, Any]:
    """The trust policy the tenant gives its role: our account, with the External ID."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{settings.AUDIT_EXPORT_AWS_ACCOUNT_ID}:root"},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"sts:ExternalId": config.external_id}},
            }
        ],
    }


def permission_policy(config: ExportSettings) -> dict[str, Any]:
    """The role's permission policy: ``s3:PutObject`` under the prefix and nothing else."""
    bucket = config.bucket or "<bucket>"
    resource = (
        f"arn:aws:s3:::{bucket}/{config.prefix}/*"
        if config.prefix
        else (f"arn:aws:s3:::{bucket}/*")
    )
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:PutObject", "Resource": resource}],
    }
