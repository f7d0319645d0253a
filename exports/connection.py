"""The connection test: assume the role with the External ID, without it, put a test object.

It runs on demand and reports each step with AWS's error code: the settings page's button
tests what the form holds, saved or not (``settings.export_settings_draft``), and
``POST .../export_settings/test`` the saved configuration. It changes nothing but the test
object it writes.
"""

import uuid
from dataclasses import dataclass, field
from typing import Any

from django.utils import timezone

from auditlog.serializers import rfc3339

from . import aws, layout, manifests
from .models import ExportSettings
from .settings import REQUIRED_WHEN_ENABLED, confused_deputy_problem


@dataclass
class ConnectionTest:
    """The outcome of each step of a connection test."""

    ok: bool = True
    steps: list[dict[str, Any]] = field(default_factory=list)

    def add(self, step: str, ok: bool, code: str = "", message: str = "") -> None:
        """Record a step; a failed step fails the test."""
        self.steps.append(
            {
                "step": step,
                "description": aws.STEP_WORDS[step],
                "ok": ok,
                "code": code or None,
                "message": message,
            }
        )
        self.ok = self.ok and ok

    @property
    def message(self) -> str:
        """One sentence: success, or the failing step with AWS's error code."""
        for step in self.steps:
            if not step["ok"]:
                code = f" ({step['code']})" if step["code"] else ""
                return f"Failed at {step['description']}: {step['message']}{code}."
        return "Connection works: the role was assumed and a test object was written."

    def as_json(self) -> dict[str, Any]:
        """The API's response body."""
        return {"ok": self.ok, "message": self.message, "steps": self.steps}


def export_connection_test(*, config: ExportSettings) -> ConnectionTest:
    """Assume with the External ID (must work), without (must fail), put a test object."""
    result = ConnectionTest()
    missing = [name for name in REQUIRED_WHEN_ENABLED if not getattr(config, name)]
    if missing:
        result.add("assume_role", False, "NotConfigured", f"missing {', '.join(missing)}")
        return result
    try:
        credentials = aws.assume_role(
            role_arn=config.role_arn,
            external_id=config.external_id,
            region=config.region,
            cached=False,
        )
    except aws.AwsError as exc:
        result.add("assume_role", False, exc.code, exc.message)
        return result
    result.add("assume_role", True)
    problem = confused_deputy_problem(config)
    unsafe = problem is not None and problem.startswith("This role can be assumed")
    result.add(
        "assume_role_without_external_id",
        problem is None,
        "" if problem is None else ("ExternalIdNotRequired" if unsafe else "CheckFailed"),
        problem or "refused, as it must be",
    )
    if problem:
        return result
    now = timezone.now()
    key = layout.full_key(
        config, layout.connection_test_key(config.tenant_id, now, uuid.uuid4().hex[:8])
    )
    body = f"Audit log export connection test at {rfc3339(now)}\n".encode()
    try:
        aws.put_once(
            aws.s3_client(credentials, config.region),
            bucket=config.bucket,
            key=key,
            body=body,
            sha256_hex=manifests.sha256_hex(body),
            content_type="text/plain",
        )
    except aws.AwsError as exc:
        result.add("put_object", False, exc.code, exc.message)
        return result
    result.add("put_object", True, message=f"wrote {key}")
    return result
