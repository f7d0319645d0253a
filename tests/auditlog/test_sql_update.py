"""The one-statement ``update()`` (PostgreSQL) records exactly what the row-by-row path does."""

import threading

import pytest
from django.db import connection, connections, models, transaction
from django.db.models import F
from django.test.utils import CaptureQueriesContext

from auditlog import sql_update
from auditlog.context import audit_context
from auditlog.models import AuditLogEntry
from auditlog.services import stamp
from tenants import services
from tenants.models import ApiKey, Credential, Membership, Page, Story, Team, Tenant, User

from .. import factories

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the one-statement update is PostgreSQL's"
)

LONG = "naïve ☃ 𝄞 " * 500  # 5,000 characters, more UTF-8 bytes than characters
TRICKY = 'quote " backslash \\ newline \n tab \t control \x01 end'


def stored_entries(after_id: int) -> list[tuple]:
    """Every column of the entries after ``after_id`` as the database stores it (as text).

    ``id`` and ``created_at`` are left out: they differ between two runs by construction.
    """
    columns = [
        connection.ops.quote_name(f.column)
        for f in AuditLogEntry._meta.concrete_fields
        if f.attname not in ("id", "created_at")
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {', '.join(f'{c}::text' for c in columns)} "  # noqa: S608
            "FROM auditlog_auditlogentry WHERE id > %s ORDER BY target_id, operation_name",
            [after_id],
        )
        return cursor.fetchall()


def entries_of(run) -> list[tuple]:
    """The entries that ``run`` writes, in a savepoint that is rolled back afterwards."""
    start = AuditLogEntry.objects.order_by("-id").values_list("id", flat=True).first() or 0
    with transaction.atomic():
        run()
        entries = stored_entries(start)
        transaction.set_rollback(True)
    return entries


@pytest.fixture
def rows(world_a):
    """Stories, pages and teams in varied states: empty, long, tricky, already updated."""
    team = world_a.team
    stories = [factories.story(team, f"story {i}") for i in range(6)]
    descriptions = ["", "same", LONG, TRICKY, LONG + "x", "naïve"]
    for story, description in zip(stories, descriptions, strict=True):
        services.story_update(story=story, description=description)
    services.story_update(story=stories[1], locked=True)
    services.story_archive(story=stories[1])
    for story in stories[:3]:
        services.page_create(story=story, name=f"page of {story.name}")
    factories.team(world_a.tenant, "Second team")
    return stories


def _other_team(world):
    return Team.objects.get(tenant=world.tenant, name="Second team")


CASES = {
    "text, some rows unchanged": lambda w: (
        Story.objects.filter(tenant=w.tenant),
        {"description": "same"},
    ),
    "long text, truncated": lambda w: (
        Story.objects.filter(tenant=w.tenant),
        {"description": LONG + "y"},
    ),
    "tricky characters": lambda w: (Story.objects.filter(tenant=w.tenant), {"description": TRICKY}),
    "several operations per row": lambda w: (
        Story.objects.filter(tenant=w.tenant),
        {"name": "renamed", "locked": True, "archived": True, "enabled": False},
    ),
    "callable operation (restore)": lambda w: (
        Story.objects.filter(tenant=w.tenant),
        {"archived": False},
    ),
    "foreign key, by instance": lambda w: (
        Story.objects.filter(tenant=w.tenant),
        {"team": _other_team(w)},
    ),
    "foreign key, by id": lambda w: (
        Story.objects.filter(tenant=w.tenant),
        {"team_id": _other_team(w).pk},
    ),
    "filter through a join": lambda w: (
        Story.objects.filter(team__name=w.team.name, pages__isnull=False),
        {"description": "joined"},
    ),
    "team text": lambda w: (Team.objects.filter(tenant=w.tenant), {"description": TRICKY}),
    "page publish": lambda w: (Page.objects.filter(tenant=w.tenant), {"published": True}),
    "membership, no label column": lambda w: (
        Membership.objects.filter(tenant=w.tenant),
        {"role": Membership.Role.ADMIN},
    ),
    "user secret and role": lambda w: (
        User.objects.filter(tenant=w.tenant),
        {"password": "new-hash-value", "role": User.Role.OWNER, "name": "Same Name"},
    ),
    "api key secret": lambda w: (
        ApiKey.objects.filter(pk=ApiKey.objects.filter(tenant=w.tenant).first().pk),
        {"key_hash": "f" * 64, "name": "renamed key"},
    ),
    "tenant integer setting": lambda w: (
        Tenant.objects.filter(pk=w.tenant.pk),
        {"session_timeout_minutes": 30},
    ),
}


