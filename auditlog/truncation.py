"""How much of one value an entry keeps: a long string becomes a marker with its SHA-256.

An entry copies what was asked and what changed, so a 1 MB team description would be
stored whole, twice (``inputs`` and ``changes``), and the log would grow with whatever
clients send. A string of more than ``MAX_STRING_LENGTH`` characters is stored as::

    {"truncated": true, "length": N, "sha256": "<hex of its UTF-8>", "prefix": "<first
    PREFIX_LENGTH characters>"}

which says what it was and proves which value it was, without keeping it. Values are
truncated after redaction (``services.entry_row``, the one place entries are built, single
and bulk alike), so a secret is already ``"REDACTED"``: never cut, hashed or shown in part.
"""

import hashlib
from typing import Any

MAX_STRING_LENGTH = 4096
PREFIX_LENGTH = 1024


def truncate(value: Any) -> Any:
    """A JSON value with every string longer than ``MAX_STRING_LENGTH`` replaced by its marker."""
    if isinstance(value, str):
        return value if len(value) <= MAX_STRING_LENGTH else marker(value)
    if isinstance(value, dict):
        return {key: truncate(item) for key, item in value.items()}
    if isinstance(value, list):
        return [truncate(item) for item in value]
    return value


def marker(text: str) -> dict[str, Any]:
    """What an entry stores in place of ``text``."""
    return {
        "truncated": True,
        "length": len(text),
        "sha256": hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest(),
        "prefix": text[:PREFIX_LENGTH],
    }
