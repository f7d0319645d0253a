"""The OpenAPI schema of every API: what it documents, and the live API measured against it.

The fuzzer (schemathesis) runs against the real server (``live_server``: a thread serving
HTTP on a free port) and the schema it serves at ``/api/v1/schema``. Every operation in it
gets a bounded number of generated requests with an auditor's key (``AUDIT_LOG_READ``, a
viewer of the team, not an owner), then as many with an owner's. No response may be a
server error, and its status code, content type, headers and body must be ones the schema
documents for that operation.

- Each operation gets a tenant of its own, so the writes of one (a deleted team) never
  change what the next finds. The auditor goes first: it can change next to nothing.
- Requests are valid (positive) and invalid (negative, e.g. a string id or a missing
  field); half of them name the tenant's real objects in their path and body, the other
  half generated ids (nearly always none of the tenant's: 404, or a 400 naming the field).
- Writes go through the normal services and are audited like any other; each key is new,
  so its requests stay far below the rate limits (no setting is changed for the fuzzer).
- The generation is derandomized: the suite sends the same requests every run.
  ``OPENAPI_FUZZ_EXAMPLES=200 OPENAPI_FUZZ_RANDOM=1`` explores further, with new examples.

The errors the fuzzer cannot provoke (413, 415, 429, a missing key) are sent on purpose
and checked against the schema the same way.
"""

import os
import uuid
from dataclasses import dataclass

import hypothesis
import pytest
import requests
import schemathesis
from django.conf import settings as django_settings
from django.core.management import call_command
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from auditlog.models import AuditLogEntry
from tenants import services
from tenants.models import Membership

from . import factories

pytestmark = pytest.mark.django_db(transaction=True)

# Responses contradicting the schema. Not included: positive_data_acceptance (a valid body
# may still be refused, e.g. a duplicate team name: a documented 400) and
# negative_data_rejection (DRF accepts more than the schema promises, e.g. "yes" for true).
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
EXAMPLES = int(os.environ.get("OPENAPI_FUZZ_EXAMPLES", "6"))  # per operation and key
DERANDOMIZE = not os.environ.get("OPENAPI_FUZZ_RANDOM")
KEYS = ("auditor", "owner")


@dataclass
class FuzzedTenant:
    """A tenant with one object of each kind, its keys, and the ids requests may name."""

    keys: dict[str, str]
    path_ids: dict[str, dict[str, int]]  # per resource (first path segment)
    body_ids: dict[str, object]  # per body field


def fuzzed_tenant() -> FuzzedTenant:
    tenant = factories.tenant(f"Fuzz {uuid.uuid4().hex[:8]}")
    owner = factories.owner(tenant)
    auditor = factories.reader(tenant)
    member = factories.user(tenant)
    team = factories.team(tenant)
    services.membership_add(team=team, user=member, role=Membership.Role.EDITOR)
    services.membership_add(team=team, user=auditor, role=Membership.Role.VIEWER)
    credential = services.credential_create(team=team, name="Fuzzed", value="s3cr3t-value")
    resource = services.resource_create(team=team, name="Fuzzed", value="plain")
    story = factories.story(team)
    version = services.story_version_create(story=story, name="v1")
    page = services.page_create(story=story, name="Fuzzed")
    member_key, _ = services.api_key_create(user=member, name="member key")
    people = {"owner": owner, "auditor": auditor, "member": member}
    keys = {who: services.api_key_create(user=u, name=f"{who} key")[1] for who, u in people.items()}
    entry = AuditLogEntry.objects.filter(tenant=tenant).order_by("-id").first()
    return FuzzedTenant(
        keys=keys,
        path_ids={
            "users": {"id": member.pk},
            "teams": {"id": team.pk, "user_id": member.pk},
            "credentials": {"id": credential.pk},
            "resources": {"id": resource.pk},
            "stories": {"id": story.pk, "version_id": version.pk},
            "pages": {"id": page.pk},
            "api_keys": {"id": member_key.pk},
            "audit_logs": {"entry_id": entry.pk},
        },
        # The owner is in no team: adding them as a member can succeed.
        body_ids={
            "team": team.pk,
            "shared_with_teams": [team.pk],
            "story": story.pk,
            "user": owner.pk,
        },
    )


