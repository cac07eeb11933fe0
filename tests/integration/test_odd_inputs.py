"""Odd inputs through the real handlers (SPEC §9.1, issue 8): each gets a 4xx
``application/problem+json`` naming the field, and changes nothing; none gets a 5xx.

Covers numbers DynamoDB cannot store in ``attributes`` (create, upsert, PATCH, bulk),
ids of any length or bytes on every by-id route (taken from template.yaml) and inside id
lists, oversized ``If-Match``, JSON nested 10,000 deep, bodies that are not UTF-8 or hold
unpaired surrogates, odd query parameters, and a bounded hypothesis run of arbitrary JSON
bodies.
"""

from __future__ import annotations

import base64
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ulid import ULID

import tests.integration.conftest as harness
from devstack.routes import template_routes

PROBLEM = "application/problem+json"
ODD_NUMBERS = {  # JSON text → why DynamoDB cannot hold it
    "NaN": "not a number",
    "Infinity": "infinite",
    "-Infinity": "infinite",
    "1e400": "parsed as infinity",
    "1" + "0" * 40: "10^40: over 38 digits",
    "1234567890123456789012345678901234567890": "40 digits",
    "1e-200": "below 1E-130",
    "1e-400": "below a double: would read as 0",
    "-1e-324": "below a double, negative",
    "-1e126": "beyond 9.99E+125",
    "1e50": "a whole number over 38 digits, in exponent notation",
    "-1.5e40": "a whole number over 38 digits, with a fraction written",
    "1" * 5000: "over Python's 4,300-digit int limit",
}
PREFIX_OF = {"contacts": "con_", "audiences": "aud_", "webhook-endpoints": "whe_",
             "imports": "imp_"}
ID_ROUTES = [r for r in template_routes() if "{id}" in r.path]
BODY_OF = {  # a valid body for routes that need one, so the id decides the answer
    ("PATCH", "/v1/contacts/{id}"): {"first_name": "Odd"},
    ("PATCH", "/v1/audiences/{id}"): {"name": "Odd"},
    ("PATCH", "/v1/webhook-endpoints/{id}"): {"enabled": False},
    ("POST", "/v1/audiences/{id}/contacts"): {"contact_ids": [f"con_{ULID()}"]},
    ("POST", "/v1/audiences/{id}/contacts/remove"): {"contact_ids": [f"con_{ULID()}"]},
}


def odd_ids(prefix: str) -> list[str]:
    """Ids no route should take to DynamoDB: too long for a key, odd bytes, near misses."""
    ulid = str(ULID())
    return [
        prefix + "0" * 2000,             # over DynamoDB's 1,024-byte key
        "x" * 5000,
        "💥" * 300,                      # 1,200 bytes of UTF-8
        prefix + "\x00" * 26,
        prefix + "é" * 26,
        prefix + ulid.lower() + "\n",
        prefix + ulid[:-1] + "\ud800",  # an unpaired surrogate: no UTF-8 encoding at all
        "\ud800",
        " ",
        "%FF",
    ]


def problem_fields(response) -> list[str]:
    assert response.headers.get("Content-Type") == PROBLEM, response
    return [e["field"] for e in response.body.get("errors") or []]


def assert_problem(response, status: int, field: str) -> None:
    """A ``status`` problem whose ``errors`` name ``field`` (and only fields)."""
    assert response.status == status, response.body
    fields = problem_fields(response)
    assert field in fields, fields


@pytest.fixture
def sam(api, org_id) -> dict[str, Any]:
    created = api.request("POST", "/v1/contacts", org_id=org_id,
                          json_body={"email": "sam@example.com", "first_name": "Sam",
                                     "attributes": {"score": 1}})
    assert created.status == 201, created.body
    return created.body


def contacts_of(api, org_id) -> list[dict[str, Any]]:
    page = api.request("GET", "/v1/contacts", org_id=org_id, query={"limit": "100"})
    assert page.status == 200, page.body
    return page.body["data"]


