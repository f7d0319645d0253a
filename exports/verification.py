"""Verify an exported bucket: signed manifest chain, every object's hash, no holes.

Run by the tenant with read access (``s3:ListBucket`` and ``s3:GetObject``); the exporter
itself never reads its destination.
"""

import gzip
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from . import manifests

_MANIFEST_KEY = re.compile(r"/manifests/(\d{12})\.json$")


@dataclass
class Report:
    """What the verifier found: problems (empty means sound) and totals."""

    problems: list[str] = field(default_factory=list)
    manifests: int = 0
    batches: int = 0
    entries: int = 0
    last_cutoff: str | None = None

    @property
    def ok(self) -> bool:
        """True when nothing is wrong."""
        return not self.problems


def _list(client: Any, bucket: str, prefix: str) -> Iterator[str]:
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            yield item["Key"]


def _get(client: Any, bucket: str, key: str) -> bytes | None:
    try:
        return client.get_object(Bucket=bucket, Key=key)["Body"].read()
    except client.exceptions.NoSuchKey:
        return None


def verify_export(
    *, client: Any, bucket: str, prefix: str, tenant_id: int, public_key: str
) -> Report:
    """Check a tenant's export under ``<prefix>/audit-logs/tenant=<id>/``."""
    prefix = prefix.strip("/")
    root = (
        f"{prefix}/audit-logs/tenant={tenant_id}/" if prefix else f"audit-logs/tenant={tenant_id}/"
    )
    report = Report()
    keys = set(_list(client, bucket, root))
    manifest_keys = sorted(k for k in keys if _MANIFEST_KEY.search(k))
    listed: set[str] = set(manifest_keys)
    if not manifest_keys:
        report.problems.append(f"no manifest under s3://{bucket}/{root}manifests/")
        return report

    previous_sha: str | None = None
    expected_seq = 1
    expected_batch = 1
    last_position: tuple[str, int] | None = None
    for key in manifest_keys:
        seq = int(_MANIFEST_KEY.search(key).group(1))
        while expected_seq < seq:
            report.problems.append(f"manifest {expected_seq} is missing (hole in the sequence)")
            previous_sha = None
            expected_seq += 1
        expected_seq = seq + 1
        body = _get(client, bucket, key)
        if body is None:
            report.problems.append(f"manifest {key} vanished while verifying")
            continue
        try:
            manifest = manifests.verify(body, public_key)
        except ValueError as exc:
            report.problems.append(f"manifest {key}: {exc} (altered or not ours)")
            previous_sha = manifests.sha256_hex(body)
            continue
        report.manifests += 1
        report.last_cutoff = manifest.get("cutoff")
        if manifest.get("seq") != seq or manifest.get("tenant_id") != tenant_id:
            report.problems.append(f"manifest {key}: its seq or tenant does not match its key")
        claimed = manifest.get("previous_manifest_sha256")
        if seq == 1 and claimed:
            report.problems.append(f"manifest {key}: the first manifest names a predecessor")
        elif seq > 1 and previous_sha is not None and claimed != previous_sha:
            report.problems.append(
                f"manifest {key}: the chain is broken: previous manifest's SHA-256 is "
                f"{previous_sha}, this one names {claimed}"
            )
        previous_sha = manifests.sha256_hex(body)
        for batch in manifest.get("batches", []):
            listed.add(batch["key"])
            if batch["seq"] != expected_batch:
                report.problems.append(
                    f"batches {expected_batch}..{batch['seq'] - 1} are listed by no manifest "
                    "(hole in the sequence)"
                    if batch["seq"] > expected_batch
                    else f"batch {batch['seq']} is listed twice"
                )
            expected_batch = max(expected_batch, batch["seq"] + 1)
            last_position = _check_batch(client, bucket, batch, keys, report, last_position)

    for key in sorted(keys - listed):
        report.problems.append(f"extra object {key}: listed in no manifest")
    return report


def _check_batch(
    client: Any,
    bucket: str,
    batch: dict[str, Any],
    keys: set[str],
    report: Report,
    last_position: tuple[str, int] | None,
) -> tuple[str, int] | None:
    key = batch["key"]
    if key not in keys:
        report.problems.append(f"object {key} (batch {batch['seq']}) is missing: deleted?")
        return last_position
    body = _get(client, bucket, key)
    if body is None:
        report.problems.append(f"object {key} (batch {batch['seq']}) is missing: deleted?")
        return last_position
    sha = manifests.sha256_hex(body)
    if sha != batch["sha256"]:
        report.problems.append(
            f"object {key} (batch {batch['seq']}) was altered: SHA-256 is {sha}, "
            f"the manifest says {batch['sha256']}"
        )
        return last_position
    report.batches += 1
    lines = gzip.decompress(body).decode().splitlines()
    if len(lines) != batch["count"]:
        report.problems.append(
            f"object {key}: {len(lines)} entries, the manifest says {batch['count']}"
        )
    for line in lines:
        entry = json.loads(line)
        position = (entry["created_at"], entry["id"])
        if last_position is not None and position <= last_position:
            report.problems.append(
                f"object {key}: entry {entry['id']} is duplicated or out of order"
            )
        last_position = position
        report.entries += 1
    return last_position
