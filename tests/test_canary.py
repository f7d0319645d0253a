"""A canary secret planted through every write path must appear nowhere but in memory."""

import logging

import pytest
from django.db import connection

from tenants import services
from tenants.models import Credential

CANARY = "canary-7c1f0e9b-do-not-leak"


def canary(n: int) -> str:
    return f"{CANARY}-{n}"


def all_table_text() -> str:
    """Every row of every table, as text."""
    chunks = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608
            chunks += [repr(row) for row in cursor.fetchall()]
    return "\n".join(chunks)


@pytest.mark.django_db
def test_canary_secret_appears_in_no_table_and_no_log(world_a, api, client, caplog, settings):
    settings.DEBUG = True  # so that SQL and its parameters are logged too
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="django")
    connection.force_debug_cursor = True
    bodies = []
    try:
        # API: create and update a credential, invite a user with a password.
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {world_a.keys['owner']}")
        created = api.post(
            "/api/v1/credentials/",
            {"team": world_a.team.pk, "name": "api cred", "value": canary(1)},
            format="json",
        )
        assert created.status_code == 201, created.content
        bodies.append(created.content)
        updated = api.patch(
            f"/api/v1/credentials/{created.json()['id']}/", {"value": canary(2)}, format="json"
        )
        bodies.append(updated.content)
        invited = api.post(
            "/api/v1/users/",
            {"email": "canary@example.test", "password": canary(3), "name": "C"},
            format="json",
        )
        assert invited.status_code == 201, invited.content
        bodies.append(invited.content)
        bodies.append(api.get("/api/v1/credentials/").content)

        # Admin console: add a credential, then change its value.
        client.force_login(world_a.owner)
        form = {"team": world_a.team.pk, "name": "admin cred", "credential_type": "text"}
        response = client.post("/admin/tenants/credential/add/", {**form, "value": canary(4)})
        assert response.status_code == 302
        admin_cred = Credential.objects.get(name="admin cred")
        client.post(
            f"/admin/tenants/credential/{admin_cred.pk}/change/", {**form, "value": canary(5)}
        )
        bodies.append(client.get(f"/admin/tenants/credential/{admin_cred.pk}/change/").content)
        client.logout()

        # Bulk paths: update, bulk_create, bulk_update.
        Credential.objects.filter(tenant=world_a.tenant).update(value=canary(6))
        made = Credential.objects.bulk_create(
            [Credential(tenant=world_a.tenant, team=world_a.team, name="b", value=canary(7))]
        )
        made[0].value = canary(8)
        Credential.objects.bulk_update(made, ["value"])
        services.credential_update(credential=admin_cred, value=canary(9))

        # A failed sign-in with the canary as password, and a password change.
        client.post("/login/", {"username": world_a.member.email, "password": canary(10)})
        services.user_set_password(user=world_a.member, password=canary(11))
    finally:
        connection.force_debug_cursor = False

    assert Credential.objects.get(pk=admin_cred.pk).value == canary(9)  # it was stored
    assert CANARY not in all_table_text()
    assert "tenants_credential" in caplog.text  # SQL and its parameters were logged
    assert CANARY not in caplog.text
    assert not [body for body in bodies if CANARY.encode() in body]


@pytest.mark.django_db
def test_api_key_material_is_stored_nowhere(world_a):
    table_text = all_table_text()
    for raw in world_a.keys.values():
        assert raw not in table_text
        assert raw[4:12] not in table_text  # not even a prefix of the secret part
