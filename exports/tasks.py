"""Celery tasks of the export: beat fans out one task per enabled tenant; "Export now" one."""

from celery import shared_task
from kombu.exceptions import OperationalError

from auditlog.context import ACTOR_TASK, audit_context

from . import selectors
from .delivery import export_run
from .exceptions import ExportNowRefused


class ExportFailedError(Exception):
    """Raised so that Celery retries the tenant's export with backoff."""


@shared_task(name="exports.tasks.export_all_tenants", ignore_result=True)
def export_all_tenants() -> list[int]:
    """Queue one export per tenant whose export is enabled (every 15 minutes, from beat)."""
    tenant_ids = selectors.enabled_tenant_ids()
    for tenant_id in tenant_ids:
        export_tenant.delay(tenant_id)
    return tenant_ids


@shared_task(
    name="exports.tasks.export_tenant",
    autoretry_for=(ExportFailedError,),
    retry_backoff=30,
    retry_backoff_max=900,
    retry_jitter=True,
    max_retries=6,
    ignore_result=True,
)
def export_tenant(tenant_id: int) -> dict:
    """Export one tenant's new entries; a failure is retried with exponential backoff.

    Another run holding the tenant's lease is not a failure: that run does the work.
    """
    with audit_context(actor_type=ACTOR_TASK):
        result = export_run(tenant_id=tenant_id)
    if result.status == "failed":
        raise ExportFailedError(result.error)
    return {"tenant_id": tenant_id, "status": result.status, "entries": result.entries}


def export_now(*, tenant_id: int) -> None:
    """Queue the tenant's export at once, the task beat queues every 15 minutes.

    Refused (``ExportNowRefused``) while the export is off, or while a run holds the
    tenant's lease: that run is doing the work, and a second would only skip.
    """
    config = selectors.export_settings_get(tenant_id=tenant_id)
    if config is None or not config.enabled:
        raise ExportNowRefused("The export is off: switch it on and save the settings first.")
    running_since = selectors.export_running_since(tenant_id=tenant_id)
    if running_since is not None:
        raise ExportNowRefused(
            "An export of this tenant is running (it started at "
            f"{running_since:%Y-%m-%d %H:%M:%S} UTC): wait until it has finished."
        )
    try:
        export_tenant.delay(tenant_id)
    except OperationalError as exc:
        raise ExportNowRefused(
            "The export could not be queued: the task queue is unreachable. Try again later."
        ) from exc
