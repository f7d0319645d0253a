"""Capture: every path records exactly the rows it changed, in the caller's transaction."""

import hashlib
import json

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from auditlog.context import audit_context
from auditlog.models import AuditLogEntry
from auditlog.services import BATCH_SIZE, COPY_THRESHOLD, record
from auditlog.truncation import MAX_STRING_LENGTH
from tenants import services
from tenants.models import Credential, Story, Team

from .. import factories

pytestmark = pytest.mark.django_db


def entries_after(last_id: int) -> list[AuditLogEntry]:
    return list(AuditLogEntry.objects.filter(id__gt=last_id).order_by("id"))


def last_id() -> int:
    return AuditLogEntry.objects.order_by("-id").values_list("id", flat=True).first() or 0


@pytest.fixture
def stories(world_a):
    return [factories.story(world_a.team, f"s{i}") for i in range(30)]


def test_save_that_changes_nothing_records_nothing(world_a):
    story = factories.story(world_a.team)
    start = last_id()
    services.story_update(story=story, name=story.name)
    story.save()
    assert entries_after(start) == []


def test_one_save_changing_two_things_records_each_operation(world_a):
    story = factories.story(world_a.team, "Old")
    start = last_id()
    services.story_update(story=story, name="New", locked=True)
    got = {e.operation_name: e.changes for e in entries_after(start)}
    assert got == {
        "StoryNameChange": {"name": ["Old", "New"]},
        "StoryLockedChange": {"locked": [False, True]},
    }


def test_queryset_update_records_one_entry_per_changed_row(world_a, stories):
    start = last_id()
    count = Story.objects.filter(name__in=["s0", "s1", "s2"]).update(locked=True)
    assert count == 3
    services.story_update(story=Story.objects.get(name="s3"), locked=True)
    start2 = last_id()
    # s3 is already locked: updating it again changes nothing and records nothing.
    Story.objects.filter(name="s3").update(locked=True)
    assert entries_after(start2) == []
    got = [e for e in entries_after(start) if e.id <= start2]
    assert [e.operation_name for e in got].count("StoryLockedChange") == 4
    names = sorted(e.target_repr for e in got)
    assert names == ["s0", "s1", "s2", "s3"]
    assert all(e.tenant_id == world_a.tenant.id and e.story_id for e in got)


def test_queryset_update_with_expression_records_real_after_values(world_a, stories):
    from django.db.models import F, Value
    from django.db.models.functions import Concat

    start = last_id()
    Story.objects.filter(name="s5").update(description=Concat(F("name"), Value("!")))
    (entry,) = entries_after(start)
    assert entry.operation_name == "StoryDescriptionChange"
    assert entry.changes == {"description": ["", "s5!"]}


