"""``Idempotency-Key`` on POST/PATCH/DELETE (SPEC §9.4) through the real handlers against
DynamoDB Local: replay, another body (422), in flight (409), expiry, scope, faults."""

from __future__ import annotations

import json
import random
import string
import time
import uuid
from collections.abc import Iterator

import pytest

from contacts_core.http import idempotency
from tests.support.hooks import (  # noqa: F401 - hooks_fixture
    Background,
    Cancel,
    Crash,
    Hooks,
    InjectedCrash,
    Pause,
    hooks_fixture,
)
from tests.support.invariants import assert_consistent

SAM = {"phone": "+27821234567", "email": "sam@example.com", "first_name": "Sam"}


@pytest.fixture(autouse=True)
def fresh_store() -> Iterator[None]:
    """Each test builds the persistence layer anew (with its own client and TTL)."""
    idempotency._store.cache_clear()
    yield
    idempotency._store.cache_clear()


def key() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


def contacts(call) -> list[dict]:
    return call("GET", "/v1/contacts").body["data"]


def test_a_retried_create_replays_the_first_201_and_creates_one_contact(call):
    # Given a create sent with a key
    headers = key()
    first = call("POST", "/v1/contacts", SAM, headers=headers)
    # When the client retries it (say after a network error)
    again = call("POST", "/v1/contacts", SAM, headers=headers)
    # Then it gets the first response again, marked as a replay, and one contact exists
    assert first.status == again.status == 201
    assert again.body == first.body and again.headers["ETag"] == first.headers["ETag"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert [c["id"] for c in contacts(call)] == [first.body["id"]]


def test_the_same_json_written_differently_is_the_same_request(api, org_id):
    # Given a create whose retry serialises the body with other spacing and member order
    headers = key()
    body = json.dumps(SAM)
    reordered = json.dumps(dict(reversed(list(SAM.items()))), indent=2)
    first = api.request("POST", "/v1/contacts", org_id=org_id, raw_body=body, headers=headers)
    # When it is retried
    again = api.request("POST", "/v1/contacts", org_id=org_id, raw_body=reordered,
                        headers=headers)
    # Then it is a replay, not a reuse
    assert (first.status, again.status) == (201, 201) and again.body == first.body


def test_the_same_key_with_another_body_is_refused_with_422_and_changes_nothing(call):
    # Given a key used for one contact
    headers = key()
    created = call("POST", "/v1/contacts", SAM, headers=headers)
    # When it comes back with another contact
    reused = call("POST", "/v1/contacts", {"email": "other@example.com"}, headers=headers)
    # Then 422 idempotency_key_reused, and the other contact was not created
    assert reused.status == 422
    assert reused.body["code"] == "idempotency_key_reused"
    assert reused.body["type"].endswith("idempotency_key_reused")
    assert [c["id"] for c in contacts(call)] == [created.body["id"]]


def test_the_same_key_on_another_endpoint_is_a_reuse(call):
    # Given a key used to create a contact
    headers = key()
    created = call("POST", "/v1/contacts", SAM, headers=headers).body
    # When the same key is sent with a PATCH of that contact
    patched = call("PATCH", f"/v1/contacts/{created['id']}", {"first_name": "S"},
                   headers=headers)
    # Then it is refused, and the contact is unchanged
    assert patched.status == 422 and patched.body["code"] == "idempotency_key_reused"
    assert call("GET", f"/v1/contacts/{created['id']}").body["first_name"] == "Sam"


def test_keys_are_scoped_per_org(api):
    # Given two orgs that happen to use the same key
    headers = key()
    orgs = [f"org_{uuid.uuid4().hex[:12]}" for _ in range(2)]
    # When each creates a contact with it
    answers = [api.request("POST", "/v1/contacts", org_id=o, json_body=SAM, headers=headers)
               for o in orgs]
    # Then both ran: neither sees the other's response
    assert [a.status for a in answers] == [201, 201]
    assert answers[0].body["id"] != answers[1].body["id"]
    assert "Idempotent-Replayed" not in answers[1].headers


def test_a_refused_invalid_request_is_not_kept_so_the_fixed_one_runs(call):
    # Given a create refused as invalid (400: it did nothing)
    headers = key()
    invalid = call("POST", "/v1/contacts", {"phone": "not a phone"}, headers=headers)
    assert invalid.status == 400
    # When the client fixes the body and sends it under the same key
    fixed = call("POST", "/v1/contacts", SAM, headers=headers)
    # Then it runs (no 422), and a retry of it replays
    assert fixed.status == 201
    assert call("POST", "/v1/contacts", SAM, headers=headers).body == fixed.body


@pytest.mark.parametrize("depth", [40, 494, 5_000])
@pytest.mark.parametrize(("method", "path"), [
    ("POST", "/v1/contacts"), ("POST", "/v1/audiences"), ("PATCH", "/v1/contacts/{id}"),
    ("DELETE", "/v1/contacts/{id}")])
def test_a_keyed_body_nested_too_deep_is_a_400_not_a_500(api, org_id, method, path, depth):
    # Given a contact, and a body nested deeper than any the API takes
    contact = api.request("POST", "/v1/contacts", org_id=org_id, json_body={
        "email": f"deep-{uuid.uuid4().hex[:8]}@example.com"}).body
    deep = "[" * depth + "]" * depth
    # When it is sent with an Idempotency-Key (fingerprinted before the handler parses it)
    response = api.request(method, path.format(id=contact["id"]), org_id=org_id,
                           raw_body=deep, headers=key())
    # Then a route that reads a body refuses it naming the body; a DELETE ignores it
    if method == "DELETE":
        assert response.status == 204, response.body
    else:
        assert response.status == 400, response.body
        assert [e["field"] for e in response.body["errors"]] == ["body"]


def test_a_conflict_the_request_ran_into_is_replayed(call):
    # Given a contact holding the phone, and a keyed create of the same phone → 409
    call.create(SAM)
    headers = key()
    conflict = call("POST", "/v1/contacts", {"phone": SAM["phone"]}, headers=headers)
    assert conflict.status == 409
    # When it is retried
    again = call("POST", "/v1/contacts", {"phone": SAM["phone"]}, headers=headers)
    # Then the recorded answer comes back (as Stripe replays a first request's error)
    assert again.status == 409 and again.headers["Idempotent-Replayed"] == "true"
    assert json.dumps(again.body) == json.dumps(conflict.body)


def test_a_retryable_conflict_is_not_kept_so_the_retry_runs(call, hooks: Hooks):
    # Given a keyed create that meets endless contention: 409 concurrent_modification,
    # "nothing was written, retry the request"
    headers = key()
    hooks.add(Cancel())
    busy = call("POST", "/v1/contacts", SAM, headers=headers)
    assert busy.status == 409 and busy.body["code"] == "concurrent_modification", busy.body
    # When the contention is over and the client retries as told, under the same key
    hooks.clear()
    retried = call("POST", "/v1/contacts", SAM, headers=headers)
    # Then the request runs (not a replay of the conflict), and a further retry replays it
    assert retried.status == 201 and "Idempotent-Replayed" not in retried.headers
    again = call("POST", "/v1/contacts", SAM, headers=headers)
    assert again.status == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert contacts(call) == [retried.body]


def test_a_retried_large_create_only_bulk_replays_its_first_answer(call):
    # Given a keyed create_only bulk of 1000 new contacts (its answer, ≈ 1 MB, is far over
    # one DynamoDB item as it is: the record keeps it compressed)
    headers = key()
    body = {"mode": "create_only",
            "contacts": [{"email": f"p{i}@example.com", "first_name": "P" * 40}
                         for i in range(1000)]}
    first = call("POST", "/v1/contacts/bulk", body, headers=headers)
    assert len(json.dumps(first.body).encode()) > 2 * idempotency.MAX_RECORDED_BYTES
    # When it is retried under the same key (say the first answer was lost)
    again = call("POST", "/v1/contacts/bulk", body, headers=headers)
    # Then the retry gets the first answer, all 1000 created, marked as a replay (before,
    # it ran again and create_only reported every item as an identity conflict)
    assert (first.status, first.body["created"]) == (200, 1000)
    assert again.status == 200 and again.body == first.body
    assert again.headers["Idempotent-Replayed"] == "true"
    assert all(len(json.dumps(r)) < idempotency.MAX_RECORDED_BYTES
               for r in idempotency_records())


def test_an_incompressible_answer_too_large_to_record_is_answered_and_a_retry_runs(call):
    # Given a keyed bulk upsert whose contacts carry random text (≈ 600 KB that no
    # compression brings under one DynamoDB item)
    rng = random.Random(11)
    alphabet = string.ascii_letters + string.digits
    headers = key()
    body = {"contacts": [{"email": f"r{i}@example.com", "attributes": {
        "noise": "".join(rng.choices(alphabet, k=600))}} for i in range(1000)]}
    first = call("POST", "/v1/contacts/bulk", body, headers=headers)
    # When it is retried under the same key
    again = call("POST", "/v1/contacts/bulk", body, headers=headers)
    # Then both were answered (never a 5xx), and the retry ran again, changing nothing
    assert (first.status, first.body["created"]) == (200, 1000)
    assert (again.status, again.body["unchanged"]) == (200, 1000)
    assert "Idempotent-Replayed" not in again.headers


def test_an_answer_under_the_limit_but_over_an_item_once_escaped_is_never_a_500(call):
    # Given contacts whose attribute values are all double quotes (each one 2 bytes in the
    # answer's JSON, 4 in the record that stores that JSON as a string), 14 KB each
    quotes = {f"k{n}": '"' * 1000 for n in range(7)}
    ids = [call.create({"email": f"q{i}@example.com", "attributes": quotes})["id"]
           for i in range(21)]
    # When a keyed batch get answers about 300 KB of them (≈ 600 KB once escaped), twice
    headers = key()
    first = call("POST", "/v1/contacts/batch-get", {"ids": ids}, headers=headers)
    again = call("POST", "/v1/contacts/batch-get", {"ids": ids}, headers=headers)
    # Then both are answered (the OrgClient fails on any 5xx), the same
    assert first.status == again.status == 200
    assert 250_000 < len(json.dumps(first.body).encode()) < idempotency.MAX_RECORDED_BYTES
    assert again.body == first.body


def test_a_retried_webhook_endpoint_create_makes_one_endpoint(call):
    # Given an endpoint registration with a key
    headers = key()
    body = {"url": "https://hooks.example.com/contacts", "events": ["*"]}
    first = call("POST", "/v1/webhook-endpoints", body, headers=headers)
    # When it is retried
    again = call("POST", "/v1/webhook-endpoints", body, headers=headers)
    # Then one endpoint exists, and the retry got the same one (secret included)
    assert first.status == again.status == 201 and again.body == first.body
    assert first.body["secret"].startswith("whsec_")
    assert [e["id"] for e in call("GET", "/v1/webhook-endpoints").body["data"]] \
        == [first.body["id"]]
    # And the record that replayed it holds the secret only encrypted
    assert first.body["secret"] not in json.dumps(idempotency_records())
    assert any(first.body["id"] in json.dumps(r) for r in idempotency_records())


def test_a_retried_delete_replays_its_204_instead_of_404(call):
    # Given a contact deleted with a key
    contact = call.create(SAM)
    headers = key()
    first = call("DELETE", f"/v1/contacts/{contact['id']}", headers=headers)
    # When the delete is retried with the key, and once more without one
    again = call("DELETE", f"/v1/contacts/{contact['id']}", headers=headers)
    unkeyed = call("DELETE", f"/v1/contacts/{contact['id']}")
    # Then the keyed retry answers like the first; the unkeyed one sees it gone
    assert (first.status, again.status, unkeyed.status) == (204, 204, 404)


@pytest.mark.parametrize("bad", ["", " ", "a b", "x" * 256, "clé", "k1,k2"])
def test_a_malformed_key_is_a_400_naming_the_header(call, bad):
    # When a create carries a key that is empty, has spaces, is too long, not ASCII, or two
    # keys joined by a comma (the header sent twice)
    response = call("POST", "/v1/contacts", SAM, headers={"Idempotency-Key": bad})
    # Then 400 names the header, and nothing was created
    assert response.status == 400
    assert response.body["errors"][0]["field"] == "Idempotency-Key"
    assert contacts(call) == []


def test_a_key_on_a_get_is_ignored(call):
    # Given a contact, read twice with the same key
    contact = call.create(SAM)
    headers = key()
    reads = [call("GET", f"/v1/contacts/{contact['id']}", headers=headers) for _ in range(2)]
    # Then both are plain reads (GET is idempotent by itself)
    assert all(r.status == 200 and "Idempotent-Replayed" not in r.headers for r in reads)


def test_a_repeat_while_the_first_is_in_flight_gets_409_then_the_first_response(
        api, org_id, call, hooks: Hooks):
    # Given a keyed create paused just before it writes the contact
    headers = key()
    paused = hooks.add(Pause("TransactWriteItems", when="before", actor="first"))
    first = Background(lambda: api.request("POST", "/v1/contacts", org_id=org_id,
                                           json_body=SAM, headers=headers),
                       "first", hooks)
    paused.wait()
    # When the client repeats it meanwhile
    repeat = call("POST", "/v1/contacts", SAM, headers=headers)
    # Then 409 idempotency_in_progress, retryable
    assert repeat.status == 409 and repeat.body["code"] == "idempotency_in_progress"
    assert repeat.headers["Retry-After"] == "1" and repeat.body["retryable"] is True
    # And once the first finishes, the repeat gets its 201
    paused.release.set()
    done = first.result()
    assert done.status == 201
    assert call("POST", "/v1/contacts", SAM, headers=headers).body == done.body
    assert [c["id"] for c in contacts(call)] == [done.body["id"]]


def test_a_key_expires_after_its_time_and_runs_again(call, monkeypatch):
    # Given keys kept 1 s, and a create under one
    monkeypatch.setenv("IDEMPOTENCY_TTL_SECONDS", "1")
    headers = key()
    first = call("POST", "/v1/contacts", SAM, headers=headers)
    assert call("POST", "/v1/contacts", SAM, headers=headers).status == 201  # replayed
    # When the same request comes after the key expired
    time.sleep(2.1)
    late = call("POST", "/v1/contacts", SAM, headers=headers)
    # Then it ran again: the contact exists now, so it is a conflict with the first one
    assert first.status == 201 and late.status == 409
    assert late.body["conflicting_contact_id"] == first.body["id"]
    assert "Idempotent-Replayed" not in late.headers


def crash_while_recording(api, org_id: str, hooks: Hooks, headers: dict[str, str],
                          when: str) -> None:
    """A keyed upsert whose function dies ``when`` (before/after) Powertools writes the
    response into the in-progress record (its one ``UpdateItem`` on the table)."""
    hooks.add(Crash(1, when, op="UpdateItem", actor="crashing",  # type: ignore[arg-type]
                    table="Idempotency"))
    with hooks.acting("crashing"), pytest.raises(InjectedCrash):
        api.request("POST", "/v1/contacts/upsert", org_id=org_id, json_body=SAM,
                    headers=headers)
    hooks.rules.clear()


def test_a_crash_before_the_response_is_recorded_holds_the_key_until_the_function_would_have_ended(
        api, org_id, call, hooks: Hooks):
    # Given an upsert that wrote its contact, then died before recording its response
    headers = key()
    crash_while_recording(api, org_id, hooks, headers, "before")
    # When the client retries while the dead function's time has not run out
    retry = call("POST", "/v1/contacts/upsert", SAM, headers=headers)
    # Then it is told the request is in progress, and the data is consistent
    assert retry.status == 409 and retry.body["code"] == "idempotency_in_progress"
    assert_consistent(org_id)
    # And after that time (here: the record's in-progress expiry moved to the past) the
    # retry runs again: the upsert finds what the crashed one wrote and changes nothing
    expire_in_progress_records()
    finished = call("POST", "/v1/contacts/upsert", SAM, headers=headers)
    assert finished.status == 200 and finished.body["result"] == "unchanged"
    assert len(contacts(call)) == 1
    assert_consistent(org_id)


def test_a_crash_after_the_response_is_recorded_replays_it(api, org_id, call, hooks: Hooks):
    # Given an upsert that recorded its response, then died before answering
    headers = key()
    crash_while_recording(api, org_id, hooks, headers, "after")
    # When the client retries
    retry = call("POST", "/v1/contacts/upsert", SAM, headers=headers)
    # Then it gets the response the dead function would have sent
    assert retry.status == 201 and retry.body["result"] == "created"
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert [c["id"] for c in contacts(call)] == [retry.body["contact"]["id"]]


def expire_in_progress_records() -> None:
    """Move every in-progress record's expiry to the past, as time passing would."""
    import os

    import boto3

    client = boto3.client("dynamodb")
    for item in idempotency_records():
        if item.get("status", {}).get("S") == "INPROGRESS":
            client.update_item(TableName=os.environ["IDEMPOTENCY_TABLE"], Key={"id": item["id"]},
                               UpdateExpression="SET in_progress_expiration = :past",
                               ExpressionAttributeValues={":past": {"N": "1"}})


def idempotency_records() -> list[dict]:
    """Every item of the Idempotency table, raw."""
    import os

    import boto3

    client = boto3.client("dynamodb")
    return [item for page in client.get_paginator("scan").paginate(
        TableName=os.environ["IDEMPOTENCY_TABLE"]) for item in page["Items"]]