def raw(api, method: str, path: str, org_id: str, body: bytes | str,
        base64_encoded: bool = False, **kwargs):
    """A request whose body is sent as is (``bytes`` go base64-encoded, as API Gateway sends
    a body that is not text)."""
    if isinstance(body, bytes):
        body, base64_encoded = base64.b64encode(body).decode(), True
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(harness.SAMPLE_EVENT, "isBase64Encoded", base64_encoded)
        return api.request(method, path, org_id=org_id, raw_body=body, **kwargs)


# ------------------------------------------------------------ numbers in attributes
@pytest.mark.parametrize("number", ODD_NUMBERS, ids=ODD_NUMBERS.get)
def test_unstorable_numbers_are_refused_on_create_upsert_and_patch(api, org_id, sam, number):
    body = '{"email": "%s", "attributes": {"fine": 2, "score": ' + number + "}}"
    # When a contact is created, upserted or patched with that number
    created = raw(api, "POST", "/v1/contacts", org_id, body % "new@example.com")
    upserted = raw(api, "POST", "/v1/contacts/upsert", org_id, body % "sam@example.com")
    patched = raw(api, "PATCH", f"/v1/contacts/{sam['id']}", org_id,
                  '{"attributes": {"score": ' + number + "}}")
    # Then each answers 400 naming attributes.score
    for response in (created, upserted, patched):
        assert_problem(response, 400, "attributes.score")
    # And nothing changed: Sam is as created, and no one else exists
    assert contacts_of(api, org_id) == [sam]


@pytest.mark.parametrize("number", ["NaN", "1e400", "1" + "0" * 40, "1e-200", "1e-400"])
def test_a_bulk_item_with_an_unstorable_number_fails_alone(api, org_id, number):
    # Given a bulk of 20 contacts, the 8th with a number DynamoDB cannot hold
    items = [json.dumps({"email": f"p{i}@example.com", "attributes": {"score": i}})
             for i in range(20)]
    items[7] = '{"email": "p7@example.com", "attributes": {"score": ' + number + "}}"
    # When it is sent
    response = raw(api, "POST", "/v1/contacts/bulk", org_id,
                   '{"contacts": [' + ", ".join(items) + "]}")
    # Then the others are created and item 7 fails with its index, naming the attribute
    assert response.status == 200, response.body
    assert (response.body["created"], response.body["failed"]) == (19, 1)
    failed = response.body["results"][7]
    assert failed["index"] == 7 and failed["status"] == "failed"
    assert failed["error"]["code"] == "validation_error"
    assert [e["field"] for e in failed["error"]["errors"]] == ["attributes.score"]
    assert len(contacts_of(api, org_id)) == 19


@pytest.mark.parametrize("value", [0, 1e-130, -9.99e37, 10**38 - 1, -(10**38 - 1), 0.5])
def test_numbers_at_dynamodb_edges_are_stored_and_read_back(api, org_id, value):
    created = api.request("POST", "/v1/contacts", org_id=org_id,
                          json_body={"email": "edge@example.com", "attributes": {"n": value}})
    assert created.status == 201, created.body
    fetched = api.request("GET", f"/v1/contacts/{created.body['id']}", org_id=org_id)
    # the same number (an integral one may come back written as an integer)
    assert Decimal(repr(fetched.body["attributes"]["n"])) == Decimal(repr(value))



NUMBER_SPELLINGS = ["1E2", "100.0", "-0.0", "-0", "1.50", "2.5e-3", "1e20",
                    "12345678901234567890.0", "0.1", "-7", "1E+37", "3.0E-130"]


