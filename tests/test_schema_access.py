"""Who may read the OpenAPI schema and its docs: ``API_SCHEMA_PUBLIC`` decides."""

import pytest

URLS = ["/api/v1/schema?format=json", "/api/v1/docs"]


@pytest.mark.parametrize("url", URLS)
def test_public_by_default(client, db, url):
    assert client.get(url).status_code == 200


@pytest.mark.parametrize("url", URLS)
def test_private_schema_refuses_anonymous(client, db, settings, url):
    settings.API_SCHEMA_PUBLIC = False
    response = client.get(url)
    assert response.status_code in (401, 403)
    assert "openapi" not in response.content.decode()


@pytest.mark.parametrize("url", URLS)
def test_private_schema_serves_a_signed_in_user_and_a_key(client, api, world_a, settings, url):
    settings.API_SCHEMA_PUBLIC = False
    client.force_login(world_a.member)
    assert client.get(url).status_code == 200
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {world_a.keys['member']}")
    assert api.get(url).status_code == 200


@pytest.mark.parametrize("url", ["/api/v1/schema", "/api/v1/schema?format=yaml", URLS[0]])
def test_private_schema_refuses_in_json_with_www_authenticate(client, db, settings, url):
    settings.API_SCHEMA_PUBLIC = False
    response = client.get(url)
    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert response.json() == {"detail": "Authentication credentials were not provided."}


def test_public_schema_is_still_yaml_by_default(client, db):
    response = client.get("/api/v1/schema")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.oai.openapi")
    assert response.content.startswith(b"openapi:")
