"""The Tines-compatible audit log API: wire format, filters, paging, auth, errors, limits."""

import os
import re
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import jsonschema
import pytest
from django.contrib.staticfiles import finders
from django.core.cache import cache
from django.test import override_settings
from drf_spectacular.validation import validate_schema

from auditlog import pagination
from auditlog.models import AuditLogEntry
from auditlog.operations import OPERATIONS
from tenants import services
from tests import factories

URL = "/api/v1/audit_logs"
T0 = datetime(2024, 1, 1, 12, 0, 0, tzinfo=UTC)
OPS = ("StoryCreation", "CredentialSave", "PagePublish")
TARGET_TYPES = {"StoryCreation": "story", "CredentialSave": "credential", "PagePublish": "page"}


@pytest.fixture(autouse=True)
def _fresh_rate_limits(settings):
    """A private cache per test: rate-limit counters never leak between tests, and the
    suite's Redis (also the Celery broker) is never flushed."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": f"api-test-{uuid.uuid4().hex}",
        }
    }
    yield
    cache.clear()


def make_entries(world, count=12, start=T0, step=timedelta(minutes=1)):
    """``count`` entries of ``world`` at exact times, cycling users, operations, IPs, ids."""
    rows = []
    for i in range(count):
        op = OPS[i % 3]
        user = world.owner if i % 2 == 0 else world.reader
        rows.append(
            AuditLogEntry(
                tenant=world.tenant,
                created_at=start + i * step,
                operation_name=op,
                user=user,
                user_email=user.email,
                user_name=user.name,
                actor_type="user",
                request_ip=f"10.0.0.{i % 4}",
                request_id=f"req-{world.tenant.pk}-{i % 3}",
                target_type=TARGET_TYPES[op],
                target_id=str(1000 * world.tenant.pk + i),
                target_repr=f"{op} target {i}",
                story_id=500 + i if op == "StoryCreation" else None,
                inputs={"inputs": {"n": i}},
            )
        )
    return AuditLogEntry.objects.bulk_create(rows)


@pytest.fixture
def log(world_a):
    """Twelve entries of tenant A in 2024, one a minute (older than the fixture's own)."""
    return make_entries(world_a)


@pytest.fixture
def reader_api(api, world_a):
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {world_a.keys['reader']}")
    return api


def ids(response):
    assert response.status_code == 200, response.content
    return [entry["id"] for entry in response.json()["audit_logs"]]


def newest_first(entries):
    return [e.pk for e in sorted(entries, key=lambda e: (e.created_at, e.pk), reverse=True)]


def stamp(value):
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def query(url):
    return parse_qs(urlsplit(url).query)


# --- wire format -------------------------------------------------------------------------


def test_list_wire_format(reader_api, world_a, log):
    body = reader_api.get(URL, {"operation_name": "StoryCreation"}).json()
    assert set(body) == {"audit_logs", "meta"}
    entry = body["audit_logs"][0]
    newest = max((e for e in log if e.operation_name == "StoryCreation"), key=lambda e: e.pk)
    assert entry["id"] == newest.pk
    for field in ("id", "tenant_id", "user_id", "story_id"):
        assert type(entry[field]) is int, field
    assert entry["tenant_id"] == world_a.tenant.pk
    assert entry["created_at"] == entry["updated_at"]
    assert entry["created_at"].endswith("Z")
    assert entry["created_at"] == stamp(newest.created_at)
    assert entry["inputs"] == {"inputs": {"n": 9}}
    assert entry["outputs"] == {}
    assert entry["request_ip"] == "10.0.0.1"
    assert entry["user_email"] == newest.user_email
    assert entry["target"] == {"type": "story", "id": newest.target_id, "name": newest.target_repr}
    for field in ("request_user_agent", "user_name", "operation_name", "changes", "request_id"):
        assert field in entry
    meta = body["meta"]
    assert set(meta) >= {
        "current_page",
        "previous_page",
        "next_page",
        "next_page_number",
        "per_page",
        "pages",
        "count",
        "next_cursor",
    }


def test_null_user_and_story_are_json_null(reader_api, world_a):
    body = reader_api.get(URL, {"operation_name": "TenantCreation"}).json()
    (entry,) = body["audit_logs"]
    assert entry["user_id"] is None
    assert entry["story_id"] is None


def test_newest_first_ties_broken_by_id(reader_api, world_a):
    same = make_entries(world_a, count=4, step=timedelta(0))
    got = ids(reader_api.get(URL, {"before": stamp(T0 + timedelta(seconds=1))}))
    assert got == sorted((e.pk for e in same), reverse=True)


def test_trailing_slash_is_accepted(reader_api, log):
    assert ids(reader_api.get(URL + "/", {"before": stamp(T0 + timedelta(hours=1))})) == (
        newest_first(log)
    )


# --- filters -------------------------------------------------------------------------------


FILTERS = [
    ({"operation_name": "CredentialSave"}, lambda e, w: e.operation_name == "CredentialSave"),
    ({"target_type": "page"}, lambda e, w: e.target_type == "page"),
    ({"target_id": "{target3}"}, lambda e, w: e.target_id == str(1000 * w.tenant.pk + 3)),
    ({"request_ip": "10.0.0.2"}, lambda e, w: e.request_ip == "10.0.0.2"),
    ({"request_id": "req-{tenant}-1"}, lambda e, w: e.request_id.endswith("-1")),
    ({"user_id": "{owner}"}, lambda e, w: e.user_id == w.owner.pk),
    (
        {"before": stamp(T0 + timedelta(minutes=3))},
        lambda e, w: e.created_at < T0 + timedelta(minutes=3),
    ),
]


def _fill(params, world):
    return {
        k: v.format(
            tenant=world.tenant.pk, owner=world.owner.pk, target3=1000 * world.tenant.pk + 3
        )
        for k, v in params.items()
    }


@pytest.mark.parametrize(("params", "predicate"), FILTERS)
def test_each_filter_alone(reader_api, world_a, log, params, predicate):
    params = _fill(params, world_a)
    expected = newest_first([e for e in log if predicate(e, world_a)])
    assert expected
    assert ids(reader_api.get(URL, params)) == expected


def test_after_alone_is_exclusive(reader_api, log):
    boundary = log[8].created_at
    got = ids(reader_api.get(URL, {"after": stamp(boundary), "per_page": 500}))
    assert set(got) & {e.pk for e in log} == {e.pk for e in log[9:]}
    assert log[8].pk not in got


def test_range_filter(reader_api, world_a, log):
    got = ids(reader_api.get(URL, {"range": "24h", "per_page": 500}))
    assert not set(got) & {e.pk for e in log}  # 2024 is long ago
    assert got  # the fixture's own entries are from today


def test_filters_combined(reader_api, world_a, log):
    params = {
        "operation_name": ["StoryCreation", "PagePublish"],
        "user_id": str(world_a.owner.pk),
        "after": stamp(log[0].created_at),
        "before": stamp(log[11].created_at),
        "request_ip": "10.0.0.0",
    }
    expected = newest_first(
        [
            e
            for e in log
            if e.operation_name in ("StoryCreation", "PagePublish")
            and e.user_id == world_a.owner.pk
            and log[0].created_at < e.created_at < log[11].created_at
            and e.request_ip == "10.0.0.0"
        ]
    )
    assert expected
    assert ids(reader_api.get(URL, params)) == expected
    params["target_type"] = "story"
    assert ids(reader_api.get(URL, params)) == [
        pk for pk in expected if AuditLogEntry.objects.get(pk=pk).target_type == "story"
    ]


@pytest.mark.parametrize("style", ["scalar", "repeated", "brackets"])
def test_user_id_parameter_styles(reader_api, world_a, log, style):
    owner, reader = world_a.owner.pk, world_a.reader.pk
    query_string = {
        "scalar": f"user_id={reader}",
        "repeated": f"user_id={reader}&user_id={owner}",
        "brackets": f"user_id[]={reader}&user_id[]={owner}",
    }[style]
    wanted = {reader} if style == "scalar" else {reader, owner}
    # ``before`` leaves out the reader key's own (recorded) use.
    got = ids(reader_api.get(f"{URL}?{query_string}&per_page=500&before=2025-01-01T00:00:00Z"))
    assert got == newest_first([e for e in log if e.user_id in wanted])


@pytest.mark.parametrize("style", ["scalar", "repeated", "brackets"])
def test_operation_name_parameter_styles(reader_api, log, style):
    query_string = {
        "scalar": "operation_name=PagePublish",
        "repeated": "operation_name=PagePublish&operation_name=CredentialSave",
        "brackets": "operation_name[]=PagePublish&operation_name[]=CredentialSave",
    }[style]
    wanted = {"PagePublish"} if style == "scalar" else {"PagePublish", "CredentialSave"}
    got = ids(reader_api.get(f"{URL}?{query_string}&per_page=500"))
    assert got == newest_first([e for e in log if e.operation_name in wanted])


def test_brackets_and_plain_keys_combine(reader_api, log):
    got = ids(reader_api.get(f"{URL}?operation_name=PagePublish&operation_name[]=CredentialSave"))
    assert got == newest_first([e for e in log if e.operation_name != "StoryCreation"])


@pytest.mark.parametrize("name", ["NoSuchOperation", "storycreation", "STORYCREATION"])
def test_unknown_or_miscased_operation_matches_nothing(reader_api, log, name):
    response = reader_api.get(URL, {"operation_name": name})
    assert ids(response) == []
    assert response.json()["meta"]["count"] == 0


# --- before / after boundaries -------------------------------------------------------------


@pytest.fixture
def boundary(world_a):
    """Three entries one microsecond apart, around 2024-03-01T10:00:00.5Z."""
    t = datetime(2024, 3, 1, 10, 0, 0, 500_000, tzinfo=UTC)
    return make_entries(
        world_a, count=3, start=t - timedelta(microseconds=1), step=timedelta(microseconds=1)
    )


@pytest.mark.parametrize(
    "text",
    [
        "2024-03-01T10:00:00.500000Z",
        "2024-03-01T10:00:00.5Z",
        "2024-03-01T10:00:00.500+00:00",
        "2024-03-01T12:00:00.5+02:00",
        "2024-03-01T05:30:00.500000-04:30",
        "2024-03-01 12:00:00.5 02:00",  # a '+' left unencoded arrives as a space
    ],
)
def test_before_and_after_are_exclusive_in_any_notation(reader_api, boundary, text):
    before, _exact, after = boundary
    assert ids(reader_api.get(URL, {"after": text, "before": "2024-03-02T00:00:00Z"})) == [after.pk]
    assert ids(reader_api.get(URL, {"before": text, "after": "2024-03-01T00:00:00Z"})) == [
        before.pk
    ]
    got = ids(reader_api.get(URL, {"after": stamp(before.created_at), "before": text}))
    assert got == []


def test_whole_second_timestamps(reader_api, log):
    got = ids(
        reader_api.get(URL, {"after": "2024-01-01T12:02:00Z", "before": "2024-01-01T12:05:00Z"})
    )
    assert got == [log[4].pk, log[3].pk]


def test_after_last_created_at_never_skips(reader_api, boundary):
    """A client resuming from the last ``created_at`` it saw gets exactly the newer ones."""
    first = reader_api.get(URL, {"before": "2024-03-02T00:00:00Z", "per_page": 500}).json()
    oldest = first["audit_logs"][-1]["created_at"]
    assert oldest == stamp(boundary[0].created_at)
    got = ids(reader_api.get(URL, {"after": oldest, "before": "2024-03-02T00:00:00Z"}))
    assert got == [boundary[2].pk, boundary[1].pk]


# --- pagination and meta -------------------------------------------------------------------


def test_meta_first_middle_last_and_links_repeat_filters(reader_api, world_a, log):
    filters = f"user_id[]={world_a.owner.pk}&user_id[]={world_a.reader.pk}&target_type=story"
    stories = newest_first([e for e in log if e.target_type == "story"])  # 4 entries
    first = reader_api.get(f"{URL}?{filters}&per_page=2").json()
    meta = first["meta"]
    assert [e["id"] for e in first["audit_logs"]] == stories[:2]
    assert meta["per_page"] == 2
    assert meta["count"] == 4
    assert meta["pages"] == 2
    assert meta["previous_page"] is None
    assert meta["next_page_number"] == 2
    for link in ("current_page", "next_page"):
        assert meta[link].startswith("http://testserver/api/v1/audit_logs?")
    nxt = query(meta["next_page"])
    assert nxt["user_id[]"] == [str(world_a.owner.pk), str(world_a.reader.pk)]
    assert nxt["target_type"] == ["story"]
    assert nxt["page"] == ["2"]
    assert nxt["per_page"] == ["2"]
    assert "before" in nxt  # the anchor
    assert query(meta["current_page"])["page"] == ["1"]

    last = reader_api.get(meta["next_page"]).json()
    assert [e["id"] for e in last["audit_logs"]] == stories[2:]
    assert last["meta"]["next_page"] is None
    assert last["meta"]["next_page_number"] is None
    assert last["meta"]["next_cursor"] is None
    assert query(last["meta"]["previous_page"])["page"] == ["1"]
    assert query(last["meta"]["previous_page"])["before"] == nxt["before"]


def test_middle_page(reader_api, log):
    before = stamp(T0 + timedelta(hours=1))
    body = reader_api.get(URL, {"before": before, "per_page": 5, "page": 2}).json()
    assert [e["id"] for e in body["audit_logs"]] == newest_first(log)[5:10]
    meta = body["meta"]
    assert (meta["count"], meta["pages"], meta["next_page_number"]) == (12, 3, 3)
    assert query(meta["previous_page"])["page"] == ["1"]
    assert query(meta["next_page"])["page"] == ["3"]
    assert query(meta["next_page"])["before"] == [before]  # the caller's own, unchanged


def test_empty_before_is_replaced_by_the_anchor(reader_api, log):
    meta = reader_api.get(f"{URL}?before=&per_page=2").json()["meta"]
    (anchor,) = query(meta["next_page"])["before"]
    assert anchor.endswith("Z")


def test_empty_result_has_full_meta(reader_api, log):
    response = reader_api.get(URL, {"target_type": "nothing-has-this"})
    body = response.json()
    assert body["audit_logs"] == []
    meta = body["meta"]
    assert meta["count"] == 0
    assert meta["pages"] == 1
    assert meta["current_page"].startswith("http://testserver/")
    assert meta["previous_page"] is None
    assert meta["next_page"] is None
    assert meta["next_page_number"] is None
    assert meta["next_cursor"] is None


def test_page_beyond_the_end_is_empty(reader_api, log):
    body = reader_api.get(URL, {"page": 1000}).json()
    assert body["audit_logs"] == []
    assert body["meta"]["next_page"] is None


def _walk(client, url, between=None):
    """Follow ``next_page`` links to the end; ``between`` runs before each following page."""
    seen = []
    while url:
        body = client.get(url).json()
        seen.extend(e["id"] for e in body["audit_logs"])
        url = body["meta"]["next_page"]
        if url and between:
            between()
    return seen


@pytest.mark.parametrize("mode", ["page", "cursor"])
def test_paging_is_stable_while_entries_arrive(reader_api, world_a, log, mode):
    cursor_mode = mode == "cursor"
    existing = newest_first(AuditLogEntry.objects.filter(tenant=world_a.tenant))
    created = []

    def write_more():
        created.append(factories.team(world_a.tenant))
        services.api_key_create(user=world_a.owner, name=f"k{len(created)}")

    first_url = f"{URL}?per_page=4"
    if cursor_mode:
        first = reader_api.get(first_url).json()
        seen = [e["id"] for e in first["audit_logs"]]
        write_more()
        url = f"{URL}?per_page=4&cursor={first['meta']['next_cursor']}"
        seen += _walk(reader_api, url, between=write_more)
    else:
        seen = _walk(reader_api, first_url, between=write_more)
    assert len(created) >= 4
    # The key's first use is recorded by the first request, before the listing is read.
    used = list(
        AuditLogEntry.objects.filter(tenant=world_a.tenant, operation_name="AuthenticationTokenUse")
        .order_by("id")
        .values_list("id", flat=True)[:1]
    )
    assert seen == newest_first(AuditLogEntry.objects.filter(pk__in=existing + used))
    assert len(seen) == len(set(seen))


def test_cursor_walks_everything_once(reader_api, world_a, log):
    before = stamp(T0 + timedelta(hours=1))
    body = reader_api.get(URL, {"before": before, "per_page": 5}).json()
    seen = [e["id"] for e in body["audit_logs"]]
    cursor_links = 0
    while body["meta"]["next_cursor"]:
        body = reader_api.get(
            URL, {"before": before, "per_page": 5, "cursor": body["meta"]["next_cursor"]}
        ).json()
        seen += [e["id"] for e in body["audit_logs"]]
        cursor_links += 1
        if body["meta"]["next_page"]:
            assert query(body["meta"]["next_page"])["cursor"] == [body["meta"]["next_cursor"]]
    assert cursor_links == 2
    assert seen == newest_first(log)


def test_cursor_handles_ties_on_created_at(reader_api, world_a):
    same = make_entries(world_a, count=5, step=timedelta(0))
    params = {"before": stamp(T0 + timedelta(seconds=1)), "per_page": 2}
    seen = _walk(
        reader_api,
        f"{URL}?before={params['before']}&per_page=2&cursor="
        + (reader_api.get(URL, params).json()["meta"]["next_cursor"]),
    )
    first = ids(reader_api.get(URL, params))
    assert first + seen == sorted((e.pk for e in same), reverse=True)


def test_count_is_capped(reader_api, log, monkeypatch):
    monkeypatch.setattr(pagination, "COUNT_CAP", 5)
    before = stamp(T0 + timedelta(hours=1))
    meta = reader_api.get(URL, {"before": before, "per_page": 2}).json()["meta"]
    assert meta["count"] == 5
    assert meta["count_is_capped"] is True
    assert meta["next_page_number"] == 2
    assert _walk(reader_api, f"{URL}?before={before}&per_page=2") == newest_first(log)
    page6 = reader_api.get(URL, {"before": before, "per_page": 2, "page": 6}).json()
    assert page6["meta"]["pages"] >= 6
    assert page6["meta"]["next_page"] is None


@pytest.mark.parametrize(
    ("per_page", "expected"), [(None, 20), ("1", 1), ("500", 500), ("501", 500), ("100000", 500)]
)
def test_per_page_default_and_clamping(reader_api, log, per_page, expected):
    params = {} if per_page is None else {"per_page": per_page}
    meta = reader_api.get(URL, params).json()["meta"]
    assert meta["per_page"] == expected


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"per_page": "0"}, "per_page"),
        ({"per_page": "-5"}, "per_page"),
        ({"per_page": "ten"}, "per_page"),
        ({"per_page": "1.5"}, "per_page"),
        ({"page": "0"}, "page"),
        ({"page": "two"}, "page"),
        ({"page": str(2**40)}, "page"),
        ({"before": "yesterday"}, "before"),
        ({"after": "2024-13-01T00:00:00Z"}, "after"),
        ({"after": "2024-01-01T00:00:00+25:00"}, "after"),
        ({"user_id": "abc"}, "user_id"),
        ({"user_id[]": "1.0"}, "user_id"),
        ({"request_ip": "999.1.1.1"}, "request_ip"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": "MjAyNC0wMS0wMVQwMDowMDowMC4wMDAwMDBafC01"}, "cursor"),
        ({"range": "1y"}, "range"),
        ({"request_id": "x" * 65}, "request_id"),
    ],
)
def test_malformed_parameters_are_400_naming_the_parameter(reader_api, log, params, parameter):
    response = reader_api.get(URL, params)
    assert response.status_code == 400, response.content
    errors = response.json()["errors"]
    assert any(parameter in e["message"] for e in errors)
    assert all(set(e) >= {"message", "details"} for e in errors)


