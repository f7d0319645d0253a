"""The export run: lease, cutoff, frozen batches, upload, manifest — each entry exactly once.

How an export run never skips and never duplicates an entry
-----------------------------------------------------------
Entries are exported in ``(created_at, id)`` order up to a *cutoff* time. ``created_at`` is
stamped inside the entry's own transaction, so an entry that has not committed yet is never
older than its transaction's start. The cutoff of a run is therefore the earliest of
``now - AUDIT_EXPORT_SETTLE_SECONDS`` and (on PostgreSQL) the start of the oldest
transaction open at that moment: every entry older than the cutoff has committed before the
run reads, and no entry older than it can appear later. The cutoff never moves backwards.

Each object (batch) is *frozen* first: a row with its sequence number, its exact
``(created_at, id)`` range, count and SHA-256 is committed, then the bytes are uploaded with
``If-None-Match: *``. A failed upload leaves the batch undelivered; the next run re-creates
the same bytes (same settled rows, deterministic JSON, gzip with ``mtime=0``), checks the
SHA-256 and sends them again before anything new. The tenant's ``cutoff`` (the watermark)
advances only once every batch up to it has been accepted, together with the run's manifest.

The position (cutoff, last frozen entry), the batch sequence and the manifest chain belong
to an ``ExportStream``: one per destination (bucket, prefix). A new destination therefore
gets the tenant's whole history from batch 1 and manifest 1, verifiable on its own; going
back to an earlier destination resumes its stream.

Only one run per tenant at a time: a run claims a lease on the tenant's ``ExportState`` row
under ``SELECT ... FOR UPDATE SKIP LOCKED`` and renews it after every object; freezing a
batch re-checks the lease under the same row lock. The lease (not a transaction held open
for the whole run) keeps the run's own transactions short, so it never holds back the
cutoff of other tenants' runs.

Where the objects go is in ``exports.layout``; what a manifest says, how it is signed and
chained, in ``exports.manifests``; the configuration a run reads, in ``exports.settings``.
"""

import contextlib
import gzip
import io
import json
import logging
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from . import aws, layout, manifests, selectors
from .exceptions import ExportError, LeaseLost
from .models import ExportBatch, ExportManifest, ExportSettings, ExportState, ExportStream

logger = logging.getLogger(__name__)

LEASE = timedelta(minutes=15)
NDJSON_CONTENT_TYPE = "application/x-ndjson"
MANIFEST_CONTENT_TYPE = "application/json"


@dataclass
class ExportResult:
    """What one run did."""

    tenant_id: int
    status: str  # "ok", "failed", "skipped", "disabled"
    batches: int = 0
    entries: int = 0
    error: str = ""


def _claim(tenant_id: int, now: datetime) -> str | None:
    """Take the tenant's export lease, or ``None`` while another run holds it."""
    ExportState.objects.get_or_create(tenant_id=tenant_id)
    with transaction.atomic():
        state = (
            ExportState.objects.select_for_update(skip_locked=True)
            .filter(tenant_id=tenant_id)
            .first()
        )
        if state is None or (state.lease_token and state.lease_until and state.lease_until > now):
            return None
        token = uuid.uuid4().hex
        ExportState.objects.filter(pk=state.pk).update(
            lease_token=token, lease_until=now + LEASE, last_attempt_at=now
        )
    return token


def _release(tenant_id: int, token: str, **status: Any) -> None:
    ExportState.objects.filter(tenant_id=tenant_id, lease_token=token).update(
        lease_token="", lease_until=None, **status
    )


def _locked_state(tenant_id: int, token: str) -> ExportState:
    """The state row, locked for the current transaction, if our lease still holds."""
    state = ExportState.objects.select_for_update().get(tenant_id=tenant_id)
    if state.lease_token != token:
        raise LeaseLost("another export run took over this tenant")
    state.lease_until = timezone.now() + LEASE
    return state


def cutoff_now() -> datetime:
    """Entries older than this have all committed (see the module docstring)."""
    cutoff = timezone.now()
    oldest = selectors.oldest_open_transaction_start()
    if oldest is not None and oldest < cutoff:
        cutoff = oldest
    return cutoff - timedelta(seconds=settings.AUDIT_EXPORT_SETTLE_SECONDS)


