"""Signed, chained manifests of export runs (Ed25519), and their verification."""

import base64
import hashlib
import json
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

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
