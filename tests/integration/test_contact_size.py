"""One contact holds at most 16 KB (SPEC §7), however it got there: one request, or many
PATCHes, upserts, bulk items and merges that each stay small.

A write that does not read the contact first (a PATCH or an upsert of plain fields is one
conditional ``UpdateItem``) proves room by ``content_bytes``, an upper bound kept on the
item; when it cannot, it reads the contact and decides on its exact size. Every test ends
with the invariant checker, which also fails on a contact over 16 KB or a bound under the
contact's size.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest

from tests.support.invariants import assert_consistent

P, E = "+27821239001", "big@example.com"


def _attributes(prefix: str, keys: int, value_bytes: int = 1000) -> dict[str, str]:
    return {f"{prefix}{n:02d}": "v" * value_bytes for n in range(keys)}


def _grow(call: Any, how: str, contact: dict[str, Any], attributes: dict[str, str]) -> Any:
    """Send ``attributes`` to ``contact`` as a PATCH, an upsert or a bulk item."""
    if how == "patch":
        return call("PATCH", f"/v1/contacts/{contact['id']}", {"attributes": attributes})
    if how == "upsert":
        return call("POST", "/v1/contacts/upsert", {"phone": P, "attributes": attributes})
    return call("POST", "/v1/contacts/bulk",
                {"contacts": [{"phone": P, "attributes": attributes}]})


@pytest.mark.parametrize("how", ["patch", "upsert", "bulk"])
def test_a_write_that_would_grow_a_contact_past_16_kb_is_refused(call, org_id, how):
    # Given a contact of about 10 KB
    contact = call.create({"phone": P, "email": E, "attributes": _attributes("a", 10)})
    # When a write that is itself well under 16 KB would add about 10 KB more
    response = _grow(call, how, contact, _attributes("b", 10))
    # Then it is refused as too large (413, or a failed bulk item), and nothing changed
    if how == "bulk":
        assert response.status == 200, response.body
        item = response.body["results"][0]
        assert item["status"] == "failed" and item["error"]["code"] == "payload_too_large"
        assert "16384" in item["error"]["message"]
    else:
        assert response.status == 413, response.body
        assert response.body["code"] == "payload_too_large"
        assert [e["field"] for e in response.body["errors"]] == ["body"]
    assert call("GET", f"/v1/contacts/{contact['id']}").body == contact
    # And a write that fits still succeeds: the contact may hold right up to the limit
    fits = _grow(call, how, contact, _attributes("b", 5))
    assert fits.status == 200, fits.body
    stored = call("GET", f"/v1/contacts/{contact['id']}").body
    assert len(stored["attributes"]) == 15 and stored["version"] == 2
    assert_consistent(org_id)


def test_many_small_patches_of_one_value_never_trip_the_bound(call, org_id, log):
    # Given a contact of about 8 KB
    contact = call.create({"phone": P, "attributes": _attributes("a", 8)})
    # When one of its values is rewritten many times, each time the same size
    single_writes = 0
    for n in range(40):
        response, _ = log.during(lambda n=n: call(
            "PATCH", f"/v1/contacts/{contact['id']}",
            {"attributes": {"a00": f"{n:04d}" + "v" * 996}}))
        contact_calls = [(name, params["TableName"]) for name, params in log.requests
                         if params.get("TableName") != os.environ["RATE_LIMITS_TABLE"]]
        # Then every one succeeds: the bound only ever sends a write to decide on the
        # contact's exact size (which resets the bound)
        assert response.status == 200, (n, response.body)
        single_writes += contact_calls == [("UpdateItem", os.environ["CONTACTS_TABLE"])]
    # And most of them were still one UpdateItem each
    assert single_writes >= 30, single_writes
    assert call("GET", f"/v1/contacts/{contact['id']}").body["version"] == 41
    assert_consistent(org_id)


def test_a_contact_written_before_the_bound_was_kept_is_measured_on_its_first_write(
        call, org_id, dynamodb):
    # Given a contact whose item has no content_bytes (as stored by an older version)
    contact = call.create({"phone": P, "attributes": _attributes("a", 10)})
    table = boto3.resource("dynamodb", endpoint_url=dynamodb).Table(
        os.environ["CONTACTS_TABLE"])
    key = {"org_id": org_id, "contact_id": contact["id"]}
    table.update_item(Key=key, UpdateExpression="REMOVE content_bytes")
    # When PATCHes arrive, one too big and one that fits
    too_big = call("PATCH", f"/v1/contacts/{contact['id']}",
                   {"attributes": _attributes("b", 7)})
    fits = call("PATCH", f"/v1/contacts/{contact['id']}", {"first_name": "Sam"})
    # Then each is decided on the contact's exact size, and the bound is kept again
    assert too_big.status == 413 and fits.status == 200, (too_big.body, fits.body)
    assert table.get_item(Key=key, ConsistentRead=True)["Item"]["content_bytes"] > 10_000
    assert_consistent(org_id)


def test_a_merge_that_would_make_a_contact_over_16_kb_is_refused(call, org_id):
    # Given two contacts of about 10 KB each
    target = call.create({"phone": P, "attributes": _attributes("a", 10)})
    source = call.create({"email": E, "attributes": _attributes("b", 10)})
    # When one is merged into the other
    response = call("POST", f"/v1/contacts/{target['id']}/merge", {"source_id": source["id"]})
    # Then the merge is refused as a PATCH over the limit is (SPEC §7: 413), naming the
    # size, and both contacts are as they were
    assert response.status == 413, response.body
    assert response.body["code"] == "payload_too_large"
    assert "bytes" in response.body["detail"], response.body
    assert call("GET", f"/v1/contacts/{target['id']}").body == target
    assert call("GET", f"/v1/contacts/{source['id']}").body == source
    assert_consistent(org_id)


def test_a_contact_stored_over_16_kb_may_shrink_but_not_grow(call, org_id, dynamodb):
    # Given a contact over 16 KB, as an older version could leave one
    contact = call.create({"phone": P, "attributes": _attributes("a", 10)})
    table = boto3.resource("dynamodb", endpoint_url=dynamodb).Table(
        os.environ["CONTACTS_TABLE"])
    key = {"org_id": org_id, "contact_id": contact["id"]}
    table.update_item(Key=key, UpdateExpression="SET attributes = :a REMOVE content_bytes",
                      ExpressionAttributeValues={":a": _attributes("a", 20)})
    # When a write would grow it, and others keep or shrink it
    grows = call("PATCH", f"/v1/contacts/{contact['id']}", {"first_name": "Sam"})
    keeps = call("PATCH", f"/v1/contacts/{contact['id']}", {"attributes": {"a00": "w" * 1000}})
    shrinks = call("PATCH", f"/v1/contacts/{contact['id']}",
                   {"attributes": {f"a{n:02d}": None for n in range(10, 20)}})
    # Then only the growing one is refused, and the contact is back within 16 KB
    assert grows.status == 413, grows.body
    assert keeps.status == 200 and shrinks.status == 200, (keeps.body, shrinks.body)
    assert len(call("GET", f"/v1/contacts/{contact['id']}").body["attributes"]) == 10
    assert_consistent(org_id)


def test_concurrent_writes_never_take_a_contact_past_16_kb(call, org_id):
    # Given a contact of about 10 KB
    contact = call.create({"phone": P, "attributes": _attributes("a", 10)})
    # When 12 clients at once each add their own 1 KB attribute (room for about 6)
    def add(n: int) -> Any:
        return call("PATCH", f"/v1/contacts/{contact['id']}",
                    {"attributes": {f"c{n:02d}": "v" * 1000}})
    with ThreadPoolExecutor(max_workers=12) as pool:
        answers = list(pool.map(add, range(12)))
    # Then each is either applied or refused as too large, and the contact holds exactly
    # the applied ones, within 16 KB (the invariant checker measures it)
    assert {a.status for a in answers} <= {200, 413}, [a.body for a in answers]
    applied = {f"c{n:02d}" for n, a in enumerate(answers) if a.status == 200}
    stored = call("GET", f"/v1/contacts/{contact['id']}").body
    assert {k for k in stored["attributes"] if k.startswith("c")} == applied
    assert 0 < len(applied) < 12 and stored["version"] == 1 + len(applied)
    assert_consistent(org_id)


@pytest.mark.parametrize("how", ["POST /v1/contacts", "POST /v1/contacts/upsert", "PATCH"])
def test_the_limit_is_on_the_contact_not_on_how_its_json_was_written(call, org_id, how):
    # Given a contact of about 8 KB of accented text, as a client's encoder writes it with
    # \uXXXX escapes (Python's json.dumps default: about 24 KB on the wire) and whitespace
    body = {"email": E, "attributes": {f"k{i}": "é" * 500 for i in range(8)}}
    wire = json.dumps(body, indent=8) + " " * 17_000
    assert len(wire.encode()) > 2 * 16_384
    target = "/v1/contacts"
    if how == "PATCH":
        target = f"/v1/contacts/{call.create({'phone': P})['id']}"
    elif how.endswith("upsert"):
        target += "/upsert"
    # When it is sent
    response = call.api.request(how.split()[0], target, org_id=org_id, raw_body=wire)
    # Then it is stored: 16 KB is the contact's compact size, as the README measures it
    assert response.status in (200, 201), response.body
    stored = response.body.get("contact", response.body)  # an upsert wraps it
    assert stored["attributes"] == body["attributes"]
    # And a contact over 16 KB written compactly is still refused
    over = {"email": "over@example.com", "attributes": _attributes("o", 17)}
    refused = call.api.request("POST", "/v1/contacts", org_id=org_id,
                               raw_body=json.dumps(over, separators=(",", ":")))
    assert refused.status == 413 and refused.body["code"] == "payload_too_large"
    assert_consistent(org_id)


def test_a_bulk_item_over_16_kb_fails_as_the_same_single_request_would(call, org_id):
    # Given a contact body over 16 KB on its own
    over = {"email": "big@example.com", "attributes": _attributes("o", 17)}
    # When it is sent alone and as one item of a bulk upsert, beside an item that fits
    single = call("POST", "/v1/contacts/upsert", over)
    bulk = call("POST", "/v1/contacts/bulk", {"contacts": [over, {"phone": P}]})
    # Then the single request is refused 413 and the item fails alone, both naming the
    # body and the limit; nothing of it is stored
    assert single.status == 413 and single.body["code"] == "payload_too_large", single.body
    assert bulk.status == 200, bulk.body
    failed, fitted = bulk.body["results"]
    assert failed["status"] == "failed" and fitted["status"] == "created"
    assert failed["error"]["code"] == "payload_too_large"
    assert [e["field"] for e in failed["error"]["errors"]] == ["body"]
    assert [e["field"] for e in single.body["errors"]] == ["body"]
    assert "16384" in failed["error"]["message"]
    found = call("GET", "/v1/contacts", query={"search": "big@example.com"})
    assert found.status == 200 and found.body["data"] == [], found.body
    assert_consistent(org_id)