@pytest.mark.parametrize(
    "query_string",
    [
        "user_id=99999999999999999999999",
        "user_id=-1",
        "operation_name=%00",
        "target_type=%00",
        "target_id=a%00b",
        "request_id=%00",
        "before=0001-01-01T00:00:00%2B01:00",
        "after=9999-12-31T23:59:59-01:00",
        "before=0001-01-01T00:00:00Z",
        "cursor=" + "A" * 5000,
        "cursor=%00",
        "per_page=" + "9" * 5000,
        "page=1&cursor=",
        "operation_name[]=",
        "user_id[]=",
        "unknown=1",
    ],
)
def test_hostile_parameters_never_500(reader_api, log, query_string):
    response = reader_api.get(f"{URL}?{query_string}")
    assert response.status_code in (200, 400), response.content
    assert ("errors" in response.json()) == (response.status_code == 400)


# --- detail and catalog --------------------------------------------------------------------


def test_detail(reader_api, log):
    entry = log[3]
    listed = reader_api.get(URL, {"target_id": entry.target_id}).json()["audit_logs"][0]
    response = reader_api.get(f"{URL}/{entry.pk}")
    assert response.status_code == 200
    assert response.json() == listed
    assert reader_api.get(f"{URL}/{entry.pk}/").json() == listed