def test_every_write_answers_a_number_as_every_later_read_does(api, org_id, sam):
    attributes = "{" + ", ".join(f'"n{i}": {n}' for i, n in enumerate(NUMBER_SPELLINGS)) + "}"
    # When the same numbers are written by create, upsert and PATCH
    created = raw(api, "POST", "/v1/contacts", org_id,
                  '{"email": "n@example.com", "attributes": ' + attributes + "}")
    upserted = raw(api, "POST", "/v1/contacts/upsert", org_id,
                   '{"email": "u@example.com", "attributes": ' + attributes + "}")
    patched = raw(api, "PATCH", f"/v1/contacts/{sam['id']}", org_id,
                  '{"attributes": ' + attributes + "}")
    # Then each write's answer writes them as GET does afterwards (and as webhooks do: both
    # render the stored item), e.g. 1E2 and 100.0 as 100, -0.0 as 0
    for response in (created, upserted, patched):
        assert response.status in (200, 201), response.body
        contact = response.body.get("contact", response.body)
        fetched = api.request("GET", f"/v1/contacts/{contact['id']}", org_id=org_id)
        assert json.dumps(contact["attributes"]) == json.dumps(fetched.body["attributes"])
        assert fetched.body["attributes"]["n0"] == 100 and type(contact["attributes"]["n0"]) is int

@pytest.mark.parametrize("field", ["source", "suppressed", "consent"])
def test_null_for_a_field_every_contact_has_answers_400(api, org_id, sam, field):
    body = {"email": "sam@example.com", field: None}
    created = api.request("POST", "/v1/contacts", org_id=org_id,
                          json_body={**body, "email": "new@example.com"})
    upserted = api.request("POST", "/v1/contacts/upsert", org_id=org_id, json_body=body)
    patched = api.request("PATCH", f"/v1/contacts/{sam['id']}", org_id=org_id,
                          json_body={field: None})
    for response in (created, upserted, patched):
        assert_problem(response, 400, field)
    bulk = api.request("POST", "/v1/contacts/bulk", org_id=org_id,
                       json_body={"contacts": [body, {"email": "other@example.com"}]})
    assert bulk.status == 200, bulk.body
    assert [r["status"] for r in bulk.body["results"]] == ["failed", "created"]
    assert [e["field"] for e in bulk.body["results"][0]["error"]["errors"]] == [field]
    assert [c["email"] for c in contacts_of(api, org_id)] == ["other@example.com",
                                                              "sam@example.com"]


# ------------------------------------------------------------ ids
@pytest.mark.parametrize("route", ID_ROUTES, ids=lambda r: f"{r.method} {r.path}")
def test_every_by_id_route_answers_an_odd_id_like_an_unknown_one(api, org_id, sam, route):
    # Given the answer of this route for a well-formed id that does not exist
    collection = route.path.split("/")[2]
    prefix = PREFIX_OF.get(collection)
    assert prefix, f"add the id prefix of /v1/{collection} to PREFIX_OF"
    body = BODY_OF.get((route.method, route.path), {} if route.method in ("POST", "PATCH")
                       else None)

    def call(resource_id: str):
        return api.request(route.method, route.path.replace("{id}", resource_id),
                           org_id=org_id, json_body=body)

    unknown = call(f"{prefix}{ULID()}")
    assert 400 <= unknown.status < 500, unknown.body
    # When the id is too long, has odd bytes, or is a near miss
    for odd in odd_ids(prefix):
        answer = call(odd)
        # Then the answer is the unknown id's (I4: nothing tells them apart)
        assert (answer.status, answer.body["code"]) == (unknown.status, unknown.body["code"]), \
            (odd[:40], answer.body)
        assert answer.headers["Content-Type"] == PROBLEM
    # And nothing changed
    assert contacts_of(api, org_id) == [sam]


def test_the_seed_route_answers_an_odd_audience_id_like_an_unknown_one(api, org_id, sam):
    def add_to(audience_id: str):
        return api.request("POST", "/v1/contacts/add-to-audience", org_id=org_id,
                           json_body={"contact_ids": [sam["id"]], "audience_id": audience_id})

    unknown = add_to(f"aud_{ULID()}")
    assert (unknown.status, unknown.body["code"]) == (404, "not_found")
    for odd in odd_ids("aud_"):
        answer = add_to(odd)
        if "\ud800" in odd:  # an unpaired surrogate is refused with the body
            assert_problem(answer, 400, "audience_id")
        else:
            assert (answer.status, answer.body["code"]) == (404, "not_found"), answer.body


