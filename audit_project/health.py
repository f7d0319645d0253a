"""Liveness and readiness probes: ``GET /healthz`` and ``GET /readyz``.

``/healthz`` says the process answers; it touches nothing else, so a database outage never
makes an orchestrator restart healthy web processes. ``/readyz`` says this process can serve
traffic: it runs every check named in ``settings.READINESS_CHECKS`` (database, pending
migrations, cache, Celery broker, collected static files; a later check such as a default
partition is one more line there) and answers 503 when any is not "ok". The body names each
check and its result, nothing more: the probes need no authentication, so why a check
failed goes to the log (any password in a URL masked), never to the caller, and neither
probe shows versions or hosts.

Both are answered by ``ProbeMiddleware``, first in the chain: before the HTTPS redirect and
before host validation, because a load balancer probes each instance over plain HTTP by its
address, which is not in ``ALLOWED_HOSTS``. That is safe because the probes build no URL,
set no cookie and read nothing a forged Host header could poison; every other path is
redirected and validated exactly as before.
"""

import logging
import re
import uuid
from collections.abc import Callable

from django.conf import settings
from django.contrib.staticfiles.storage import ManifestFilesMixin, staticfiles_storage
from django.core.cache import cache
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.module_loading import import_string
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

logger = logging.getLogger(__name__)

BROKER_TIMEOUT_SECONDS = 3
_URL_CREDENTIALS = re.compile(r"(?<=://)[^/@\s]+@")


class NotReady(Exception):
    """Raised by a check with a short public word for its state (e.g. "pending")."""

    def __init__(self, state: str) -> None:
        super().__init__(state)
        self.state = state


def database_reachable() -> None:
    """The default database answers a query."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def migrations_applied() -> None:
    """No migration of this code is unapplied (a deploy migrates before it serves)."""
    executor = MigrationExecutor(connection)
    if executor.migration_plan(executor.loader.graph.leaf_nodes()):
        raise NotReady("pending")


def cache_reachable() -> None:
    """The cache (Redis in production; it holds the API's rate limits) stores and reads."""
    key = f"readyz:{uuid.uuid4().hex}"
    cache.set(key, "1", timeout=10)
    if cache.get(key) != "1":
        raise NotReady("failed")
    cache.delete(key)


def static_files_collected() -> None:
    """With hashed static names (production), collectstatic's manifest is there: without it
    every page that links a stylesheet would fail."""
    if isinstance(staticfiles_storage, ManifestFilesMixin) and not staticfiles_storage.hashed_files:
        raise NotReady("missing")


def broker_reachable() -> None:
    """The Celery broker accepts a connection (one try, bounded by a timeout)."""
    from audit_project.celery import app

    with app.connection_for_write(connect_timeout=BROKER_TIMEOUT_SECONDS) as conn:
        conn.ensure_connection(max_retries=0, timeout=BROKER_TIMEOUT_SECONDS)


def _masked(exc: Exception) -> str:
    return _URL_CREDENTIALS.sub("***@", f"{type(exc).__name__}: {exc}")


def readiness() -> dict[str, str]:
    """Each configured check's result: "ok", a ``NotReady`` state, or "failed"."""
    results = {}
    for name, path in settings.READINESS_CHECKS.items():
        try:
            import_string(path)()
            results[name] = "ok"
        except NotReady as exc:
            results[name] = exc.state
            logger.warning("readiness check %s: %s", name, exc.state)
        except Exception as exc:  # any failure means "not ready", never a 500
            results[name] = "failed"
            logger.warning("readiness check %s failed: %s", name, _masked(exc))
    return results


@never_cache
@require_safe
def healthz(request: HttpRequest) -> HttpResponse:
    """The process answers."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_safe
def readyz(request: HttpRequest) -> HttpResponse:
    """200 when every readiness check is "ok", else 503; the body names each result."""
    checks = readiness()
    ready = all(state == "ok" for state in checks.values())
    return JsonResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks},
        status=200 if ready else 503,
    )


PROBES: dict[str, Callable[[HttpRequest], HttpResponse]] = {
    "/healthz": healthz,
    "/readyz": readyz,
}


class ProbeMiddleware:
    """Answers the probes before host validation and the HTTPS redirect (see above)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        probe = PROBES.get(request.path_info)
        return probe(request) if probe else self.get_response(request)
