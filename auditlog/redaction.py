"""Secrets never reach an entry: their keys stay, their values become ``"REDACTED"``."""

import datetime
import decimal
import uuid
from typing import Any

REDACTED = "REDACTED"

# Keys that are secret wherever they appear, in addition to the fields a model marks secret.
SECRET_KEYS = frozenset(
    {
        "password",
        "secret",
        "token",
        "api_key",
        "key_hash",
        "client_secret",
        "secret_key",
        "private_key",
        "access_key",
        "aws_secret_key",
        "awssecretkey",
        "oauthclientsecret",
    }
)


def is_secret_key(key: str, secret_fields: frozenset[str] = frozenset()) -> bool:
    """Whether a value stored under ``key`` must be redacted."""
    return key in secret_fields or key.lower() in SECRET_KEYS


def redact(value: Any, secret_fields: frozenset[str] = frozenset()) -> Any:
    """A JSON-ready copy of ``value`` with every secret value replaced by ``REDACTED``."""
    if isinstance(value, dict):
        return {
            str(k): REDACTED if is_secret_key(str(k), secret_fields) else redact(v, secret_fields)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [redact(v, secret_fields) for v in value]
    return to_json(value)


def to_json(value: Any) -> Any:
    """A plain JSON value for a model field value."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return REDACTED
    if isinstance(value, dict | list | tuple):
        return redact(value)
    return str(value)