def assert_reported_unknown(response, ids: list[str]) -> None:
    """200 listing every id in ``not_found``: ids of any length or bytes are taken as ids."""
    assert response.status == 200, response.body
    assert set(response.body["not_found"]) == set(ids), response.body


ENCODABLE_ODD_IDS = [i for i in odd_ids("con_") if "\ud800" not in i]


def test_odd_ids_in_bulk_delete_are_not_found(api, org_id, sam):
    response = api.request("POST", "/v1/contacts/bulk-delete", org_id=org_id,
                           json_body={"contact_ids": ENCODABLE_ODD_IDS})
    assert response.status == 200, response.body
    assert response.body["deleted"] == 0
    assert_reported_unknown(response, ENCODABLE_ODD_IDS)
    assert contacts_of(api, org_id) == [sam]


@pytest.mark.parametrize("path", ["/v1/audiences/{id}/contacts",
                                  "/v1/audiences/{id}/contacts/remove"])
def test_odd_ids_in_member_lists_are_reported_like_unknown_ones(api, org_id, sam, path):
    audience = api.request("POST", "/v1/audiences", org_id=org_id, json_body={"name": "VIP"})
    assert audience.status == 201, audience.body
    url = path.replace("{id}", audience.body["id"])
    for odd in ENCODABLE_ODD_IDS:
        response = api.request("POST", url, org_id=org_id, json_body={"contact_ids": [odd]})
        assert_reported_unknown(response, [odd])
    after = api.request("GET", f"/v1/audiences/{audience.body['id']}", org_id=org_id)
    assert after.body["contact_count"] == 0


@pytest.mark.parametrize("padded", [" {}", "{} ", "{}\t\n"])
def test_ids_with_spaces_around_them_are_not_ids_on_member_routes(api, org_id, sam, padded):
    # Given a live contact and an audience, and their ids with whitespace around them
    audience = api.request("POST", "/v1/audiences", org_id=org_id, json_body={"name": "VIP"})
    aud_id = audience.body["id"]
    contact_id = padded.format(sam["id"])
    # When they are sent to the member routes, as to batch get and bulk delete
    added = api.request("POST", f"/v1/audiences/{aud_id}/contacts", org_id=org_id,
                        json_body={"contact_ids": [contact_id]})
    removed = api.request("POST", f"/v1/audiences/{aud_id}/contacts/remove", org_id=org_id,
                          json_body={"contact_ids": [contact_id]})
    seeded = api.request("POST", "/v1/contacts/add-to-audience", org_id=org_id,
                         json_body={"contact_ids": [sam["id"]],
                                    "audience_id": padded.format(aud_id)})
    got = api.request("POST", "/v1/contacts/batch-get", org_id=org_id,
                      json_body={"ids": [contact_id]})
    # Then they are unknown ids everywhere (exact, as every id), and nothing was added
    assert_reported_unknown(added, [contact_id])
    assert_reported_unknown(removed, [contact_id])
    assert (seeded.status, seeded.body["code"]) == (404, "not_found"), seeded.body
    assert_reported_unknown(got, [contact_id])
    after = api.request("GET", f"/v1/audiences/{aud_id}", org_id=org_id)
    assert after.body["contact_count"] == 0


@pytest.mark.parametrize("path", ["/v1/contacts/bulk-delete", "/v1/audiences/{id}/contacts"])
def test_unpaired_surrogates_in_id_lists_answer_400_naming_the_item(api, org_id, sam, path):
    audience = api.request("POST", "/v1/audiences", org_id=org_id, json_body={"name": "VIP"})
    url = path.replace("{id}", audience.body["id"])
    response = raw(api, "POST", url, org_id,
                   '{"contact_ids": ["' + sam["id"] + '", "con_\\ud800"]}')
    assert_problem(response, 400, "contact_ids.1")
    assert contacts_of(api, org_id) == [sam]


