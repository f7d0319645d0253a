"""gunicorn's access log without query-string secrets (``logger_class`` in gunicorn.conf.py)."""

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from gunicorn.glogging import Logger

# A parameter whose name holds one of these is logged as REDACTED: a client that puts its
# key in the URL (refused with 401, but logged all the same) must not leave it in the log.
SECRET_NAME = re.compile(
    r"key|token|secret|passw|signature|sig$|auth|session|credential|cookie|code", re.IGNORECASE
)


def redacted_query(query: str) -> str:
    """The query string with the values of secret-looking parameters replaced by REDACTED."""
    if not query:
        return query
    pairs = parse_qsl(query, keep_blank_values=True)
    return urlencode(
        [(name, "REDACTED" if SECRET_NAME.search(name) else value) for name, value in pairs],
        safe="/:,",
    )


def redacted_url(url: str) -> str:
    """A path or URL with its query string redacted."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(query=redacted_query(parts.query)))


class RedactingLogger(Logger):
    """gunicorn's logger, with the request line, query and referer redacted."""

    def atoms(self, resp, req, environ, request_time) -> dict:
        atoms = super().atoms(resp, req, environ, request_time)
        method, protocol = environ["REQUEST_METHOD"], environ["SERVER_PROTOCOL"]
        atoms["r"] = f"{method} {redacted_url(environ['RAW_URI'])} {protocol}"
        atoms["q"] = redacted_query(environ.get("QUERY_STRING", ""))
        atoms["f"] = redacted_url(atoms["f"]) if atoms["f"] != "-" else "-"
        # Request headers are atoms too ({name}i): none of ours is logged, keep it so.
        for name in [name for name in atoms if name.endswith("}i")]:
            if SECRET_NAME.search(name):
                atoms[name] = "REDACTED"
        return atoms
