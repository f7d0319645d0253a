"""Celery tasks of the export: beat fans out one task per enabled tenant."""

from celery import shared_task

from auditlog.context import ACTOR_TASK, audit_context

from . import selectors
from .delivery import export_run


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