# ------------------------------------------------------------ If-Match
@pytest.mark.parametrize("if_match", [
    "1" * 40, '"' + "9" * 40 + '"', 'W/"' + "1" * 19 + '"', "1" * 10_000, '"1', "٣", "\ud800",
    "1, 2", '"01"', "000001", '"00"', "", "   ",
], ids=lambda v: repr(v[:24]))
def test_if_match_that_is_not_a_version_answers_400(api, org_id, sam, if_match):
    path = f"/v1/contacts/{sam['id']}"
    patched = api.request("PATCH", path, org_id=org_id, json_body={"first_name": "Samuel"},
                          headers={"If-Match": if_match})
    deleted = api.request("DELETE", path, org_id=org_id, headers={"If-Match": if_match})
    for response in (patched, deleted):
        assert_problem(response, 400, "If-Match")
    assert contacts_of(api, org_id) == [sam]


@pytest.mark.parametrize("if_match", ['"' + "9" * 18 + '"', '"0"', "0", 'W/"0"'])
def test_a_version_never_held_is_merely_stale(api, org_id, sam, if_match):
    response = api.request("PATCH", f"/v1/contacts/{sam['id']}", org_id=org_id,
                           json_body={"first_name": "Samuel"}, headers={"If-Match": if_match})
    assert response.status == 412 and response.body["current_version"] == 1
    assert contacts_of(api, org_id) == [sam]


# ------------------------------------------------------------ bodies
def deep(levels: int) -> str:
    return "[" * levels + "]" * levels


@pytest.mark.parametrize("levels", [40, 10_000, 200_000])
@pytest.mark.parametrize(("path", "template"), [
    ("/v1/contacts/bulk", '{"contacts": %s}'),
    ("/v1/contacts/bulk-delete", '{"contact_ids": %s}'),
    ("/v1/audiences/{id}/contacts", '{"contact_ids": %s}'),
    ("/v1/contacts", '{"email": "deep@example.com", "attributes": {"a": %s}}'),
])
def test_deeply_nested_json_answers_400_naming_body(api, org_id, sam, path, template, levels):
    audience = api.request("POST", "/v1/audiences", org_id=org_id, json_body={"name": "VIP"})
    response = raw(api, "POST", path.replace("{id}", audience.body["id"]), org_id,
                   template % deep(levels))
    # 400, or 413 where the nesting alone is over the route's body limit (16 KB for one
    # contact, 128 KB for id lists)
    assert_problem(response, 413 if response.status == 413 and levels > 5000 else 400, "body")
    assert contacts_of(api, org_id) == [sam]


@pytest.mark.parametrize(("method", "path", "body"), [
    ("POST", "/v1/contacts", b'{"email": "\xff@example.com"}'),
    ("POST", "/v1/contacts/upsert", b'{"email": "sam@example.com", "first_name": "\xc3"}'),
    ("PATCH", "/v1/contacts/{id}", b'{"first_name": "\xed\xa0\x80"}'),  # UTF-8'd surrogate
    ("POST", "/v1/contacts/bulk", b'{"contacts": [{"email": "\xfe\xff"}]}'),
    ("POST", "/v1/contacts/bulk-delete", b'{"contact_ids": ["\x80"]}'),
    ("POST", "/v1/audiences", b'{"name": "\xc0\xaf"}'),  # overlong "/"
])
def test_a_body_that_is_not_utf8_answers_400_naming_body(api, org_id, sam, method, path, body):
    response = raw(api, method, path.replace("{id}", sam["id"]), org_id, body)
    assert_problem(response, 400, "body")
    assert contacts_of(api, org_id) == [sam]


