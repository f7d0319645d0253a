"""Signed, chained manifests of export runs (Ed25519): what one says, freezing, verifying.

A run's manifest lists the batches delivered since the previous manifest and names that
manifest's SHA-256, so the chain shows a missing or altered object. ``freeze`` writes its
row inside the run's transaction (``exports.delivery``); ``exports.verification`` checks
a bucket.
"""

import base64
import hashlib
import json
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db.models import Max
from django.utils import timezone

from auditlog.serializers import rfc3339

from . import layout
from .exceptions import ExportError
from .models import ExportManifest, ExportSettings, ExportStream

ALGORITHM = "Ed25519"


def _canonical(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def signing_key() -> Ed25519PrivateKey:
    """The private key of ``AUDIT_EXPORT_SIGNING_KEY`` (base64 of the raw 32 bytes)."""
    raw = settings.AUDIT_EXPORT_SIGNING_KEY
    if not raw:
        raise ImproperlyConfigured("AUDIT_EXPORT_SIGNING_KEY is not set")
    return Ed25519PrivateKey.from_private_bytes(base64.b64decode(raw))


def public_key_b64(key: Ed25519PrivateKey | None = None) -> str:
    """The public key that verifies manifests: base64 of the raw 32 bytes."""
    public = (key or signing_key()).public_key()
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def public_key_pem() -> str:
    """The same public key as PEM (SubjectPublicKeyInfo), for ``openssl`` users."""
    return (
        signing_key()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def sign(manifest: dict[str, Any]) -> bytes:
    """The manifest object's bytes: the manifest, its signature and the key id."""
    key = signing_key()
    signature = key.sign(_canonical(manifest))
    document = {
        "manifest": manifest,
        "algorithm": ALGORITHM,
        "public_key": public_key_b64(key),
        "signature": base64.b64encode(signature).decode(),
    }
    return json.dumps(document, sort_keys=True, indent=1).encode() + b"\n"


def verify(body: bytes, public_key: str) -> dict[str, Any]:
    """The manifest inside ``body``; raises ``ValueError`` if it is not validly signed."""
    try:
        document = json.loads(body)
        manifest = document["manifest"]
        signature = base64.b64decode(document["signature"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"not a manifest document ({exc})") from exc
    key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key))
    try:
        key.verify(signature, _canonical(manifest))
    except InvalidSignature as exc:
        raise ValueError("the signature does not match the manifest") from exc
    return manifest


def sha256_hex(body: bytes) -> str:
    """Hex SHA-256 of an object's bytes."""
    return hashlib.sha256(body).hexdigest()


def freeze(config: ExportSettings, stream: ExportStream, cutoff: datetime) -> ExportManifest:
    """The stream's next manifest, signed and stored, not yet delivered.

    It lists the batches frozen since the previous manifest, which must all be delivered;
    the run calls it in the transaction that holds the tenant's lease and moves the cutoff.
    """
    tenant_id = config.tenant_id
    previous = stream.manifests.order_by("-seq").first()
    after_seq = stream.manifests.aggregate(Max("last_batch_seq"))["last_batch_seq__max"] or 0
    batches = list(stream.batches.filter(seq__gt=after_seq).order_by("seq"))
    if any(b.delivered_at is None for b in batches):
        raise ExportError("a batch is not delivered yet; the manifest waits for it")
    seq = previous.seq + 1 if previous else 1
    key = layout.manifest_key(tenant_id, seq)
    document = {
        "version": 1,
        "tenant_id": tenant_id,
        "seq": seq,
        "created_at": rfc3339(timezone.now()),
        "previous_cutoff": rfc3339(stream.cutoff) if stream.cutoff else None,
        "cutoff": rfc3339(cutoff),
        "previous_manifest_sha256": previous.sha256 if previous else None,
        "entry_count": sum(b.count for b in batches),
        "batches": [
            {
                "seq": b.seq,
                "key": layout.full_key(config, b.key),
                "sha256": b.sha256,
                "size": b.size,
                "count": b.count,
                "first_id": b.first_id,
                "last_id": b.last_id,
                "first_created_at": rfc3339(b.first_created_at),
                "last_created_at": rfc3339(b.last_created_at),
            }
            for b in batches
        ],
    }
    body = sign(document)
    return ExportManifest.objects.create(
        tenant_id=tenant_id,
        stream=stream,
        seq=seq,
        key=key,
        body=body,
        sha256=sha256_hex(body),
        previous_sha256=previous.sha256 if previous else "",
        first_batch_seq=batches[0].seq if batches else None,
        last_batch_seq=batches[-1].seq if batches else None,
        cutoff=cutoff,
    )