@pytest.mark.parametrize("entry_id", ["999999999", str(2**63), "0", "-1"])
def test_detail_of_missing_entry_is_404(reader_api, log, entry_id):
    response = reader_api.get(f"{URL}/{entry_id}")
    assert response.status_code == 404
    assert response.json()["errors"][0]["message"] == "Not found"


def test_detail_of_non_integer_id_is_400(reader_api):
    response = reader_api.get(f"{URL}/abc")
    assert response.status_code == 400
    assert response.json()["errors"][0]["parameter"] == "id"


def test_detail_of_another_tenants_entry_is_404(reader_api, world_b):
    theirs = make_entries(world_b, count=1)[0]
    response = reader_api.get(f"{URL}/{theirs.pk}")
    assert response.status_code == 404
    assert "errors" in response.json()


def test_operations_catalog(reader_api):
    response = reader_api.get(f"{URL}/operations")
    assert response.status_code == 200
    catalog = response.json()["operations"]
    assert [op["name"] for op in catalog] == list(OPERATIONS)
    assert catalog[0] == {
        "name": "UsersInvitation",
        "category": "User management",
        "description": "Invited a user to the tenant",
        "target_type": "user",
    }


# --- authentication and permission ---------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer {key}"},
        {"authorization": "bearer {key}"},
        {"X-User-Token": "{key}"},
        {"x-user-token": "{key}"},
        {"X-User-Token": "{key}", "X-User-Email": "{email}"},
        {"x-user-token": "{key}", "x-user-email": "someone-else@example.test"},
    ],
)
def test_auth_styles(client, world_a, log, headers):
    filled = {
        k: v.format(key=world_a.keys["reader"], email=world_a.reader.email)
        for k, v in headers.items()
    }
    response = client.get(URL, {"operation_name": "PagePublish"}, headers=filled)
    assert ids(response) == newest_first([e for e in log if e.operation_name == "PagePublish"])


