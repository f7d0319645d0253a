"""Export of each tenant's audit log to the tenant's own S3 bucket.

``ExportSettings`` is the tenant's configuration (audited: every change is an entry).
``ExportState`` is the exporter's bookkeeping (lease, watermark, status), kept apart so that
the exporter's own writes are not configuration changes. ``ExportBatch`` and
``ExportManifest`` are frozen before upload: a retry re-sends the very same bytes.
"""

import secrets

from django.db import models

from auditlog.querysets import AuditedModel

from .validators import validate_bucket, validate_prefix, validate_region, validate_role_arn


def new_external_id() -> str:
    """A fresh External ID for a tenant's trust policy (unguessable, URL-safe)."""
    return secrets.token_urlsafe(24)


class ExportSettings(AuditedModel):
    """Where and how a tenant's audit log is exported (one row per tenant)."""

    tenant = models.OneToOneField(
        "tenants.Tenant", on_delete=models.CASCADE, related_name="audit_export_settings"
    )
    enabled = models.BooleanField(default=False)
    bucket = models.CharField(max_length=63, blank=True, validators=[validate_bucket])
    region = models.CharField(max_length=32, blank=True, validators=[validate_region])
    prefix = models.CharField(max_length=200, blank=True, validators=[validate_prefix])
    role_arn = models.CharField(max_length=2048, blank=True, validators=[validate_role_arn])
    external_id = models.CharField(max_length=64, unique=True, default=new_external_id)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "audit log export settings"
        verbose_name_plural = "audit log export settings"

    def __str__(self) -> str:
        return f"S3 export to {self.bucket or '(no bucket)'}"


class ExportState(models.Model):
    """The exporter's lease and status for one tenant; its row lock serialises exports."""

    tenant = models.OneToOneField(
        "tenants.Tenant", on_delete=models.CASCADE, related_name="audit_export_state"
    )
    # A run holds the lease; a crashed run's lease expires.
    lease_token = models.CharField(max_length=32, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        verbose_name = "audit log export state"

    def __str__(self) -> str:
        return f"export state of tenant {self.tenant_id}"


class ExportStream(models.Model):
    """One destination (bucket and prefix) of a tenant: its own position, batches and chain.

    A new destination starts a new stream, so it receives the tenant's whole history from
    batch 1 and manifest 1 (verifiable on its own); going back to an earlier destination
    resumes that destination's stream where it stopped.
    """

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+")
    bucket = models.CharField(max_length=63)
    prefix = models.CharField(max_length=200, blank=True)
    # Everything with created_at < cutoff has been delivered (and listed in a manifest).
    cutoff = models.DateTimeField(null=True, blank=True)
    # The last entry frozen into a batch, in (created_at, id) order.
    frozen_created_at = models.DateTimeField(null=True, blank=True)
    frozen_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "audit log export stream"
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "bucket", "prefix"], name="exports_stream_destination"
            )
        ]

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


class ExportBatch(models.Model):
    """One object of entries, frozen (range, count, SHA-256) before it is uploaded."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+")
    stream = models.ForeignKey(ExportStream, on_delete=models.CASCADE, related_name="batches")
    seq = models.PositiveBigIntegerField()
    # The entries are those with (first_created_at, first_id) <= (created_at, id) <=
    # (last_created_at, last_id): settled, append-only, hence the same bytes on every retry.
    first_created_at = models.DateTimeField()
    first_id = models.BigIntegerField()
    last_created_at = models.DateTimeField()
    last_id = models.BigIntegerField()
    count = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    size = models.PositiveBigIntegerField()
    # Relative to ``<prefix>/``; the prefix is applied when uploading.
    key = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("stream", "seq")
        constraints = [
            models.UniqueConstraint(fields=["stream", "seq"], name="exports_batch_stream_seq")
        ]

    def __str__(self) -> str:
        return self.key


class ExportManifest(models.Model):
    """The signed record of one export run, chained to the previous run's manifest."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+")
    stream = models.ForeignKey(ExportStream, on_delete=models.CASCADE, related_name="manifests")
    seq = models.PositiveBigIntegerField()
    key = models.CharField(max_length=255)
    body = models.BinaryField()
    sha256 = models.CharField(max_length=64)
    previous_sha256 = models.CharField(max_length=64, blank=True)
    first_batch_seq = models.PositiveBigIntegerField(null=True, blank=True)
    last_batch_seq = models.PositiveBigIntegerField(null=True, blank=True)
    cutoff = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("stream", "seq")
        constraints = [
            models.UniqueConstraint(fields=["stream", "seq"], name="exports_manifest_stream_seq")
        ]

    def __str__(self) -> str:
        return self.key
