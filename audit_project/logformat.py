"""``LOG_FORMAT=json``: one JSON object per log line, for a log pipeline to index.

Each line carries ``time`` (UTC), ``level``, ``logger``, ``message``, ``event`` and its fields
when the record names one (``extra={"event": ..., "event_fields": {...}}``), and the request id,
tenant id and user id where they are known (``null`` otherwise): from the audit context a
request or task bound (auditlog/context.py), or from the request Django attaches to its own
``django.request`` lines, which are written after the middleware has unbound the context.
Nothing else of the request is read, so no header, cookie or key can reach a log line, and
a user is only reported once something authenticated them: the formatter never evaluates a
lazy ``request.user`` (that would query the database from inside logging).

Used by Django's ``LOGGING`` (settings/base.py) and by gunicorn's own loggers
(gunicorn.conf.py), so every line a web process writes is JSON.
"""

import json
import logging
from datetime import UTC, datetime
from typing import Any

from django.utils.functional import LazyObject, empty


def _known_user(request: Any) -> Any:
    """The request's authenticated user, if something already resolved it."""
    user = getattr(request, "__dict__", {}).get("user")
    if isinstance(user, LazyObject):
        user = None if user._wrapped is empty else user._wrapped
    return user if getattr(user, "is_authenticated", False) else None


def request_fields(record: logging.LogRecord) -> dict[str, Any]:
    """request_id, tenant_id and user_id of the work a record was logged in, where known."""
    from auditlog.context import bound

    ctx = bound()
    request = getattr(record, "request", None) or (ctx.request if ctx else None)
    request_id = ctx.request_id if ctx else getattr(request, "audit_request_id", None)
    user = _known_user(request) if request is not None else None
    if user is None and ctx is not None:
        user = ctx.actor
    return {
        "request_id": request_id,
        "tenant_id": getattr(user, "tenant_id", None),
        "user_id": getattr(user, "pk", None),
    }


class JsonFormatter(logging.Formatter):
    """Formats a record as one line of JSON (see the module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **request_fields(record),
        }
        if isinstance(getattr(record, "event", None), str):
            # A named event (sign_in_ip_lockout, ...) and its fields: what alerts match on.
            line["event"] = record.event
            for name, value in getattr(record, "event_fields", {}).items():
                line.setdefault(name, value)
        if isinstance(getattr(record, "status_code", None), int):
            line["status_code"] = record.status_code
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)