def test_session_auth(client, world_a, log):
    client.force_login(world_a.reader)
    assert ids(client.get(URL, {"target_type": "page"})) == newest_first(
        [e for e in log if e.target_type == "page"]
    )


def test_owner_reads_too(api, world_a, log):
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {world_a.keys['owner']}")
    assert ids(api.get(URL, {"target_type": "page"}))


@pytest.mark.parametrize("path", ["", "/operations", "/1"])
def test_no_credentials_is_401_json(client, world_a, path):
    response = client.get(URL + path)
    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    assert response.json()["errors"][0]["message"] == "Unauthorized"


@pytest.mark.parametrize(
    "headers", [{"Authorization": "Bearer tak_wrong"}, {"X-User-Token": "tak_wrong"}]
)
def test_bad_key_is_401_json(client, world_a, headers):
    response = client.get(URL, headers=headers)
    assert response.status_code == 401
    assert response.json()["errors"][0]["details"]


@pytest.mark.parametrize("path", ["", "/operations", "/1"])
def test_member_is_403_json(api, client, world_a, path):
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {world_a.keys['member']}")
    response = api.get(URL + path)
    assert response.status_code == 403
    assert response.json()["errors"][0]["message"] == "Forbidden"
    client.force_login(world_a.member)
    assert client.get(URL + path).status_code == 403


