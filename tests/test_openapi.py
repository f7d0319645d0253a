"""The OpenAPI schema against the live API: a schema-driven fuzzer (schemathesis).

The server runs for real (``live_server``, a thread serving HTTP on a free port) and the
schema is the one it serves at ``/api/v1/schema``. Every operation in it gets a bounded
number of generated requests with an auditor's key (``AUDIT_LOG_READ``, a viewer of the
team, not an owner), then as many with an owner's. Each response must be no server error,
and its status code, content type, headers and body must be ones the schema documents for
that operation.

- Each operation gets a tenant of its own, so the writes of one (a deleted team) never
  change what the next finds. The auditor goes first: it can change next to nothing.
- Requests are valid (positive) and invalid (negative, e.g. a string id or a missing
  field); half of them name the tenant's real objects in their path and body, the other
  half generated ids (nearly always none of the tenant's: 404, or a 400 naming the field).
- Writes go through the normal services and are audited like any other; each key is new,
  so its requests stay far below the rate limits (no setting is changed for this test).
- The generation is derandomized: the suite sends the same requests every run.
  ``OPENAPI_FUZZ_EXAMPLES=200 OPENAPI_FUZZ_RANDOM=1`` explores further, with new examples.
"""

import os
import uuid
from dataclasses import dataclass

import hypothesis
import pytest
import requests
import schemathesis
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
from .exports.conftest import s3_server  # noqa: F401  (export settings call STS)

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
    keys = {
        who: services.api_key_create(user=user, name=f"{who} key")[1]
        for who, user in (
            ("owner", owner),
            ("auditor", auditor),
        )
    }
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
        body_ids={"team": team.pk, "shared_with_teams": [team.pk], "story": story.pk},
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


def test_every_operation_answers_as_the_schema_says(live_server, s3_server):  # noqa: F811
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