@pytest.mark.django_db
@pytest.mark.parametrize("case", CASES)
def test_one_statement_writes_the_same_entries_as_row_by_row(world_a, rows, case):
    queryset, kwargs = CASES[case](world_a)
    assert sql_update.update_statement(queryset, kwargs) is not None
    with audit_context(
        actor=world_a.owner, actor_type="user", request_ip="203.0.113.7", request_id="req-1"
    ):
        row_by_row = entries_of(lambda: queryset._update_row_by_row(kwargs))
        with CaptureQueriesContext(connection) as ctx:
            one_statement = entries_of(lambda: queryset.update(**kwargs))
    assert row_by_row  # every case changes something
    assert one_statement == row_by_row
    statements = [q["sql"] for q in ctx.captured_queries]
    assert sum(sql.startswith("WITH updated AS") for sql in statements) == 1
    assert not any("FOR UPDATE" in sql for sql in statements)  # it stood: no fallback


@pytest.mark.django_db
def test_one_statement_updates_the_rows_and_returns_the_count(world_a, rows):
    with CaptureQueriesContext(connection) as ctx:
        count = Story.objects.filter(tenant=world_a.tenant).update(description="new")
    assert count == 6
    assert set(
        Story.objects.filter(tenant=world_a.tenant).values_list("description", flat=True)
    ) == {"new"}
    writes = [q["sql"] for q in ctx.captured_queries if "auditlog_auditlogentry" in q["sql"]]
    assert len(writes) == 1
    assert writes[0].startswith("WITH updated AS")
    entry = AuditLogEntry.objects.get(
        operation_name="StoryDescriptionChange",
        target_id=str(rows[1].pk),
        changes__description=["same", "new"],
    )
    assert entry.inputs == {"inputs": {"id": rows[1].pk, "description": "new"}}
    assert entry.story_id == rows[1].pk
    assert entry.target_repr == "story 1"


@pytest.mark.django_db
def test_updates_sql_cannot_encode_exactly_take_the_row_by_row_path(world_a, rows):
    stories = Story.objects.filter(tenant=world_a.tenant)
    assert sql_update.update_statement(stories, {"description": F("name")}) is None
    assert sql_update.update_statement(stories, {"updated_at": rows[0].updated_at}) is None
    assert sql_update.update_statement(stories.values("pk"), {"description": "x"}) is None
    assert sql_update.update_statement(stories[:2], {"description": "x"}) is None
    credentials = Credential.objects.filter(tenant=world_a.tenant)
    assert sql_update.update_statement(credentials, {"value": "encrypted"}) is None
    users = User.objects.filter(tenant=world_a.tenant)
    assert sql_update.update_statement(users, {"is_active": False}) is not None
    # UserDeletion stands for the whole change: the row-by-row path decides that.
    assert sql_update.update_statement(users, {"removed_at": rows[0].updated_at}) is None


@pytest.mark.django_db(transaction=True)
def test_before_values_are_what_the_update_overwrote_when_another_writer_commits_first():
    """A row changed and committed by another transaction while the update waits for it."""
    world = factories.tenant("Race")
    team = factories.team(world)
    story = factories.story(team, "raced")
    locked = threading.Event()
    failures: list[BaseException] = []

    def other_writer():
        try:
            with transaction.atomic():
                models.QuerySet.update(Story.objects.filter(pk=story.pk), description="by B")
                locked.set()
                _wait_until_someone_waits_for_a_lock()
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)
            locked.set()
        finally:
            connections.close_all()

    thread = threading.Thread(target=other_writer)
    thread.start()
    assert locked.wait(10)
    with CaptureQueriesContext(connection) as ctx:
        Story.objects.filter(team=team).update(description="by A")
    thread.join(10)
    assert not failures
    entry = AuditLogEntry.objects.get(operation_name="StoryDescriptionChange")
    assert entry.changes == {"description": ["by B", "by A"]}
    # The one statement saw the row change under it and stood back; the row-by-row path
    # locked the row and read what it overwrote.
    statements = [q["sql"] for q in ctx.captured_queries]
    refused = next(i for i, sql in enumerate(statements) if sql.startswith("WITH updated AS"))
    assert statements[refused + 1].startswith("ROLLBACK TO SAVEPOINT")
    assert any("FOR UPDATE" in sql for sql in statements[refused + 1 :])


@pytest.mark.django_db
def test_the_statement_joins_no_guessed_set(world_a, rows):
    """Each row is paired with its own snapshot by ``ctid``; no join over a CTE (whose size
    the planner can only guess: a nested loop over one took seconds for 10,000 new rows)."""
    stories = Story.objects.filter(team=world_a.team)
    with transaction.atomic():
        sql, params = sql_update.update_statement(stories, {"description": "x"}).sql(stamp())
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
            plan = cursor.fetchone()[0][0]["Plan"]
        transaction.set_rollback(True)
    joins = [node for node in _nodes(plan) if node["Node Type"] in JOINS]
    assert all(
        child["Node Type"] != "CTE Scan" for join in joins for child in join.get("Plans", [])
    )


JOINS = {"Nested Loop", "Hash Join", "Merge Join"}


def _nodes(plan: dict):
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def _wait_until_someone_waits_for_a_lock(timeout: float = 10) -> None:
    import time

    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0]:
                return
            time.sleep(0.01)
    raise AssertionError("the update never waited for the row lock")