def test_inactive_reader_is_refused(api, world_a):
    key = world_a.keys["reader"]
    type(world_a.reader).objects.filter(pk=world_a.reader.pk).update(is_active=False)
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert api.get(URL).status_code == 401


# --- rate limit ----------------------------------------------------------------------------


@override_settings(AUDIT_LOG_API_RATE="6/min")  # 3 at once
def test_rate_limit_per_key(api, world_a):
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {world_a.keys['reader']}")
    assert [api.get(URL).status_code for _ in range(3)] == [200, 200, 200]
    limited = api.get(URL)
    assert limited.status_code == 429
    retry_after = limited["Retry-After"]
    assert retry_after.isdigit()
    assert 1 <= int(retry_after) <= 15  # the next of the other 3 comes in a quarter minute
    assert limited.json()["errors"][0]["message"] == "Too many requests"
    assert api.get(f"{URL}/operations").status_code == 429  # one budget for the whole API
    # Another key has its own budget; the same key from another address has none left.
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {world_a.keys['owner']}")
    assert api.get(URL).status_code == 200
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {world_a.keys['reader']}")
    assert api.get(URL, REMOTE_ADDR="192.0.2.7").status_code == 429


@override_settings(AUDIT_LOG_API_RATE="4/min")  # 2 at once
def test_rate_limit_for_session_users(client, world_a):
    client.force_login(world_a.reader)
    assert [client.get(URL).status_code for _ in range(3)] == [200, 200, 429]
    assert int(client.get(URL)["Retry-After"]) >= 1


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="REDIS_URL is not set")
def test_rate_limit_in_redis(api, world_a, settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": os.environ["REDIS_URL"],
            # Fresh keys instead of a flush: the same Redis may be the Celery broker.
            "KEY_PREFIX": f"api-test-{uuid.uuid4().hex}",
        }
    }
    settings.AUDIT_LOG_API_RATE = "4/min"  # 2 at once
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {world_a.keys['reader']}")
    assert [api.get(URL).status_code for _ in range(3)] == [200, 200, 429]
    assert int(api.get(URL)["Retry-After"]) >= 1