def cases(operation, tenant: FuzzedTenant):
    """Positive and negative cases; half name the tenant's objects (path and body)."""
    resource = operation.path.removeprefix("/api/v1/").split("/")[0]
    names = {parameter.name for parameter in operation.path_parameters}
    known = {k: v for k, v in tenant.path_ids.get(resource, {}).items() if k in names}

    def naming_objects(case):
        if isinstance(case.body, dict):
            case.body.update({k: v for k, v in tenant.body_ids.items() if k in case.body})
        return case

    strategies = []
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        strategies.append(operation.as_strategy(generation_mode=mode))
        strategies.append(
            operation.as_strategy(generation_mode=mode, path_parameters=known or None).map(
                naming_objects
            )
        )
    return st.one_of(strategies)


def fuzz(operation, *, tenant: FuzzedTenant, key: str, base_url: str) -> str | None:
    """Send the operation's cases; the first failure found, in words (None: none)."""
    session = requests.Session()
    headers = {"Authorization": f"Bearer {key}"}

    @hypothesis.settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=DERANDOMIZE,
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    @hypothesis.given(case=cases(operation, tenant))
    def run(case):
        case.call_and_validate(base_url=base_url, session=session, headers=headers, checks=CHECKS)

    try:
        run()
    # Schemathesis's report (with a curl line to replay it), or Hypothesis' on a failure that
    # did not recur while it was being narrowed down.
    except (AssertionError, FailureGroup, hypothesis.errors.Flaky) as exc:
        return str(exc)
    return None