def test_a_body_that_is_not_base64_answers_400_naming_body(api, org_id, sam):
    response = raw(api, "POST", "/v1/contacts", org_id, "not base64 ✗", base64_encoded=True)
    assert_problem(response, 400, "body")


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/v1/contacts", '{"email": "a@example.com", "first_name": "\\ud800"}', "first_name"),
    ("/v1/contacts", '{"email": "a@example.com", "attributes": {"\\udfff": 1}}', "attributes"),
    ("/v1/contacts", '{"email": "a@example.com", "first_name": "\ud800"}', "body"),  # raw
    ("/v1/audiences", '{"name": "x\\udc00"}', "name"),
    ("/v1/webhook-endpoints", '{"url": "https://example.com/\\ud800", "events": ["*"]}',
     "url"),
])
def test_unpaired_surrogates_answer_400_naming_the_field(api, org_id, sam, path, body, field):
    response = raw(api, "POST", path, org_id, body)
    assert_problem(response, 400, field)
    assert contacts_of(api, org_id) == [sam]


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/v1/contacts", '{"email": "a@example.com", "email": "b@example.com"}', "email"),
    ("/v1/contacts", '{"email": "a@example.com", "attributes": {"k": 1, "k": 2}}',
     "attributes.k"),
    ("/v1/contacts/upsert", '{"email": "a@example.com", "attributes": {"a": {"b": 1, "b": 1}}}',
     "attributes.a.b"),
    ("/v1/contacts/upsert", '{"phone": "+27821234567", "phone": "+27821234568"}', "phone"),
    ("/v1/contacts/bulk", '{"contacts": [{"email": "a@example.com"}], "contacts": []}',
     "contacts"),
])
def test_a_member_named_twice_answers_400_naming_it(api, org_id, sam, path, body, field):
    # I-JSON (RFC 7493 §2.3): which of the two a parser keeps is undefined, so neither is;
    # the problem names the member's path, as for any other field
    response = raw(api, "POST", path, org_id, body)
    assert_problem(response, 400, field)
    assert contacts_of(api, org_id) == [sam]


@pytest.mark.parametrize(("item", "field"), [
    ('{"email": "b@example.com", "email": "c@example.com"}', "email"),
    ('{"email": "b@example.com", "attributes": {"k": 1, "k": 2}}', "attributes.k"),
    ('{"email": "b@example.com", "name": "\\ud800"}', "name"),
    ('{"email": "b@example.com", "attributes": {"\\udfff": 1}}', "attributes"),
])
def test_a_bulk_item_that_is_not_i_json_fails_alone_naming_its_field(
        api, org_id, sam, item, field):
    # Given a bulk whose second item names a member twice or holds an unpaired surrogate
    body = '{"contacts": [{"email": "a@example.com"}, ' + item + ', {"phone": "+27821230000"}]}'
    # When it is sent
    response = raw(api, "POST", "/v1/contacts/bulk", org_id, body)
    # Then that item fails alone, naming its field, and the others are created (SPEC §5)
    assert response.status == 200, response.body
    results = response.body["results"]
    assert [r["status"] for r in results] == ["created", "failed", "created"]
    error = results[1]["error"]
    assert error["code"] == "validation_error"
    assert [e["field"] for e in error["errors"]] == [field]
    emails = sorted(c.get("email") or "" for c in contacts_of(api, org_id))
    assert emails == sorted(["a@example.com", "", sam.get("email") or ""])


def test_a_name_too_long_to_search_by_answers_400(api, org_id, sam):
    # "ﷺ" folds to 18 characters: 256 of them make a name-index key over 1,024 bytes
    for field in ("name", "first_name", "last_name"):
        response = api.request("POST", "/v1/contacts", org_id=org_id,
                               json_body={"email": "long@example.com", field: "ﷺ" * 256})
        assert_problem(response, 400, field)
    longest = {"first_name": "ﷺ" * 14, "last_name": "ﷺ" * 14}  # 462 bytes folded, each
    created = api.request("POST", "/v1/contacts", org_id=org_id,
                          json_body={"email": "long@example.com", **longest})
    assert created.status == 201, created.body


