"""Settings → Audit logs → Export to S3 (``/settings/audit-logs/export/``).

Owners see and change everything; readers of the audit log see a read-only status.
"""

import json
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from auditlog import retention
from auditlog.views import settings_menu

from . import manifests, selectors
from .connection import export_connection_test
from .exceptions import ExportNowRefused
from .forms import ExportSettingsForm
from .models import ExportSettings
from .permissions import can_configure_export, can_view_export_status
from .settings import (
    EDITABLE_FIELDS,
    export_settings_draft,
    export_settings_ensure,
    export_settings_regenerate_external_id,
    export_settings_update,
    permission_policy,
    trust_policy,
)
from .tasks import export_now

TEMPLATE = "exports/settings.html"
EXPORT_QUEUED = (
    "Export queued: the worker runs it in the background, as it runs the one every 15 "
    "minutes. Reload this page to see its objects under Recent objects."
)


def _context(
    request: HttpRequest,
    config: Any,
    form: ExportSettingsForm,
    *,
    draft: Any = None,
    **extra: Any,
) -> dict:
    # The policies follow the form once its values are valid (tested or refused on save);
    # the status is always the saved configuration's.
    shown = draft or config
    return {
        **settings_menu(request, "audit_logs"),
        "config": config,
        "form": form,
        "status": selectors.export_status(tenant_id=config.tenant_id),
        "batches": selectors.recent_batches(tenant_id=config.tenant_id),
        "trust_policy": json.dumps(trust_policy(shown), indent=2),
        "permission_policy": json.dumps(permission_policy(shown), indent=2),
        "public_key": manifests.public_key_b64(),
        "public_key_pem": manifests.public_key_pem(),
        "retention_days": retention.window_days(),
        **extra,
    }


@login_required
@require_http_methods(["GET", "POST"])
def export_settings(request: HttpRequest) -> HttpResponse:
    """Show and change the export settings; test them, export now, regenerate the External ID."""
    if not can_configure_export(request.user):
        if request.method == "GET" and can_view_export_status(request.user):
            return _status_page(request)
        return render(
            request,
            "exports/forbidden.html",
            settings_menu(request, "audit_logs"),
            status=403,
        )
    config = export_settings_ensure(tenant_id=request.user.tenant_id)
    action = request.POST.get("action") if request.method == "POST" else None
    if action == "regenerate":
        export_settings_regenerate_external_id(config=config)
        messages.success(request, "New External ID generated; update the role's trust policy.")
        return redirect("audit_log_export_settings")
    if action == "export":
        try:
            export_now(tenant_id=config.tenant_id)
        except ExportNowRefused as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, EXPORT_QUEUED)
        return redirect("audit_log_export_settings")
    if action in ("save", "test"):
        return _save_or_test(request, config, action)
    initial = {name: getattr(config, name) for name in EDITABLE_FIELDS}
    return render(request, TEMPLATE, _context(request, config, ExportSettingsForm(initial=initial)))


def _status_page(request: HttpRequest) -> HttpResponse:
    """The read-only status; it creates nothing, not even the settings of a tenant without."""
    tenant_id = request.user.tenant_id
    config = selectors.export_settings_get(tenant_id=tenant_id) or ExportSettings(
        tenant_id=tenant_id, external_id=""
    )
    context = {
        **settings_menu(request, "audit_logs"),
        "config": config,
        "status": selectors.export_status(tenant_id=tenant_id),
        "batches": selectors.recent_batches(tenant_id=tenant_id),
        "retention_days": retention.window_days(),
    }
    return render(request, "exports/status.html", context)


def _save_or_test(request: HttpRequest, config: Any, action: str) -> HttpResponse:
    """Both take what the form holds: a test never saves it, and neither throws it away."""
    form = ExportSettingsForm(request.POST)
    draft = None
    if form.is_valid():
        try:
            draft = export_settings_draft(config=config, **form.cleaned_data)
        except ValidationError as exc:
            _add_errors(form, exc)
    if draft is None:
        return render(request, TEMPLATE, _context(request, config, form), status=400)
    if action == "test":
        result = export_connection_test(config=draft)
        unsaved = any(getattr(draft, name) != getattr(config, name) for name in EDITABLE_FIELDS)
        extra = {"test_result": result, "test_unsaved": unsaved}
        return render(request, TEMPLATE, _context(request, config, form, draft=draft, **extra))
    try:
        export_settings_update(config=config, **form.cleaned_data)
    except ValidationError as exc:
        _add_errors(form, exc)
        config.refresh_from_db()
        return render(request, TEMPLATE, _context(request, config, form, draft=draft), status=400)
    messages.success(request, "Export settings saved.")
    return redirect("audit_log_export_settings")


def _add_errors(form: ExportSettingsForm, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for name, errors in exc.error_dict.items():
            form.add_error(name if name in form.fields else None, errors)
    else:
        form.add_error(None, exc)