def test_every_operation_answers_as_the_schema_says(live_server, s3_server):
    """``s3_server``: saving enabled export settings asks STS (the stand-in) about the role."""
    schema = schemathesis.openapi.from_url(f"{live_server.url}/api/v1/schema?format=json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 50  # the domain API, export settings and the audit log API
    failures = {}
    for operation in operations:
        tenant = fuzzed_tenant()
        for who in KEYS:
            failure = fuzz(operation, tenant=tenant, key=tenant.keys[who], base_url=live_server.url)
            if failure:
                failures[f"{operation.label} with the {who}'s key"] = failure
    assert not failures, "\n\n".join(f"{label}\n{text}" for label, text in failures.items())


# --- what the schema documents ----------------------------------------------------------

TAGS = {
    "audit_logs",
    "export_settings",
    "users",
    "teams",
    "credentials",
    "resources",
    "stories",
    "pages",
    "api_keys",
    "tenant",
}
UNSAFE = {"post", "put", "patch", "delete"}


def served(client) -> dict:
    response = client.get("/api/v1/schema", {"format": "json"})
    assert response.status_code == 200
    return response.json()


def operations_of(schema: dict):
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            yield path, method, operation


def test_schema_generates_without_a_warning(db, tmp_path):
    """drf-spectacular leaves out, with only a warning, a view it cannot read."""
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", tmp_path / "s.yaml")


def test_every_operation_is_tagged_and_documents_its_errors(client, db):
    schema = served(client)
    assert {tag["name"] for tag in schema["tags"]} == TAGS
    for path, method, operation in operations_of(schema):
        label = f"{method.upper()} {path}"
        assert len(operation["tags"]) == 1, label
        (tag,) = operation["tags"]
        assert tag in TAGS, label
        responses = operation["responses"]
        expected = {"401", "403", "429"}
        if method in UNSAFE:
            expected |= {"400", "413"}
        if "{" in path:
            expected.add("404")
        assert expected <= set(responses), label
        body = "Errors" if tag == "audit_logs" else "Detail"
        for code in ("401", "403", "429"):
            ref = responses[code]["content"]["application/json"]["schema"]["$ref"]
            assert ref == f"#/components/schemas/{body}", label
        if "413" in responses:
            ref = responses["413"]["content"]["application/json"]["schema"]["$ref"]
            assert ref == "#/components/schemas/Errors", label
        assert responses["401"]["headers"]["WWW-Authenticate"]["required"] is True
        assert responses["429"]["headers"]["Retry-After"]["required"] is True


def test_secrets_are_write_only_in_the_schema(client, db):
    components = served(client)["components"]["schemas"]

    def holding(field: str) -> set[str]:
        return {name for name, c in components.items() if field in c.get("properties", {})}

    # In requests only, write-only: a credential's value, an invited user's password.
    assert holding("password") == {"UserInviteRequest"}
    assert components["UserInviteRequest"]["properties"]["password"]["writeOnly"] is True
    credential_values = {n for n in holding("value") if "Credential" in n}
    assert credential_values == {"CredentialRequest", "PatchedCredentialRequest"}
    for name in credential_values:
        assert components[name]["properties"]["value"]["writeOnly"] is True
    # The raw API key: only in the response that creates it; its hash nowhere.
    assert holding("key") == {"ApiKeyCreated"}
    assert holding("key_hash") == set()


def test_request_ip_is_ipv4_or_ipv6(client, db):
    entry = served(client)["components"]["schemas"]["AuditLogEntry"]["properties"]
    formats = [option["format"] for option in entry["request_ip"]["anyOf"]]
    assert (formats, entry["request_ip"]["nullable"]) == (["ipv4", "ipv6"], True)


# --- errors the fuzzer cannot provoke, answered as documented ---------------------------

EXPORT = "/api/v1/audit_logs/export_settings"
JSON = {"Content-Type": "application/json"}


def errors_on_purpose(ids: dict) -> list[tuple]:
    """(key, method, documented path, path sent, request arguments, status it answers)."""
    team = f"/api/v1/teams/{ids['teams']['id']}/"
    far = "1099511627776"
    big = "x" * (django_settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)
    return [
        (None, "GET", "/api/v1/teams/", "/api/v1/teams/", {}, 401),
        ("unknown", "GET", "/api/v1/teams/", "/api/v1/teams/", {}, 401),
        (None, "GET", "/api/v1/audit_logs", "/api/v1/audit_logs", {}, 401),
        ("auditor", "GET", "/api/v1/users/", "/api/v1/users/", {}, 403),
        ("auditor", "PATCH", "/api/v1/teams/{id}/", team, {"json": {"name": "x"}}, 403),
        ("member", "GET", "/api/v1/audit_logs", "/api/v1/audit_logs", {}, 403),
        ("auditor", "PUT", EXPORT, EXPORT, {"json": {}}, 403),
        ("owner", "GET", "/api/v1/teams/{id}/", f"/api/v1/teams/{far}/", {}, 404),
        ("owner", "GET", "/api/v1/teams/", "/api/v1/teams/", {"params": {"page": 9}}, 404),
        ("owner", "GET", "/api/v1/audit_logs/{entry_id}", f"/api/v1/audit_logs/{far}", {}, 404),
        ("owner", "POST", "/api/v1/teams/", "/api/v1/teams/", {"json": {}}, 400),
        ("owner", "POST", "/api/v1/teams/", "/api/v1/teams/", {"data": "{", "headers": JSON}, 400),
        ("owner", "PUT", EXPORT, EXPORT, {"json": {"aws_secret_access_key": "x"}}, 400),
        (
            "owner",
            "GET",
            "/api/v1/audit_logs",
            "/api/v1/audit_logs",
            {"params": {"page": "x"}},
            400,
        ),
        ("owner", "POST", "/api/v1/teams/", "/api/v1/teams/", {"json": {"name": big}}, 413),
        ("owner", "PUT", EXPORT, EXPORT, {"json": {"prefix": big}}, 413),
        ("owner", "POST", "/api/v1/teams/", "/api/v1/teams/", {"data": "x", "headers": {}}, 415),
    ]


def test_errors_are_answered_as_documented(live_server, settings):
    tenant = fuzzed_tenant()
    tenant.keys["unknown"] = "tak_not-a-key"
    schema = schemathesis.openapi.from_url(f"{live_server.url}/api/v1/schema?format=json")
    for who, method, documented, path, kwargs, status in errors_on_purpose(tenant.path_ids):
        headers = {"Authorization": f"Bearer {tenant.keys[who]}"} if who else {}
        headers.update(kwargs.pop("headers", {}))
        if status == 415:
            headers["Content-Type"] = "text/plain"
        response = requests.request(
            method, live_server.url + path, headers=headers, timeout=30, **kwargs
        )
        assert response.status_code == status, (method, path, response.text[:300])
        assert response.headers["Content-Type"] == "application/json"
        schema[documented][method].validate_response(response)

    # Over the rate limits: 429 with Retry-After, in each API's own error format.
    settings.DOMAIN_API_RATE = settings.AUDIT_LOG_API_RATE = "1/min"
    headers = {"Authorization": f"Bearer {tenant.keys['owner']}"}
    for path in ("/api/v1/teams/", "/api/v1/audit_logs"):
        for _ in range(2):
            response = requests.get(live_server.url + path, headers=headers, timeout=30)
        assert response.status_code == 429
        assert int(response.headers["Retry-After"]) >= 1
        schema[path]["GET"].validate_response(response)
