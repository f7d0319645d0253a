"""Writing entries: the one function every capture path ends in."""

import functools
import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connections, router, transaction
from django.utils import timezone

from . import routing
from .context import current, resolve_actor
from .models import AuditLogEntry
from .operations import get_operation
from .redaction import REDACTED, is_secret_key, redact
from .truncation import truncate

logger = logging.getLogger(__name__)

_batch: ContextVar[list[dict] | None] = ContextVar("audit_entry_batch", default=None)

BATCH_SIZE = 2000
# From this many rows on, PostgreSQL gets them through COPY: several times faster than INSERT.
COPY_THRESHOLD = 100
JSON_COLUMNS = ("inputs", "outputs", "changes")
_INSERT_SQL: dict[str, str] = {}  # the one-row INSERT, per database vendor


def stamp(user: Any = None) -> dict[str, Any]:
    """The values every entry of the current context shares: when, who, from where."""
    ctx = current()
    actor = resolve_actor(ctx, user=user)
    actor_user = actor.user if getattr(actor.user, "pk", None) else None
    return {
        "created_at": timezone.now(),
        "user_id": actor_user.pk if actor_user else None,
        "user_email": getattr(actor_user, "email", "") or "",
        "user_name": getattr(actor_user, "name", "") or "",
        "actor_type": actor.actor_type,
        "api_key_id": actor.api_key_id,
        "api_key_name": actor.api_key_name,
        "request_ip": ctx.request_ip,
        "request_user_agent": ctx.request_user_agent,
        "request_id": ctx.request_id,
        "client_request_id": ctx.client_request_id,
    }


def entry_row(
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
    shared: dict[str, Any] | None = None,
    redacted: bool = False,
) -> dict[str, Any]:
    """The column values of one entry; unknown operation names raise ``KeyError``.

    ``shared`` is a ``stamp()`` taken once for many rows of one statement; ``redacted``
    says that the registry already redacted and JSON-encoded the values (bulk paths).
    Either way long strings are truncated last, once secrets are ``REDACTED``.
    """
    operation = get_operation(operation_name)
    if not redacted:
        inputs = redact(inputs, secret_fields) if inputs is not None else None
        outputs = redact(outputs or {}, secret_fields)
        changes = _redact_changes(changes or {}, secret_fields)
    return {
        **(shared or stamp(user)),
        "tenant_id": tenant_id,
        "operation_name": operation.name,
        "target_type": target_type or operation.target_type,
        "target_id": str(target_id) if target_id not in (None, "") else "",
        "target_repr": target_repr[:255],
        "story_id": story_id,
        "inputs": truncate(inputs),
        "outputs": truncate(outputs or {}),
        "changes": truncate(changes or {}),
    }


def _redact_changes(changes: dict, secret_fields: frozenset[str]) -> dict:
    """``{field: [before, after]}`` with both sides of a secret field redacted."""
    return {
        str(name): [REDACTED, REDACTED]
        if is_secret_key(str(name), secret_fields)
        else redact(pair, secret_fields)
        for name, pair in changes.items()
    }


def record(**kwargs: Any) -> None:
    """Record one operation in the caller's transaction (buffered inside ``entry_batch``).

    Errors propagate: if the entry cannot be written, the caller's change must roll back.
    """
    record_rows([entry_row(**kwargs)])


def record_for_email(*, operation_name: str, email: str, inputs: dict | None = None) -> None:
    """Record a sign-in event under the tenant of each account whose email was tried.

    Accounts are per tenant, so one email may have several; the event concerns each of them
    (a failed password opened none), and each tenant sees it in its own log only.
    An email that matches no account has no tenant to file it under: the application log
    keeps the event instead, without the email (it may be a password typed in the wrong box).
    """
    accounts = list(get_user_model()._default_manager.filter(email__iexact=email))
    if not accounts:
        logger.warning("%s for an unknown account", operation_name)
    for account in accounts:
        record(
            operation_name=operation_name,
            tenant_id=account.tenant_id,
            target_id=account.pk,
            target_repr=account.email,
            inputs=inputs,
        )


