"""Writing entries: the one function every capture path ends in."""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.db import transaction
from django.utils import timezone

from .context import current, resolve_actor
from .models import AuditLogEntry
from .operations import get_operation
from .redaction import REDACTED, is_secret_key, redact

_batch: ContextVar[list[AuditLogEntry] | None] = ContextVar("audit_entry_batch", default=None)

BATCH_SIZE = 2000


def build_entry(
    *,
    operation_name: str,
    tenant_id: int,
    target_type: str = "",
    target_id: Any = "",
    target_repr: str = "",
    story_id: int | None = None,
    inputs: dict | None = None,
    outputs: dict | None = None,
    changes: dict | None = None,
    user: Any = None,
    secret_fields: frozenset[str] = frozenset(),
) -> AuditLogEntry:
    """An unsaved entry for the current context; unknown operation names raise ``KeyError``."""
    operation = get_operation(operation_name)
    actor = resolve_actor(current(), user=user)
    ctx = current()
    actor_user = actor.user if getattr(actor.user, "pk", None) else None
    return AuditLogEntry(
        tenant_id=tenant_id,
        created_at=timezone.now(),
        operation_name=operation.name,
        user=actor_user,
        user_email=getattr(actor_user, "email", "") or "",
        user_name=getattr(actor_user, "name", "") or "",
        actor_type=actor.actor_type,
        api_key_id=actor.api_key_id,
        api_key_name=actor.api_key_name,
        request_ip=ctx.request_ip,
        request_user_agent=ctx.request_user_agent,
        request_id=ctx.request_id,
        target_type=target_type or operation.target_type,
        target_id=str(target_id) if target_id not in (None, "") else "",
        target_repr=target_repr[:255],
        story_id=story_id,
        inputs=redact(inputs, secret_fields) if inputs is not None else None,
        outputs=redact(outputs or {}, secret_fields),
        changes=_redact_changes(changes or {}, secret_fields),
    )


def _redact_changes(changes: dict, secret_fields: frozenset[str]) -> dict:
    """``{field: [before, after]}`` with both sides of a secret field redacted."""
    return {
        str(name): [REDACTED, REDACTED]
        if is_secret_key(str(name), secret_fields)
        else redact(pair, secret_fields)
        for name, pair in changes.items()
    }


def record(**kwargs: Any) -> AuditLogEntry:
    """Record one operation in the caller's transaction (buffered inside ``entry_batch``).

    Errors propagate: if the entry cannot be written, the caller's change must roll back.
    """
    entry = build_entry(**kwargs)
    buffer = _batch.get()
    if buffer is not None:
        buffer.append(entry)
    else:
        entry.save()
    return entry


def record_many(entries: list[AuditLogEntry]) -> None:
    """Insert prepared entries in a few batched statements (or add them to the open batch)."""
    buffer = _batch.get()
    if buffer is not None:
        buffer.extend(entries)
    elif entries:
        AuditLogEntry.objects.bulk_create(entries, batch_size=BATCH_SIZE)


@contextmanager
def entry_batch() -> Iterator[None]:
    """Collect the entries recorded inside the block and insert them together at its end.

    The block runs in a transaction, so the changes and their entries commit as one.
    """
    if _batch.get() is not None:
        yield
        return
    buffer: list[AuditLogEntry] = []
    token = _batch.set(buffer)
    try:
        with transaction.atomic():
            yield
            _batch.reset(token)
            token = None
            record_many(buffer)
    finally:
        if token is not None:
            _batch.reset(token)