# Fixed: a retry must re-create an undelivered object byte for byte (``mtime=0`` too). With
# compression overlapping the database fetch, level 6 is as fast as level 1 end to end and
# about 10% smaller; level 9 costs a quarter of the throughput (bench/export_throughput.py).
GZIP_LEVEL = 6


def line_position(line: str) -> tuple[datetime, int]:
    """``(created_at, id)`` of an exported line."""
    entry = json.loads(line)
    return datetime.fromisoformat(entry["created_at"]), entry["id"]


def encode_lines(chunks: Iterator[list[selectors.Line]]) -> tuple[bytes, dict[str, Any]]:
    """Gzip NDJSON of the lines (deterministic bytes) and their count and first/last keys.

    A helper thread compresses a chunk while the next one is fetched: zlib and the database
    wait both release the GIL, so the two overlap instead of adding up.
    """
    buffer = io.BytesIO()
    info: dict[str, Any] = {"count": 0, "first": None, "last": None}
    last_line = None
    with (
        # Closing the generator at once ends its read transaction, even on an error.
        contextlib.closing(chunks) if hasattr(chunks, "close") else contextlib.nullcontext(),
        gzip.GzipFile(
            fileobj=buffer, mode="wb", compresslevel=GZIP_LEVEL, mtime=0, filename=""
        ) as out,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="export-gzip") as pool,
    ):
        pending = None
        for chunk in chunks:
            if info["first"] is None:
                info["first"] = line_position(chunk[0])
            last_line = chunk[-1]
            info["count"] += len(chunk)
            data = ("\n".join(chunk) + "\n").encode()
            if pending is not None:
                pending.result()
            pending = pool.submit(out.write, data)
        if pending is not None:
            pending.result()
    if last_line is not None:
        info["last"] = line_position(last_line)
    return buffer.getvalue(), info


class _Destination:
    """The tenant's bucket, through the assumed role (assumed on first use)."""

    def __init__(self, config: ExportSettings) -> None:
        self.config = config
        self.session = aws.session()
        self._client: Any = None

    def put(self, key: str, body: bytes, sha256_hex: str, content_type: str) -> bool:
        if self._client is None:
            credentials = aws.assume_role(
                role_arn=self.config.role_arn,
                external_id=self.config.external_id,
                region=self.config.region,
                boto_session=self.session,
            )
            self._client = aws.s3_client(credentials, self.config.region, self.session)
        try:
            return aws.put_once(
                self._client,
                bucket=self.config.bucket,
                key=layout.full_key(self.config, key),
                body=body,
                sha256_hex=sha256_hex,
                content_type=content_type,
            )
        except aws.AwsError as exc:
            if exc.code in ("AccessDenied", "ExpiredToken", "InvalidAccessKeyId"):
                aws.forget_credentials(self.config.role_arn)
            raise


def _recreate(batch: ExportBatch) -> bytes:
    """The frozen batch's bytes again, checked against its SHA-256 and count.

    The PostgreSQL encoder is tried first; batches frozen by the portable (Python) encoder
    (SQLite, or before the PostgreSQL one existed) are re-created with that one.
    """
    for fast in (True, False):
        body, info = encode_lines(selectors.batch_lines(batch, fast=fast))
        if manifests.sha256_hex(body) == batch.sha256 and info["count"] == batch.count:
            return body
        if connection.vendor != "postgresql":
            break
    raise ExportError(f"batch {batch.seq} could not be re-created byte for byte; it was not resent")


def _deliver_batch(dest: _Destination, batch: ExportBatch, body: bytes | None = None) -> None:
    if body is None:
        body = _recreate(batch)
    dest.put(batch.key, body, batch.sha256, NDJSON_CONTENT_TYPE)
    ExportBatch.objects.filter(pk=batch.pk).update(delivered_at=timezone.now())


def _deliver_manifest(dest: _Destination, manifest: ExportManifest) -> None:
    dest.put(manifest.key, bytes(manifest.body), manifest.sha256, MANIFEST_CONTENT_TYPE)
    ExportManifest.objects.filter(pk=manifest.pk).update(delivered_at=timezone.now())


def _renew(tenant_id: int, token: str) -> None:
    renewed = ExportState.objects.filter(tenant_id=tenant_id, lease_token=token).update(
        lease_until=timezone.now() + LEASE
    )
    if not renewed:
        raise LeaseLost("another export run took over this tenant")