# --- links behind proxies ------------------------------------------------------------------


@override_settings(TRUSTED_PROXY_COUNT=1, ALLOWED_HOSTS=["testserver", "audit.example.com"])
def test_links_honour_forwarded_headers_behind_a_trusted_proxy(reader_api, log):
    meta = reader_api.get(
        URL,
        {"per_page": 2},
        HTTP_X_FORWARDED_PROTO="https",
        HTTP_X_FORWARDED_HOST="audit.example.com",
    ).json()["meta"]
    assert meta["next_page"].startswith("https://audit.example.com/api/v1/audit_logs?")
    assert meta["current_page"].startswith("https://audit.example.com/")


@override_settings(TRUSTED_PROXY_COUNT=1)
def test_forwarded_host_outside_allowed_hosts_is_ignored(reader_api, log):
    meta = reader_api.get(
        URL, {"per_page": 2}, HTTP_X_FORWARDED_PROTO="https", HTTP_X_FORWARDED_HOST="evil.test"
    ).json()["meta"]
    assert meta["next_page"].startswith("https://testserver/")


def test_forwarded_headers_ignored_without_trusted_proxies(reader_api, log):
    meta = reader_api.get(
        URL,
        {"per_page": 2},
        HTTP_X_FORWARDED_PROTO="https",
        HTTP_X_FORWARDED_HOST="audit.example.com",
    ).json()["meta"]
    assert meta["next_page"].startswith("http://testserver/")


