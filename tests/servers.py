"""The product started as another process, the way an operator runs it, for the tests that
need a live server: the dev server on a SQLite file, gunicorn with production settings.

Requests go through ``http.client``: no redirect is followed and no status raises, so a
test sees exactly what the server answered.
"""

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.db import connection

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def shared_database_url() -> str:
    """The test database (PostgreSQL) as a URL, for a process that a test starts."""
    db = connection.settings_dict
    return (
        f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST'] or '127.0.0.1'}:"
        f"{db['PORT'] or 5432}/{db['NAME']}"
    )


@dataclass(frozen=True)
class Response:
    """What the server answered."""

    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class LiveServer:
    """A running server process and its log file."""

    port: int
    process: subprocess.Popen
    log: Path

    def request(
        self, method: str, path: str, *, headers: dict | None = None, body: Any = None
    ) -> Response:
        """One request on a fresh connection; ``body`` is sent as JSON."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            headers = {"Host": "127.0.0.1", **(headers or {})}
            data = None
            if body is not None:
                data = json.dumps(body).encode()
                headers["Content-Type"] = "application/json"
            conn.request(method, path, body=data, headers=headers)
            answer = conn.getresponse()
            return Response(answer.status, answer.headers, answer.read())
        finally:
            conn.close()

    def get(self, path: str, **kwargs: Any) -> Response:
        return self.request("GET", path, **kwargs)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def run(args: list[str], env: dict) -> str:
    """Run ``manage.py`` with ``args`` to completion; its standard output."""
    done = subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@contextmanager
def serving(command: list[str], env: dict, log: Path, port: int) -> Iterator[LiveServer]:
    """Start ``command`` (which listens on ``port``), wait until it answers, stop it after."""
    with open(log, "wb") as out:
        process = subprocess.Popen(  # noqa: S603
            command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    server = LiveServer(port=port, process=process, log=log)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise AssertionError(f"the server exited:\n{server.log_text()[-3000:]}")
            try:
                server.get("/healthz")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"the server did not answer:\n{server.log_text()[-3000:]}"
                    ) from None
                time.sleep(0.2)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def product_env(**overrides: str | None) -> dict:
    """The test process's environment with ``overrides`` (``None`` removes a variable)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env