# ------------------------------------------------------------ query parameters
@pytest.mark.parametrize(("query", "field"), [
    ({"limit": "9" * 5000}, "limit"),
    ({"limit": "1,2"}, "limit"),  # ?limit=1&limit=2, as payload 2.0 joins them
    ({"limit": "1e400"}, "limit"),
    ({"limit": "NaN"}, "limit"),
    # digits only: pydantic's lax integers would read these as 5, 10, 5 and 5
    ({"limit": "+5"}, "limit"), ({"limit": "1_0"}, "limit"), ({"limit": "5.0"}, "limit"),
    ({"limit": " 5"}, "limit"),
    ({"cursor": "x" * 10_000}, "cursor"),
    ({"cursor": "a.b"}, "cursor"),
    ({"search": "a" * 100_000, "limit": "0"}, "limit"),
    ({"search": "\ud800"}, "search"),
    ({"tag": "x\udfff"}, "tag"),
    ({"\ud800": "1"}, "?"),
    ({"sort": "name\x00"}, "sort"),
])
@pytest.mark.parametrize("path", ["/v1/contacts", "/v1/audiences", "/v1/contacts/export",
                                  "/v1/audiences/{id}/contacts"])
def test_odd_query_parameters_answer_400_naming_them(api, org_id, path, query, field):
    audience = api.request("POST", "/v1/audiences", org_id=org_id, json_body={"name": "VIP"})
    response = api.request("GET", path.replace("{id}", audience.body["id"]), org_id=org_id,
                           query=query)
    # every listing refuses it: a bad value, or a parameter it does not know
    assert response.status == 400, response.body
    fields = problem_fields(response)
    assert fields and all(f in (field, *query) or "?" in f for f in fields), fields


def test_a_route_with_query_parameters_refuses_unknown_ones_and_a_route_without_ignores_them(
        api, org_id, sam):
    # Given a typo on a listing (it would otherwise page by 20), and a cache-busting
    # parameter on routes that take no query parameter at all
    audience = api.request("POST", "/v1/audiences", org_id=org_id, json_body={"name": "V"})
    typo = {"limt": "5"}
    for path in ("/v1/contacts", f"/v1/contacts/{sam['id']}/audiences", "/v1/audiences",
                 f"/v1/audiences/{audience.body['id']}/contacts", "/v1/webhook-endpoints",
                 "/v1/imports", "/v1/contacts/export"):
        assert_problem(api.request("GET", path, org_id=org_id, query=typo), 400, "limt")
    cache_buster = {"_": "1795363717522"}
    for method, path in (("GET", f"/v1/contacts/{sam['id']}"),
                         ("GET", f"/v1/audiences/{audience.body['id']}"),
                         ("POST", "/v1/contacts/batch-get")):
        body = {"ids": [sam["id"]]} if method == "POST" else None
        response = api.request(method, path, org_id=org_id, query=cache_buster, json_body=body)
        assert response.status == 200, (path, response.body)


# ------------------------------------------------------------ arbitrary JSON bodies
numbers = st.one_of(st.integers(), st.floats(), st.integers(10**37, 10**45),
                    st.sampled_from(["NaN", "Infinity", "-Infinity", "1e400", "1e-200"]))
scalars = st.none() | st.booleans() | numbers | st.text(max_size=30)
json_values = st.recursive(
    scalars, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=10), c,
                                                                 max_size=4),
    max_leaves=20)
CONTACT_FIELDS = ["phone", "email", "country_code", "first_name", "last_name", "name",
                  "language", "tags", "attributes", "consent", "suppressed", "source"]
contact_like = st.dictionaries(st.sampled_from(CONTACT_FIELDS) | st.text(max_size=10),
                               json_values, max_size=6)
with_email = st.builds(lambda body, n: {**body, "email": f"fuzz{n}@example.com"},
                       contact_like, st.integers(0, 30))