# --- cost and side effects -----------------------------------------------------------------


def statements(captured):
    return [q["sql"] for q in captured.captured_queries if "SAVEPOINT" not in q["sql"].upper()]


def test_list_uses_a_bounded_number_of_queries(client, world_a, django_assert_max_num_queries):
    make_entries(world_a, count=300)
    client.force_login(world_a.reader)
    client.get(URL)  # warm-up
    with django_assert_max_num_queries(6) as captured:
        response = client.get(URL, {"per_page": 500, "operation_name[]": list(OPS)})
    assert len(ids(response)) == 300
    # The session, its user, the count and the page; the rest is savepoint bookkeeping.
    assert len(statements(captured)) <= 4


def test_list_by_key_uses_a_bounded_number_of_queries(
    reader_api, world_a, django_assert_max_num_queries
):
    make_entries(world_a, count=300)
    reader_api.get(URL)  # records the key's first use
    with django_assert_max_num_queries(7) as captured:
        response = reader_api.get(URL, {"per_page": 500, "user_id[]": [world_a.owner.pk]})
    assert len(ids(response)) == 150
    # The key (with its user), the count and the page.
    assert len(statements(captured)) <= 3


def test_reading_is_not_recorded(api, client, world_a, log):
    client.force_login(world_a.reader)  # signing in is recorded (Login); reading is not
    before = AuditLogEntry.objects.count()
    for path in ("", "/operations", f"/{log[0].pk}", "?per_page=1&page=2"):
        assert client.get(URL + path).status_code == 200
    assert AuditLogEntry.objects.count() == before
    # By key: only the key's own use is recorded (at most hourly), never the reads.
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {world_a.keys['reader']}")
    for path in ("", "/operations", f"/{log[0].pk}", "", ""):
        assert api.get(URL + path).status_code == 200
    new = AuditLogEntry.objects.order_by("id")[before:]
    assert [e.operation_name for e in new] == ["AuthenticationTokenUse"]


