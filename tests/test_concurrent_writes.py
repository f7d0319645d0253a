"""Concurrent writers through the HTTP API against a live server: none fails, none is lost.

Sixteen threads create credentials at once through ``POST /api/v1/credentials/``, each
request with its own ``X-Request-ID``. Every request must succeed and leave exactly one
``CredentialSave`` entry, carrying that id as its client request id and naming the
credential it created. The server is the dev server ``scripts/run`` starts (local settings),
as a real process: on a SQLite file configured by the settings (WAL, a busy timeout,
``BEGIN IMMEDIATE``), and on PostgreSQL.
"""

import json
import sqlite3
import sys
import threading
import uuid
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.db import connection

from auditlog.models import AuditLogEntry

from .servers import LiveServer, free_port, product_env, run, serving, shared_database_url

WRITERS = 16
WRITES_EACH = 8


@dataclass(frozen=True)
class Target:
    """A live server and what a writer needs: an owner's API key and a team."""

    server: LiveServer
    key: str
    team_id: int

    def headers(self, **extra: str) -> dict:
        return {"Authorization": f"Bearer {self.key}", **extra}


def dev_server(env: dict, log: Path, port: int):
    """``manage.py runserver`` as scripts/run starts it (threaded), without the reloader."""
    command = [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"]
    return serving(command, env, log, port)


def local_env(database_url: str) -> dict:
    """scripts/run's settings on ``database_url``; no Redis (writes enqueue no task)."""
    return product_env(
        DJANGO_SETTINGS_MODULE="audit_project.settings.local",
        DATABASE_URL=database_url,
        REDIS_URL=None,
        CELERY_BROKER_URL="memory://",
    )


def write_concurrently(target: Target) -> dict[str, str]:
    """``WRITERS`` threads, ``WRITES_EACH`` credentials each; request id -> credential id."""
    start = threading.Barrier(WRITERS)
    created: dict[str, str] = {}
    failed: list[tuple[str, int, bytes]] = []

    def writer(n: int) -> None:
        start.wait()
        for i in range(WRITES_EACH):
            request_id = f"w{n}-{i}-{uuid.uuid4().hex[:12]}"
            response = target.server.request(
                "POST",
                "/api/v1/credentials/",
                headers=target.headers(**{"X-Request-ID": request_id}),
                body={"team": target.team_id, "name": f"cred {request_id}", "value": "v"},
            )
            if response.status == 201:
                created[request_id] = str(response.json()["id"])
            else:
                failed.append((request_id, response.status, response.body[:300]))

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failed == [], f"{len(failed)} of {WRITERS * WRITES_EACH} failed: {failed[:3]}"
    assert len(created) == WRITERS * WRITES_EACH
    return created


def assert_one_entry_each(created: dict[str, str], rows: list[tuple[str, str]]) -> None:
    """``rows``: (client request id, target id) of the CredentialSave entries of those requests."""
    entries = defaultdict(list)
    for request_id, target_id in rows:
        entries[request_id].append(target_id)
    assert dict(entries) == {request_id: [cid] for request_id, cid in created.items()}


@pytest.mark.skipif(
    connection.vendor != "sqlite", reason="the SQLite pass of scripts/test runs this one"
)
def test_sqlite_file_takes_sixteen_concurrent_writers(tmp_path):
    db = tmp_path / "db.sqlite3"
    env = local_env(f"sqlite:///{db}")
    run(["migrate", "--noinput", "-v", "0"], env)
    logins = json.loads(run(["seed_demo", "--json"], env))
    key = next(u["api_key"] for u in logins["tenants"][0]["users"] if u["role"] == "owner")
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    port = free_port()
    with dev_server(env, tmp_path / "server.log", port) as server:
        teams = server.get("/api/v1/teams/", headers={"Authorization": f"Bearer {key}"})
        assert teams.status == 200, teams.body
        created = write_concurrently(Target(server, key, teams.json()["results"][0]["id"]))

    with sqlite3.connect(db) as conn:
        saves = conn.execute(
            "SELECT client_request_id, target_id FROM auditlog_auditlogentry"
            " WHERE operation_name = 'CredentialSave'"
        ).fetchall()
    rows = [(request_id, target_id) for request_id, target_id in saves if request_id in created]
    assert_one_entry_each(created, rows)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL pass only")
def test_postgresql_takes_sixteen_concurrent_writers(transactional_db, world_a, tmp_path):
    env = local_env(shared_database_url())
    port = free_port()
    with dev_server(env, tmp_path / "server.log", port) as server:
        created = write_concurrently(Target(server, world_a.keys["owner"], world_a.team.pk))

    rows = AuditLogEntry.objects.filter(
        operation_name="CredentialSave", client_request_id__in=list(created)
    ).values_list("client_request_id", "target_id")
    assert_one_entry_each(created, list(rows))