def record_rows(rows: list[dict[str, Any]]) -> None:
    """Insert prepared rows in a few statements (or add them to the open batch)."""
    buffer = _batch.get()
    if buffer is not None:
        buffer.extend(rows)
    elif rows:
        _insert(rows)


def _insert(rows: list[dict[str, Any]]) -> None:
    routing.pin_writers(row["user_id"] for row in rows)
    connection = connections[router.db_for_write(AuditLogEntry)]
    if len(rows) == 1:
        _insert_one(connection, rows[0])
    elif connection.vendor == "postgresql" and len(rows) >= COPY_THRESHOLD:
        _copy(connection, rows)
    else:
        AuditLogEntry.objects.bulk_create(
            [AuditLogEntry(**row) for row in rows], batch_size=BATCH_SIZE
        )


@functools.cache
def entry_fields() -> tuple[Any, ...]:
    """The entry's fields that capture writes (the database numbers the entries)."""
    return tuple(f for f in AuditLogEntry._meta.concrete_fields if not f.primary_key)


def _insert_one(connection: Any, row: dict[str, Any]) -> None:
    """Insert one entry (a single save's) with a plain INSERT, inside the caller's transaction.

    A single save's entry is most of what capture adds to the save, so this stays lean:
    ``bulk_create`` would build a model instance, compile a query and read back an id that
    capture never uses. JSON goes as text (as COPY sends it); ``None``, text and whole numbers
    as they are (what their fields would make of them); anything else (the time) prepared
    by its field, as ``bulk_create`` would.
    """
    sql = _INSERT_SQL.get(connection.vendor) or _insert_sql(connection)
    values = []
    for field in entry_fields():
        value = row[field.attname]
        if value is not None and field.attname in JSON_COLUMNS:
            values.append(json.dumps(value))
        elif value is None or type(value) in (str, int):
            values.append(value)
        else:
            values.append(field.get_db_prep_save(value, connection))
    with connection.cursor() as cursor:
        cursor.execute(sql, values)


def _insert_sql(connection: Any) -> str:
    """The one-row INSERT for this database (built once per vendor)."""
    placeholders = []
    for field in entry_fields():
        # Text into these PostgreSQL columns needs a cast when the driver binds on the server.
        cast = field.db_type(connection) if connection.vendor == "postgresql" else None
        placeholders.append(f"%s::{cast}" if cast in ("jsonb", "inet") else "%s")
    table = connection.ops.quote_name(AuditLogEntry._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(f.column) for f in entry_fields())
    sql = f"INSERT INTO {table} ({columns}) VALUES ({', '.join(placeholders)})"  # noqa: S608
    _INSERT_SQL[connection.vendor] = sql
    return sql


def _copy(connection: Any, rows: list[dict[str, Any]]) -> None:
    """Insert rows with PostgreSQL's COPY, inside the caller's transaction."""
    fields = entry_fields()
    sql = (
        f"COPY {AuditLogEntry._meta.db_table} "
        f"({', '.join(connection.ops.quote_name(f.column) for f in fields)}) FROM STDIN"
    )
    names = [f.attname for f in fields]
    started = time.monotonic()
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for row in rows:
            copy.write_row(
                [
                    json.dumps(row[n]) if n in JSON_COLUMNS and row[n] is not None else row[n]
                    for n in names
                ]
            )
    if connection.queries_logged:
        # COPY bypasses Django's cursor wrapper; log it like any other statement.
        connection.queries_log.append(
            {"sql": f"{sql} -- {len(rows)} rows", "time": f"{time.monotonic() - started:.3f}"}
        )


@contextmanager
def entry_batch() -> Iterator[None]:
    """Collect the entries recorded inside the block and insert them together at its end.

    The block runs in a transaction, so the changes and their entries commit as one.
    """
    if _batch.get() is not None:
        yield
        return
    buffer: list[dict[str, Any]] = []
    token = _batch.set(buffer)
    try:
        with transaction.atomic():
            yield
            _batch.reset(token)
            token = None
            record_rows(buffer)
    finally:
        if token is not None:
            _batch.reset(token)