def to_json(value: Any) -> str:
    """JSON text; the strings standing for NaN/Infinity/1e400 become those tokens."""
    text = json.dumps(value)
    for token in ("NaN", "Infinity", "-Infinity", "1e400", "1e-200"):
        text = text.replace(f'"{token}"', token)
    return text


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_arbitrary_json_bodies_never_answer_5xx(api, org_id, sam, data):
    # Given any JSON body, shaped like a contact or not
    route = data.draw(st.sampled_from(["create", "upsert", "patch", "bulk"]))
    body = data.draw(json_values | contact_like | with_email)
    if route == "bulk":
        body = {"contacts": data.draw(st.lists(json_values | contact_like | with_email,
                                               max_size=4))}
    method, path = {"create": ("POST", "/v1/contacts"), "upsert": ("POST", "/v1/contacts/upsert"),
                    "patch": ("PATCH", f"/v1/contacts/{sam['id']}"),
                    "bulk": ("POST", "/v1/contacts/bulk")}[route]
    # When it is sent
    response = raw(api, method, path, org_id, to_json(body))
    # Then the answer is never a server error; a refusal is a problem naming fields
    assert response.status < 500, (route, body, response.body)
    if response.status == 400:
        assert problem_fields(response)


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=st.dictionaries(st.sampled_from(["limit", "cursor", "search", "tag", "sort",
                                              "order"]) | st.text(max_size=5),
                             st.text(max_size=300) | st.integers().map(str), max_size=4))
def test_arbitrary_list_queries_never_answer_5xx(api, org_id, sam, query):
    response = api.request("GET", "/v1/contacts", org_id=org_id, query=query)
    assert response.status < 500, (query, response.body)


@pytest.mark.parametrize("moment", ["0001-01-01", "0001-01-01T00:00:00+14:00",
                                    "9999-12-31T23:59:59.999-23:59", "1969-12-31",
                                    "2026-01-01T00:00:00"])
@pytest.mark.parametrize("bound", ["created_after", "created_before", "updated_after",
                                   "updated_before"])
def test_dates_at_the_ends_of_the_calendar_are_plain_bounds(api, org_id, sam, bound, moment):
    # Given one contact; When a list is bounded by a date far in the past or the future
    query = {bound: moment} | ({"sort": "updated_at"} if bound.startswith("updated") else {})
    response = api.request("GET", "/v1/contacts", org_id=org_id, query=query)
    # Then it answers a page: the contact when the bound lets it through, else none
    assert response.status == 200, response.body
    ids = [c["id"] for c in response.body["data"]]
    before_epoch = moment.startswith(("0001", "1969"))
    expected = bound.endswith("_after") == (before_epoch or moment.startswith("2026"))
    assert ids == ([sam["id"]] if expected else []), (query, ids)


@pytest.mark.parametrize("moment", ["20260101", "1767225600", "1767225600.5", "2026"])
@pytest.mark.parametrize("bound", ["created_after", "updated_before"])
def test_a_time_bound_that_is_not_iso_8601_is_refused_not_read_as_epoch_seconds(
        api, org_id, sam, bound, moment):
    # Given one contact; When a list is bounded by a number or ISO's basic date format,
    # which pydantic alone would read as seconds since 1970
    response = api.request("GET", "/v1/contacts", org_id=org_id, query={bound: moment})
    # Then it is a 400 naming the bound and showing the format, not a page bounded by 1970
    assert response.status == 400, response.body
    assert [e["field"] for e in response.body["errors"]] == [bound]
    assert "ISO 8601" in response.body["errors"][0]["message"]


DOCUMENT = json.loads((Path(__file__).resolve().parents[2] / "openapi.json").read_text())
CREATE_BODIES = {"/v1/contacts": {"email": "patch@example.com"},
                 "/v1/audiences": {"name": "Patched"},
                 "/v1/webhook-endpoints": {"url": "https://hooks.example.com/patch"}}


@pytest.mark.parametrize("collection", sorted(CREATE_BODIES))
def test_an_empty_patch_is_a_400_as_the_document_says(api, org_id, collection):
    # Given a resource, and the document's schema of its PATCH body
    operation = DOCUMENT["paths"][f"{collection}/{{id}}"]["patch"]
    reference = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = DOCUMENT["components"]["schemas"][reference.rsplit("/", 1)[1]]
    created = api.request("POST", collection, org_id=org_id, json_body=CREATE_BODIES[collection])
    assert created.status == 201, created.body
    # When a PATCH names no field
    patched = api.request("PATCH", f"{collection}/{created.body['id']}", org_id=org_id,
                          json_body={})
    # Then it is a 400, and the document says an empty body is invalid (minProperties)
    assert_problem(patched, 400, "body")
    assert schema["minProperties"] == 1
