"""LOG_FORMAT: plain lines by default, one JSON object per line with ``json``.

The JSON lines of a real gunicorn are tested in test_production_server.py; here, what the
formatter reads (and what it must not) and the switch itself, in a real process.
"""

import json
import logging
import subprocess
import sys

import pytest
from django.test import RequestFactory
from django.utils.functional import SimpleLazyObject

from audit_project.logformat import JsonFormatter
from auditlog.context import ACTOR_TASK, audit_context, request_context

from .servers import ROOT, product_env


def _line(record_logger: str = "tests.logformat", **extra) -> dict:
    record = logging.getLogger(record_logger).makeRecord(
        record_logger,
        logging.WARNING,
        __file__,
        1,
        "something %s",
        ("happened",),
        None,
        extra=extra,
    )
    return json.loads(JsonFormatter().format(record))


def test_a_line_in_a_request_names_the_request_tenant_and_user(db, world_a):
    request = RequestFactory().get("/", headers={"X-Request-ID": "req-123"})
    request.user = world_a.reader
    with request_context(request) as ctx:
        line = _line()
    assert line["message"] == "something happened"
    assert line["level"] == "WARNING"
    assert line["time"].endswith("Z")
    assert ctx.request_id != "req-123"  # the server's id, not the one the client sent
    assert (line["request_id"], line["tenant_id"], line["user_id"]) == (
        ctx.request_id,
        world_a.tenant.pk,
        world_a.reader.pk,
    )


def test_a_user_nobody_resolved_yet_is_not_looked_up():
    def resolve():
        raise AssertionError("the formatter evaluated request.user")

    request = RequestFactory().get("/")
    request.user = SimpleLazyObject(resolve)
    with request_context(request) as ctx:
        line = _line()
    assert (line["request_id"], line["tenant_id"], line["user_id"]) == (ctx.request_id, None, None)


def test_a_task_line_names_its_actor(db, world_a):
    with audit_context(actor=world_a.owner, actor_type=ACTOR_TASK, request_id="task-9"):
        line = _line()
    assert (line["request_id"], line["tenant_id"], line["user_id"]) == (
        "task-9",
        world_a.tenant.pk,
        world_a.owner.pk,
    )


def test_outside_any_request_no_id_is_invented():
    line = _line()
    assert (line["request_id"], line["tenant_id"], line["user_id"]) == (None, None, None)


def _log_hello(**env: str) -> subprocess.CompletedProcess:
    """A process that sets Django up (local settings) and logs one warning."""
    code = (
        "import django, logging; django.setup();"
        " logging.getLogger('probe').warning('hello %s', 'there')"
    )
    return subprocess.run(  # noqa: S603
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=product_env(DJANGO_SETTINGS_MODULE="audit_project.settings.local", **env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("log_format", "expected"),
    [
        (None, lambda line: line.endswith(" WARNING probe hello there")),
        ("json", lambda line: json.loads(line)["message"] == "hello there"),
    ],
)
def test_the_switch_in_a_real_process(log_format, expected):
    done = _log_hello(LOG_FORMAT=log_format)
    assert done.returncode == 0, done.stderr
    line = next(line for line in done.stderr.splitlines() if "hello there" in line)
    assert expected(line), line


def test_an_unknown_format_is_refused_at_start():
    done = _log_hello(LOG_FORMAT="xml")
    assert done.returncode != 0
    assert "LOG_FORMAT must be plain or json" in done.stderr


def test_a_named_event_brings_its_fields_and_keeps_the_line_s_own():
    line = _line(event="sign_in_ip_lockout", event_fields={"client_ip": "192.0.2.1", "level": 1})
    assert line["event"] == "sign_in_ip_lockout"
    assert line["client_ip"] == "192.0.2.1"
    assert line["level"] == "WARNING"  # a field never overwrites what every line carries
    assert "event" not in _line()
