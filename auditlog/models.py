"""The audit log entry: one row per operation, append-only."""

from django.conf import settings
from django.db import models
from django.db.models import BooleanField, ExpressionWrapper, Q

from .context import ACTOR_TYPES, REQUEST_ID_LENGTH, USER_AGENT_LENGTH
from .operations import DESCRIBING_FIELDS, describe


class AppendOnlyError(Exception):
    """Raised when code tries to change or delete an audit log entry."""


class AuditLogEntryQuerySet(models.QuerySet):
    """Entries can be read and created, never updated or deleted."""

    def update(self, **kwargs):
        raise AppendOnlyError("audit log entries are append-only")

    def delete(self):
        raise AppendOnlyError("audit log entries are append-only")

    def bulk_update(self, objs, fields, batch_size=None):
        raise AppendOnlyError("audit log entries are append-only")

    def update_or_create(self, *args, **kwargs):
        raise AppendOnlyError("audit log entries are append-only")

    def describable(self):
        """Say, per entry, whether ``changes`` holds each field that can change a description.

        Lists defer ``changes`` (it can be large); these flags are all a description needs.
        """
        return self.annotate(
            **{
                _changed(field): ExpressionWrapper(Q(changes__has_key=field), BooleanField())
                for field in DESCRIBING_FIELDS
            }
        )


def _changed(field: str) -> str:
    return f"changes_has_{field}"


class AuditLogEntry(models.Model):
    """Who did what to which object of a tenant, when, and from where."""

    id = models.BigAutoField(primary_key=True)
    # No index of its own: every index below is led by the tenant (on a partitioned table
    # a redundant index is one more per partition to plan, build and write).
    tenant = models.ForeignKey(
        "tenants.Tenant", on_delete=models.PROTECT, related_name="+", db_index=False
    )
    created_at = models.DateTimeField(db_index=False)
    operation_name = models.CharField(max_length=64)

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )
    user_email = models.CharField(max_length=254, blank=True)
    user_name = models.CharField(max_length=255, blank=True)
    actor_type = models.CharField(max_length=16, choices=[(t, t) for t in ACTOR_TYPES])
    api_key_id = models.BigIntegerField(null=True, blank=True)
    api_key_name = models.CharField(max_length=255, blank=True)

    request_ip = models.GenericIPAddressField(null=True, blank=True)
    request_user_agent = models.CharField(max_length=USER_AGENT_LENGTH, blank=True)
    request_id = models.CharField(max_length=REQUEST_ID_LENGTH, blank=True)
    # The X-Request-ID the client sent (its own correlation id, never the server's). NULL,
    # not "": "sent none" is what it says, and a nullable column without default is added in
    # place on SQLite too, where a default would rebuild the table and drop its triggers.
    client_request_id = models.CharField(  # noqa: DJ001
        max_length=REQUEST_ID_LENGTH, null=True, blank=True
    )

    target_type = models.CharField(max_length=64, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_repr = models.CharField(max_length=255, blank=True)
    story_id = models.BigIntegerField(null=True, blank=True)

    inputs = models.JSONField(null=True, blank=True)
    outputs = models.JSONField(default=dict, blank=True)
    changes = models.JSONField(default=dict, blank=True)

    objects = AuditLogEntryQuerySet.as_manager()

    class Meta:
        verbose_name = "audit log entry"
        verbose_name_plural = "audit log entries"
        default_permissions = ("view",)
        ordering = ("-created_at", "-id")
        indexes = [
            models.Index(fields=["tenant", "-created_at", "-id"], name="auditlog_tenant_time"),
            models.Index(
                fields=["tenant", "operation_name", "-created_at"], name="auditlog_tenant_op"
            ),
            models.Index(fields=["tenant", "user", "-created_at"], name="auditlog_tenant_user"),
            # Each filter of the read path has an index led by the tenant.
            models.Index(
                fields=["tenant", "target_type", "-created_at"], name="auditlog_tenant_ttype"
            ),
            models.Index(fields=["tenant", "target_id"], name="auditlog_tenant_tid"),
            models.Index(fields=["tenant", "request_ip", "-created_at"], name="auditlog_tenant_ip"),
            models.Index(fields=["tenant", "request_id"], name="auditlog_tenant_request"),
            # The actor filters (``actor_type``; ``api_key_id``, set only on API-key entries).
            models.Index(
                fields=["tenant", "actor_type", "-created_at"], name="auditlog_tenant_actor"
            ),
            models.Index(
                fields=["tenant", "api_key_id", "-created_at"],
                name="auditlog_tenant_key",
                condition=Q(api_key_id__isnull=False),
            ),
            # The admin console's search also has two expression indexes, made per database
            # by migration 0006 (``text_pattern_ops`` exists in PostgreSQL only).
        ]

    def __str__(self) -> str:
        return f"{self.operation_name} by {self.user_email or self.actor_type} at {self.created_at}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnlyError("audit log entries are append-only")
        kwargs["force_insert"] = True
        return super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("audit log entries are append-only")

    @property
    def description(self) -> str:
        """What this entry did, in words (the catalog's, refined by the fields it changed)."""
        if "changes" in self.get_deferred_fields():
            # A list: the flags of ``describable()`` stand in for the deferred document.
            changed = {f for f in DESCRIBING_FIELDS if getattr(self, _changed(f), False)}
        else:
            changed = set(self.changes or {})
        return describe(self.operation_name, changed)