def _stream(config: ExportSettings) -> ExportStream:
    """The stream of the configured destination: a new destination starts from scratch."""
    stream, _ = ExportStream.objects.get_or_create(
        tenant_id=config.tenant_id, bucket=config.bucket, prefix=config.prefix
    )
    return stream


def _locked_stream(stream: ExportStream, tenant_id: int, token: str) -> ExportStream:
    """The stream, re-read under the tenant's row lock (our lease must still hold)."""
    state = _locked_state(tenant_id, token)
    state.save(update_fields=["lease_until"])
    return ExportStream.objects.get(pk=stream.pk)


def _run(config: ExportSettings, token: str, result: ExportResult) -> None:
    tenant_id = config.tenant_id
    dest = _Destination(config)
    stream = _stream(config)
    # Whatever an earlier run froze but could not deliver goes first, byte for byte. (Those
    # of another destination wait for the tenant to configure that destination again.)
    for batch in stream.batches.filter(delivered_at__isnull=True).order_by("seq"):
        _deliver_batch(dest, batch)
        _renew(tenant_id, token)
    for manifest in stream.manifests.filter(delivered_at__isnull=True).order_by("seq"):
        _deliver_manifest(dest, manifest)
        _renew(tenant_id, token)

    stream.refresh_from_db()
    cutoff = cutoff_now()
    if stream.cutoff is not None and cutoff < stream.cutoff:
        cutoff = stream.cutoff
    limit = settings.AUDIT_EXPORT_MAX_ENTRIES_PER_OBJECT
    position = (
        (stream.frozen_created_at, stream.frozen_id) if stream.frozen_id is not None else None
    )
    while True:
        body, info = encode_lines(
            selectors.entry_lines(tenant_id=tenant_id, after=position, before=cutoff, limit=limit)
        )
        if not info["count"]:
            break
        with transaction.atomic():
            stream = _locked_stream(stream, tenant_id, token)
            last_seq = stream.batches.order_by("-seq").values_list("seq", flat=True).first() or 0
            seq = last_seq + 1
            batch = ExportBatch.objects.create(
                tenant_id=tenant_id,
                stream=stream,
                seq=seq,
                first_created_at=info["first"][0],
                first_id=info["first"][1],
                last_created_at=info["last"][0],
                last_id=info["last"][1],
                count=info["count"],
                sha256=manifests.sha256_hex(body),
                size=len(body),
                key=layout.batch_key(tenant_id, seq, info["first"], info["last"][1]),
            )
            stream.frozen_created_at, stream.frozen_id = info["last"]
            stream.save(update_fields=["frozen_created_at", "frozen_id"])
        _deliver_batch(dest, batch, body)
        result.batches += 1
        result.entries += info["count"]
        position = info["last"]
        del body
        if info["count"] < limit:
            break

    with transaction.atomic():
        stream = _locked_stream(stream, tenant_id, token)
        manifest = manifests.freeze(config, stream, cutoff)
        stream.cutoff = cutoff
        stream.save(update_fields=["cutoff"])
    _deliver_manifest(dest, manifest)


def export_run(*, tenant_id: int) -> ExportResult:
    """Export a tenant's new entries once (the beat task and ``run_audit_export`` call this)."""
    config = selectors.export_settings_get(tenant_id=tenant_id)
    if config is None or not config.enabled:
        return ExportResult(tenant_id, "disabled")
    started = timezone.now()
    token = _claim(tenant_id, started)
    if token is None:
        return ExportResult(tenant_id, "skipped")
    result = ExportResult(tenant_id, "ok")
    try:
        _run(config, token, result)
    except (aws.AwsError, ExportError) as exc:
        result.status = "failed"
        result.error = _words(exc)
        logger.warning("audit log export of tenant %s failed: %s", tenant_id, result.error)
        _release(tenant_id, token, last_error=result.error)
        return result
    except Exception as exc:
        result.status = "failed"
        result.error = f"internal error: {type(exc).__name__}: {exc}"
        _release(tenant_id, token, last_error=result.error)
        raise
    _release(tenant_id, token, last_success_at=timezone.now(), last_error="")
    return result


def _words(exc: Exception) -> str:
    if isinstance(exc, aws.AwsError):
        return (
            f"{exc.message} — while {aws.STEP_WORDS.get(exc.step, exc.step)} (AWS error {exc.code})"
        )
    return str(exc)
