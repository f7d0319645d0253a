"""Entries can never be altered: the database, the model and the queryset all refuse."""

import pytest
from django.db import DatabaseError, connection, transaction

from auditlog.context import audit_context
from auditlog.models import AppendOnlyError, AuditLogEntry
from tenants import services

from .. import factories

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE auditlog_auditlogentry SET operation_name = 'Forged'",
        "UPDATE auditlog_auditlogentry SET user_id = NULL",
        "DELETE FROM auditlog_auditlogentry",
    ],
)
def test_raw_sql_cannot_change_entries(world_a, sql):
    before = list(AuditLogEntry.objects.values())
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql)
    assert list(AuditLogEntry.objects.values()) == before


def test_model_and_queryset_refuse_changes(world_a):
    entry = AuditLogEntry.objects.first()
    entry.operation_name = "Forged"
    with pytest.raises(AppendOnlyError):
        entry.save()
    with pytest.raises(AppendOnlyError):
        entry.delete()
    with pytest.raises(AppendOnlyError):
        AuditLogEntry.objects.all().update(operation_name="Forged")
    with pytest.raises(AppendOnlyError):
        AuditLogEntry.objects.all().delete()
    assert not AuditLogEntry.objects.filter(operation_name="Forged").exists()


def test_deleting_objects_and_removing_users_keeps_their_entries(world_a):
    story = factories.story(world_a.team)
    services.story_archive(story=story)
    by_story = AuditLogEntry.objects.filter(story_id=story.pk).order_by("id")
    by_member = AuditLogEntry.objects.filter(user=world_a.member).order_by("id")
    story_entries = list(by_story.values())
    with audit_context(actor=world_a.member, actor_type="user"):
        services.api_key_create(user=world_a.member, name="another")
    member_entries = list(by_member.values())
    assert member_entries
    services.story_delete(story=story)
    services.user_remove(user=world_a.member)
    assert list(by_story.values())[:-1] == story_entries
    assert list(by_member.values()) == member_entries
    assert AuditLogEntry.objects.filter(
        operation_name="UserDeletion", target_id=str(world_a.member.pk)
    ).exists()