@pytest.mark.parametrize("rows", [30, 300])
def test_bulk_update_inserts_entries_in_one_statement(world_a, rows):
    Story.objects.bulk_create(
        [Story(tenant=world_a.tenant, team=world_a.team, name=f"b{i}") for i in range(rows)]
    )
    start = last_id()
    with CaptureQueriesContext(connection) as ctx:
        Story.objects.filter(tenant=world_a.tenant).update(enabled=False)
    writes = [q for q in ctx.captured_queries if "auditlog_auditlogentry" in q["sql"]]
    columns = [f for f in AuditLogEntry._meta.concrete_fields if not f.primary_key]
    per_statement = min(BATCH_SIZE, connection.ops.bulk_batch_size(columns, [None] * rows))
    # One COPY or INSERT per batch, however many rows: PostgreSQL 1, SQLite ~rows/50.
    assert len(writes) == (1 if connection.vendor == "postgresql" else -(-rows // per_statement))
    assert len(entries_after(start)) == rows


def test_queryset_delete_records_each_row_and_cascade(world_a, stories):
    story = stories[0]
    services.story_version_create(story=story, name="v1")
    services.page_create(story=story, name="Intake form")
    start = last_id()
    with CaptureQueriesContext(connection) as ctx:
        Story.objects.filter(pk__in=[s.pk for s in stories[:5]]).delete()
    ops = [e.operation_name for e in entries_after(start)]
    assert ops.count("ArchivedStoryDeletion") == 5
    assert ops.count("StoryVersionDeletion") == 1
    assert ops.count("PageDestruction") == 1
    audit_inserts = [q for q in ctx.captured_queries if "auditlog_auditlogentry" in q["sql"]]
    assert len(audit_inserts) == 1


def test_bulk_create_and_bulk_update(world_a):
    start = last_id()
    made = Story.objects.bulk_create(
        [Story(tenant=world_a.tenant, team=world_a.team, name=f"b{i}") for i in range(3)]
    )
    created = entries_after(start)
    assert [e.operation_name for e in created] == ["StoryCreation"] * 3
    assert {e.target_id for e in created} == {str(s.pk) for s in made}
    made[0].name = "renamed"
    made[1].description = "described"
    start = last_id()
    Story.objects.bulk_update(made, ["name", "description"])
    got = sorted((e.operation_name, e.target_id) for e in entries_after(start))
    assert got == sorted(
        [("StoryNameChange", str(made[0].pk)), ("StoryDescriptionChange", str(made[1].pk))]
    )


def test_m2m_change_is_recorded(world_a):
    other = factories.team(world_a.tenant)
    cred = services.credential_create(team=world_a.team, name="c", value="v")
    start = last_id()
    cred.shared_with_teams.add(other)
    other.shared_credentials.remove(cred)
    got = [(e.operation_name, e.changes) for e in entries_after(start)]
    assert got == [
        ("CredentialSave", {"shared_with_teams": [[], [other.pk]]}),
        ("CredentialSave", {"shared_with_teams": [[other.pk], []]}),
    ]


def test_fail_closed_single_save(world_a):
    cred = services.credential_create(team=world_a.team, name="before", value="v")
    with pytest.raises(IntegrityError):
        _refuse_then(lambda: services.credential_update(credential=cred, name="after"))
    assert Credential.objects.get(pk=cred.pk).name == "before"


def test_fail_closed_bulk_update_and_delete(world_a, stories):
    with pytest.raises(IntegrityError):
        _refuse_then(lambda: Story.objects.filter(tenant=world_a.tenant).update(locked=True))
    assert not Story.objects.filter(locked=True).exists()
    with pytest.raises(IntegrityError):
        _refuse_then(lambda: Story.objects.filter(tenant=world_a.tenant).delete())
    assert Story.objects.filter(tenant=world_a.tenant).count() == 30


def test_fail_closed_unknown_operation_rolls_back(world_a):
    def rename_then_fail():
        with transaction.atomic():
            services.team_update(team=world_a.team, name="Renamed")
            record(operation_name="NoSuchOperation", tenant_id=world_a.tenant.id)

    with pytest.raises(KeyError):
        rename_then_fail()
    world_a.team.refresh_from_db()
    assert world_a.team.name != "Renamed"


def _refuse_then(action):
    """Run ``action`` in a savepoint while the database refuses entries, as a full disk would."""
    with transaction.atomic():
        _install_refusal()
        action()


def _install_refusal():
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "CREATE OR REPLACE FUNCTION test_refuse_insert() RETURNS trigger AS $$ BEGIN "
                "RAISE EXCEPTION 'no entries' USING ERRCODE = 'integrity_constraint_violation';"
                " END $$ LANGUAGE plpgsql"
            )
            cursor.execute(
                "CREATE TRIGGER test_refuse_insert BEFORE INSERT ON auditlog_auditlogentry "
                "FOR EACH ROW EXECUTE FUNCTION test_refuse_insert()"
            )
        else:
            cursor.execute(
                "CREATE TRIGGER test_refuse_insert BEFORE INSERT ON auditlog_auditlogentry "
                "BEGIN SELECT RAISE(ABORT, 'no entries'); END"
            )


def test_work_outside_requests_is_attributed_to_system_or_task(world_a):
    start = last_id()
    services.team_update(team=world_a.team, name="By a command")
    with audit_context(actor_type="task"):
        services.team_update(team=world_a.team, name="By a task")
    system, task = entries_after(start)
    assert (system.actor_type, system.user_id) == ("system", None)
    assert (task.actor_type, task.user_id) == ("task", None)


# --- how much of one value an entry keeps ----------------------------------------------------


def big(n: int, seed: str = "description ") -> str:
    return (seed * (n // len(seed) + 1))[:n]


def truncated(text: str) -> dict:
    """The marker an entry must hold for ``text`` (computed here, independently)."""
    digest = hashlib.sha256(text.encode()).hexdigest()
    return {"truncated": True, "length": len(text), "sha256": digest, "prefix": text[:1024]}


def test_api_write_of_a_1_mb_description_keeps_a_marker_not_the_value(api, world_a):
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {world_a.keys['owner']}")
    first, second = big(1_000_000), big(1_000_000, "another one ")
    response = api.post("/api/v1/teams/", {"name": "Big", "description": first}, format="json")
    assert response.status_code == 201, response.content[:300]
    team_id = response.json()["id"]
    response = api.patch(f"/api/v1/teams/{team_id}/", {"description": second}, format="json")
    assert response.status_code == 200, response.content[:300]
    assert Team.objects.get(pk=team_id).description == second  # the team keeps it all

    created = AuditLogEntry.objects.get(operation_name="TeamCreation", target_id=str(team_id))
    assert created.inputs["inputs"]["description"] == truncated(first)
    updated = AuditLogEntry.objects.get(operation_name="TeamUpdate", target_id=str(team_id))
    assert updated.changes == {"description": [truncated(first), truncated(second)]}
    assert updated.inputs == {"inputs": {"id": team_id, "description": truncated(second)}}
    row = AuditLogEntry.objects.filter(pk=updated.pk).values("inputs", "changes")[0]
    assert len(json.dumps(row)) < 5_000


def test_strings_up_to_the_cap_are_kept_whole(world_a):
    services.team_update(team=world_a.team, description=big(MAX_STRING_LENGTH))
    entry = AuditLogEntry.objects.get(operation_name="TeamUpdate")
    assert entry.changes["description"][1] == big(MAX_STRING_LENGTH)


@pytest.mark.parametrize("rows", [3, COPY_THRESHOLD])  # a multi-row INSERT, and COPY on PostgreSQL
def test_bulk_paths_keep_a_marker_not_the_value(world_a, rows):
    text = big(MAX_STRING_LENGTH + 1)
    start = last_id()
    created = Team.objects.bulk_create(
        [Team(tenant=world_a.tenant, name=f"Bulk {i}", description=text) for i in range(rows)]
    )
    longer = big(20_000, "longer ")
    Team.objects.filter(pk__in=[t.pk for t in created]).update(description=longer)
    entries = entries_after(start)
    assert [e.operation_name for e in entries] == ["TeamCreation"] * rows + ["TeamUpdate"] * rows
    for entry in entries[:rows]:
        assert entry.inputs["inputs"]["description"] == truncated(text)
    for entry in entries[rows:]:
        assert entry.changes == {"description": [truncated(text), truncated(longer)]}


def test_a_long_secret_is_redacted_never_truncated(world_a):
    secret = "canary-" + "s" * 10_000
    credential = services.credential_create(team=world_a.team, name="Long", value=secret)
    services.credential_update(credential=credential, value=secret + "2")
    entries = list(AuditLogEntry.objects.filter(target_type="credential").order_by("id"))
    assert [e.operation_name for e in entries] == ["CredentialSave", "CredentialSave"]
    assert entries[0].inputs["inputs"]["value"] == "REDACTED"
    assert entries[1].changes["value"] == ["REDACTED", "REDACTED"]
    stored = json.dumps(list(AuditLogEntry.objects.values("inputs", "changes", "outputs")))
    assert "canary-" not in stored
    assert hashlib.sha256(secret.encode()).hexdigest() not in stored


def test_an_entry_that_fails_dooms_the_whole_transaction_even_if_the_caller_swallows_it(world_a):
    """A single save takes no savepoint: its failure marks the caller's transaction for rollback,
    so the change cannot be committed without its entry, whatever the caller does next."""
    from django.db.transaction import TransactionManagementError

    cred = services.credential_create(team=world_a.team, name="before", value="v")
    with transaction.atomic():
        _install_refusal()
        cred.name = "after"
        with pytest.raises(IntegrityError):
            cred.save()
        with pytest.raises(TransactionManagementError):
            Credential.objects.count()  # nothing more runs in this transaction
    assert Credential.objects.get(pk=cred.pk).name == "before"