# --- schema and docs -----------------------------------------------------------------------


def test_openapi_schema(db, client):
    response = client.get("/api/v1/schema", {"format": "json"})
    assert response.status_code == 200
    schema = response.json()
    validate_schema(schema)  # against the OpenAPI 3 JSON schema
    assert schema["openapi"].startswith("3.")
    paths = schema["paths"]
    assert any(p.rstrip("/") == "/api/v1/audit_logs" for p in paths)
    assert any("{entry_id}" in p for p in paths)
    assert any(p.rstrip("/").endswith("/operations") for p in paths)
    text = response.content.decode()
    assert "capped" in text
    assert "per_page" in text


def list_parameters(client) -> dict[str, dict]:
    schema = client.get("/api/v1/schema", {"format": "json"}).json()
    return {p["name"]: p for p in schema["paths"]["/api/v1/audit_logs"]["get"]["parameters"]}


def documented(parameter: dict, raw: str) -> bool:
    """Whether the schema admits the query-string value ``raw`` (a number may be an integer)."""
    values = [raw, int(raw)] if re.fullmatch(r"-?\d+", raw) else [raw]
    checker = jsonschema.FormatChecker()
    return any(
        jsonschema.Draft4Validator(parameter["schema"], format_checker=checker).is_valid(v)
        for v in values
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        *[("per_page", v) for v in ("", "0", "-1", "1", "500", "100000", "ten")],
        *[("page", v) for v in ("", "0", "1", str(2**31 - 1), str(2**31))],
        *[("after", v) for v in ("", "2024-01-01T00:00:00Z", "2024-01-01T00:00:00+16:00", "x")],
        *[("before", v) for v in ("", "2024-01-01T00:00:00-20:00", "2024-13-01T00:00:00Z")],
        *[("request_ip", v) for v in ("", "10.0.0.1", "2001:db8::1", "999.1.1.1")],
        *[("range", v) for v in ("", "7d", "1y")],
        *[(name, v) for name in ("target_type", "target_id", "request_id") for v in ("", "x" * 65)],
    ],
)
def test_schema_and_behaviour_agree_on_each_value(client, reader_api, log, name, value):
    parameter = list_parameters(client)[name]
    accepted = reader_api.get(URL, {name: value}).status_code == 200
    assert accepted == documented(parameter, value)
    if value == "":
        assert parameter["allowEmptyValue"] is True


def test_empty_parameters_mean_absent(reader_api, client, world_a, log):
    blank = "after=&before=&request_ip=&range=&target_type=&target_id=&request_id=&per_page=&page="
    assert ids(reader_api.get(f"{URL}?{blank}&cursor=")) == ids(reader_api.get(URL))
    # The tab's form submits every field it shows, blank ones included.
    client.force_login(world_a.reader)
    assert client.get(f"/settings/audit-logs/?{blank}").status_code == 200


def test_swagger_ui_is_served_without_a_cdn(db, client):
    response = client.get("/api/v1/docs")
    assert response.status_code == 200
    html = response.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in html
    for cdn in ("cdn.", "jsdelivr", "unpkg", "cdnjs"):
        assert cdn not in html
    assert finders.find("drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js")
