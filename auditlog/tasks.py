"""Celery tasks of the audit log's storage: partitions ahead, DEFAULT drained, retention.

Beat queues both daily on the ``maintenance`` queue, which only the process holding the
owner's connection (``DATABASE_MAINTENANCE_URL``) consumes: DDL is the owner's (README,
"Deploying"). Where the log is not partitioned (SQLite) both do nothing.
"""

import logging

from celery import shared_task

from . import partitions, retention
from .context import ACTOR_SYSTEM, audit_context

logger = logging.getLogger(__name__)


@shared_task(name="auditlog.tasks.audit_log_partitions", ignore_result=True)
def audit_log_partitions() -> dict:
    """Move entries out of DEFAULT and keep three months of partitions created ahead."""
    try:
        return partitions.maintain()
    except partitions.PartitionError as exc:
        logger.info("audit log partitions: %s", exc)
        return {}


@shared_task(name="auditlog.tasks.audit_log_prune", ignore_result=True)
def audit_log_prune() -> dict:
    """Drop the whole months outside the retention window that no hold keeps."""
    try:
        with audit_context(actor_type=ACTOR_SYSTEM):
            candidates = retention.prune()
    except retention.RetentionError as exc:
        logger.info("audit log retention: %s", exc)
        return {}
    return {
        c.partition.name: {"held_by": [h.tenant_id for h in c.held_by], "removed": c.removed}
        for c in candidates
    }
