"""gunicorn's access log without query-string secrets (``logger_class`` in gunicorn.conf.py).

Every atom that carries a query string (the request line ``%(r)s``, ``%(q)s``, the referer
``%(f)s``, and the environ atoms ``RAW_URI``, ``QUERY_STRING``, ``HTTP_REFERER``) has it
redacted: a parameter whose name looks like a secret (``SECRET_NAME``, matched on the
decoded name), and any parameter holding one of our API keys whatever its name, is written
``name=REDACTED``; the path and every other parameter stay exactly as sent. Header atoms
(``{authorization}i``) and environ atoms (``{http_cookie}e``) whose names look like secrets
are redacted whole, so a log format that names one stays safe. The JSON log format formats
these same atoms, so it holds the same line.

Imported by gunicorn's master before Django is set up: nothing here may touch Django.
"""

import re
from typing import Any
from urllib.parse import unquote_plus

from gunicorn.glogging import Logger

REDACTED = "REDACTED"
# A parameter whose name holds one of these is logged as REDACTED: a client that puts its
# key in the URL (refused with 401, but logged all the same) must not leave it in the log.
SECRET_NAME = re.compile(
    r"key|token|secret|passw|signature|sig$|auth|session|credential|cookie|code", re.IGNORECASE
)
# tenants.models.ApiKey.PREFIX (not imported: Django is not set up in gunicorn's master).
API_KEY_PREFIX = "tak_"
QUERY_ATOMS = ("q", "{query_string}e")
URL_ATOMS = ("r", "f", "{raw_uri}e", "{http_referer}e")


def redacted_query(query: str) -> str:
    """The query string with the values of secret-looking parameters replaced by REDACTED."""
    parts = []
    for part in query.split("&"):
        name, sep, _ = part.partition("=")
        # Decoded first, so that %-encoding a name (api%5Fkey) or a key does not slip past.
        if SECRET_NAME.search(unquote_plus(name)) or API_KEY_PREFIX in unquote_plus(part).lower():
            part = f"{name}={REDACTED}" if sep else REDACTED
        parts.append(part)
    return "&".join(parts)


def redacted_url(text: str) -> str:
    """A path, URL or request line (``GET /path?query HTTP/1.1``) with its query redacted."""
    head, sep, rest = text.partition("?")
    if not sep:
        return text
    query, space, protocol = rest.partition(" ")
    query, hash_, fragment = query.partition("#")
    return f"{head}?{redacted_query(query)}{hash_}{fragment}{space}{protocol}"


class RedactingLogger(Logger):
    """gunicorn's logger, with query strings and secret-looking headers redacted."""

    def atoms(self, resp: Any, req: Any, environ: dict, request_time: Any) -> dict:
        atoms = super().atoms(resp, req, environ, request_time)
        for name in (*QUERY_ATOMS, *URL_ATOMS):
            if isinstance(atoms.get(name), str):
                redact = redacted_query if name in QUERY_ATOMS else redacted_url
                atoms[name] = redact(atoms[name])
        for name in atoms:
            if name.endswith(("}i", "}e")) and SECRET_NAME.search(name[1:-2]):
                atoms[name] = REDACTED
        return atoms
