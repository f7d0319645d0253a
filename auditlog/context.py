"""Who is acting, from where: the request (or task) context every entry is written with."""

import ipaddress
import re
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.http import HttpRequest

ACTOR_USER = "user"
ACTOR_API_KEY = "api_key"
ACTOR_SYSTEM = "system"
ACTOR_TASK = "task"
ACTOR_ANONYMOUS = "anonymous"
ACTOR_TYPES = (ACTOR_USER, ACTOR_API_KEY, ACTOR_SYSTEM, ACTOR_TASK, ACTOR_ANONYMOUS)

# Lengths of the entry's request columns (the model uses these too).
USER_AGENT_LENGTH = 512
REQUEST_ID_LENGTH = 64

_REQUEST_ID = re.compile(rf"[A-Za-z0-9._-]{{1,{REQUEST_ID_LENGTH}}}")
# Control characters (NUL, which PostgreSQL cannot store in text, among them) and lone
# surrogates (which no UTF-8 database can store).
_UNSTORABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def new_request_id() -> str:
    """A fresh request id: 32 hex digits, the first 12 of them the time in milliseconds.

    Time first, so that the entries of new requests land together at the end of the tenant's
    range of the request-id index: a random id lands on a random page of the tenant's whole
    history, which in a large log costs a page read and a full-page WAL image per entry.
    The other 80 bits are random, so ids stay unique and unguessable.
    """
    return f"{time.time_ns() // 1_000_000:012x}{secrets.token_hex(10)}"


@dataclass(frozen=True)
class AuditContext:
    """The circumstances of the current unit of work."""

    request: HttpRequest | None = None
    actor: Any = None
    actor_type: str = ACTOR_SYSTEM
    request_ip: str | None = None
    request_user_agent: str = ""
    request_id: str = field(default_factory=new_request_id)
    # What the client sent as X-Request-ID, kept apart: an id the client chooses must not pass
    # for the server's (it could name another request's entries).
    client_request_id: str | None = None


_current: ContextVar[AuditContext | None] = ContextVar("audit_context", default=None)


def current() -> AuditContext:
    """The active context; outside any request or task, a fresh ``system`` context."""
    return _current.get() or AuditContext()


def bound() -> AuditContext | None:
    """The context a request or task bound, if any (a log line must not invent one)."""
    return _current.get()


@contextmanager
def audit_context(**kwargs: Any) -> Iterator[AuditContext]:
    """Run a block (a task, a command) under an explicit actor, e.g. ``actor_type="task"``."""
    ctx = AuditContext(**kwargs)
    token = _current.set(ctx)
    try:
        yield ctx
    finally:
        _current.reset(token)


def header_text(value: str, max_length: int) -> str:
    """A header's value as every database can store it, so no header can prevent an entry.

    Unstorable characters are escaped (``\\x00``, ``\\ud800``) rather than dropped, so a
    reader still sees what was sent; the result is cut to the column's length.
    """
    return _UNSTORABLE.sub(_escape, value)[:max_length]


def _escape(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def client_ip(request: HttpRequest) -> str | None:
    """The client address: the socket, or the hop the last trusted proxy saw.

    An IPv6 zone (``fe80::1%eth0``) names an interface of the host that saw the address,
    means nothing elsewhere, and is not something an ``inet`` column stores: it is dropped.
    """
    address = request.META.get("REMOTE_ADDR")
    hops = settings.TRUSTED_PROXY_COUNT
    if hops > 0:
        forwarded = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        forwarded = [h for h in forwarded if h]
        # Each trusted proxy appends the address it saw; anything further left is client-supplied.
        if len(forwarded) >= hops:
            address = forwarded[-hops]
    try:
        return str(ipaddress.ip_address(address.partition("%")[0])) if address else None
    except ValueError:
        return None


def client_request_id_for(request: HttpRequest) -> str | None:
    """The caller's ``X-Request-ID`` when it is a sane token (None: absent or not sane)."""
    supplied = request.META.get("HTTP_X_REQUEST_ID", "")
    # fullmatch: ``$`` would let a trailing newline through.
    return supplied if _REQUEST_ID.fullmatch(supplied) else None


def context_for_request(request: HttpRequest) -> AuditContext:
    """A context whose actor is read from the request when an entry is written."""
    return AuditContext(
        request=request,
        actor_type=ACTOR_ANONYMOUS,
        request_ip=client_ip(request),
        request_user_agent=header_text(request.META.get("HTTP_USER_AGENT", ""), USER_AGENT_LENGTH),
        client_request_id=client_request_id_for(request),
    )


@contextmanager
def request_context(request: HttpRequest) -> Iterator[AuditContext]:
    """Bind the request's context for the duration of the block."""
    ctx = context_for_request(request)
    token = _current.set(ctx)
    try:
        yield ctx
    finally:
        _current.reset(token)


@dataclass(frozen=True)
class Actor:
    """The resolved actor of one entry."""

    user: Any
    actor_type: str
    api_key_id: int | None = None
    api_key_name: str = ""


def resolve_actor(ctx: AuditContext, user: Any = None) -> Actor:
    """Who acts now. Read at write time, so users that DRF authenticates by token are seen."""
    if ctx.request is None:
        return Actor(user=user or ctx.actor, actor_type=ctx.actor_type)
    request_user = getattr(ctx.request, "user", None)
    if user is None and request_user is not None and request_user.is_authenticated:
        user = request_user
    if user is None:
        return Actor(user=None, actor_type=ACTOR_ANONYMOUS)
    key = getattr(ctx.request, "auth", None)
    if key is not None and getattr(key, "key_hash", None):
        return Actor(user=user, actor_type=ACTOR_API_KEY, api_key_id=key.pk, api_key_name=key.name)
    return Actor(user=user, actor_type=ACTOR_USER)
