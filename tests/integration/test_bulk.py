"""Bulk upsert and bulk delete against DynamoDB Local (SPEC §5, issue 3 outcomes 2–4)."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator

import pytest

from contacts_core.contacts.operations import LastUpserted, upsert_contact
from contacts_core.contacts.requests import ContactUpsert
from contacts_core.contacts.store import ContactStore
from contacts_core.dynamodb import dynamodb_client
from contacts_core.errors import DomainError
from contacts_core.http.responses import RESPONSE_BUDGET
from tests.support.invariants import assert_consistent as assert_identity_invariants

EXISTING = [
    {"phone": "+27821234567", "email": "sam@example.com", "first_name": "Sam"},
    {"email": "ahmed@example.com", "name": "Ahmed Hassan"},
    {"phone": "+14155557890", "name": "Sarah Johnson", "external_id": "crm-1"},
]
MIXED = [
    {"phone": "+919876543210", "name": "Priya Sharma", "language": "hi-IN"},  # new
    {"phone": "098765 43210", "country_code": "IN", "attributes": {"city": "Mumbai"}},  # same
    {"phone": "+919876543210", "email": "priya@example.com"},  # adds email to the new one
    {"phone": "+27821234567", "first_name": "Samuel", "tags": ["vip"]},  # existing, update
    {"phone": "+27821234567", "email": "sam@example.com", "first_name": "Samuel"},  # no-op
    {"phone": "+27821234567", "email": "ahmed@example.com"},  # phone→Sam, email→Ahmed: 409
    {"phone": "not a phone"},  # invalid
    {"first_name": "No identity"},  # invalid
    {"email": "ahmed@example.com", "phone": "+971501234567"},  # Ahmed gains a phone
    {"phone": "+971501234567", "email": "ahmed.new@example.com"},  # moves Ahmed's email
    {"email": "ahmed@example.com", "name": "Someone else"},  # the released email: new contact
    {"phone": "+14155557890", "nickname": "x"},  # unknown field
    {"phone": "+14155557890", "suppressed": True, "consent": {"sms": "opted_out"}},
    {"email": "ravi@example.com", "name": "Ravi Kumar"},
    {"email": "RAVI@example.com", "tags": ["dup"]},  # same person, other case
    {"external_id": "crm-1", "phone": "+14155550000"},  # Sarah by her id: her phone moves
    {"external_id": "crm-2", "email": "ravi@example.com"},  # unknown id: attached to Ravi
    {"external_id": "crm-3", "phone": "+27821234567"},  # attached to Sam
    {"external_id": "crm-9", "phone": "+14155550000"},  # Sarah is crm-1: 409, not re-keyed
    {"external_id": "crm-1", "email": "priya@example.com"},  # id→Sarah, email→Priya: 409
    {"external_id": "crm-4", "first_name": "Only an id"},  # new, no channel
    {"external_id": "crm-4", "email": "ravi@example.com"},  # crm-4 holder vs Ravi: 409
]


def comparable(org_id: str) -> list[dict]:
    """The org's contacts without ids and timestamps, in a stable order."""
    rows = []
    for c in ContactStore().scan_contacts(org_id):
        rows.append(c.model_dump(exclude={"org_id", "contact_id", "created_at", "updated_at",
                                          "name_key", "audience_ids", "membership_rev"}))
    return sorted(rows, key=lambda r: (r["phone"] or "", r["email"] or ""))


def seed(api, org_id):
    for body in EXISTING:
        assert api.request("POST", "/v1/contacts", org_id=org_id, json_body=body).status == 201


@pytest.mark.parametrize("mode", ["upsert", "create_only", "update_only"])
def test_bulk_equals_one_by_one_upserts_in_input_order(api, org_id, mode):
    bulk_org, single_org = org_id, org_id + "_single"
    seed(api, bulk_org)
    seed(api, single_org)
    # When the same mixed input goes through bulk on one org and single upserts (in the
    # same mode) on another
    response = api.request("POST", "/v1/contacts/bulk", org_id=bulk_org,
                           json_body={"contacts": MIXED, "mode": mode})
    assert response.status == 200, response.body
    singles = []
    for raw in MIXED:
        try:
            outcome, _ = upsert_contact(single_org, ContactUpsert.model_validate(raw),
                                        mode=mode)
            singles.append(outcome.result)
        except (DomainError, ValueError):
            singles.append("failed")
    # Then every item has the same outcome and the orgs hold the same contacts
    statuses = [r["status"] for r in response.body["results"]]
    assert statuses == singles
    assert [r["index"] for r in response.body["results"]] == list(range(len(MIXED)))
    assert comparable(bulk_org) == comparable(single_org)
    counts = response.body
    assert (counts["created"], counts["updated"], counts["unchanged"], counts["failed"]) == (
        statuses.count("created"), statuses.count("updated"), statuses.count("unchanged"),
        statuses.count("failed"))
    assert_identity_invariants(bulk_org)


def test_failed_items_say_why_with_their_index(api, org_id):
    seed(api, org_id)
    response = api.request("POST", "/v1/contacts/bulk", org_id=org_id,
                           json_body={"contacts": MIXED})
    results = response.body["results"]
    assert results[5]["error"]["code"] == "identity_conflict"
    assert {c["field"] for c in results[5]["error"]["conflicts"]} == {"phone", "email"}
    assert results[6]["error"]["errors"][0]["field"] == "phone"
    assert results[7]["error"]["errors"][0]["field"] == "phone"
    assert results[11]["error"]["errors"][0]["field"] == "nickname"
    assert results[1]["status"] == "updated" and results[1]["id"] == results[0]["id"]
    assert results[1]["contact"]["attributes"] == {"city": "Mumbai"}
    assert results[14]["matched_on"] == "email" and results[14]["contact"]["tags"] == ["dup"]


@pytest.mark.parametrize(("body", "status"), [
    ({"contacts": [{"email": f"x{i}@example.com"} for i in range(1001)]}, 400),
    ({"contacts": []}, 400), ({"items": []}, 400), ({"contacts": "x"}, 400)])
def test_bad_bulk_requests_answer_400_and_write_nothing(api, org_id, body, status):
    response = api.request("POST", "/v1/contacts/bulk", org_id=org_id, json_body=body)
    assert response.status == status
    assert next(iter(body)) in [e["field"] for e in response.body["errors"]]
    assert comparable(org_id) == []


@contextlib.contextmanager
def dynamodb_calls() -> Iterator[list[str]]:
    """The operation names of the DynamoDB calls made meanwhile (the rate limiter's aside)."""
    calls: list[str] = []
    events = dynamodb_client().meta.events

    def record(model, params, **_):
        if params.get("TableName") != os.environ["RATE_LIMITS_TABLE"]:  # the request's take
            calls.append(model.name)

    events.register("before-parameter-build.dynamodb", record)
    try:
        yield calls
    finally:
        events.unregister("before-parameter-build.dynamodb", record)


def test_1000_new_contacts_take_at_most_60_dynamodb_calls(api, org_id):
    contacts = [{"phone": f"+2782{i:07d}", "email": f"person{i}@example.com",
                 "first_name": f"P{i}"} for i in range(1000)]
    with dynamodb_calls() as calls:
        response = api.request("POST", "/v1/contacts/bulk", org_id=org_id,
                               json_body={"contacts": contacts})
    assert response.body["created"] == 1000, response.body["results"][:3]
    assert len(calls) <= 60, f"{len(calls)} calls: {set(calls)}"
    assert calls.count("BatchGetItem") == 20  # 2000 guard keys, 100 per call
    assert len(comparable(org_id)) == 1000
    again = api.request("POST", "/v1/contacts/bulk", org_id=org_id,
                        json_body={"contacts": contacts})
    assert again.body["unchanged"] == 1000


def test_a_run_of_items_on_one_contact_writes_once_per_item(api, org_id):
    # Given a bulk of 50 items on one phone, each renaming the contact (the first creates
    # it; the others are upserted one by one, in order, each on its own write)
    items = [{"phone": "+27821234567", "first_name": f"Name{i}"} for i in range(50)]
    # When it is sent
    with dynamodb_calls() as calls:
        response = api.request("POST", "/v1/contacts/bulk", org_id=org_id,
                               json_body={"contacts": items})
    # Then every item is applied in order, one version each, as one by one
    assert (response.body["created"], response.body["updated"]) == (1, 49), response.body
    [contact] = comparable(org_id)
    assert (contact["first_name"], contact["version"]) == ("Name49", 50)
    # And after item 1 (read afresh: its guards, then a rename tried as an UpdateItem),
    # each item is one write: the contact the previous item wrote is known, so neither
    # its guards nor the contact are read again
    assert calls.count("TransactWriteItems") == 50, calls
    assert calls.count("GetItem") == 0 and calls.count("UpdateItem") <= 1, calls
    assert calls.count("BatchGetItem") <= 3, calls  # the plan's guards (+ contacts), item 1's
    assert len(calls) <= 54, calls


def test_a_known_contact_deleted_meanwhile_never_refuses_a_create_only_upsert(api, org_id):
    # Given a contact with a phone, known to a run of upserts as the last one written
    created = api.request("POST", "/v1/contacts", org_id=org_id,
                          json_body={"phone": "+27821234567", "first_name": "Amahle"})
    last = LastUpserted(ContactStore().get(org_id, created.body["id"]))
    # When the contact is deleted by another request, and the run's next item, create_only
    # with that phone, comes
    assert api.request("DELETE", f"/v1/contacts/{created.body['id']}",
                       org_id=org_id).status == 204
    body = ContactUpsert.model_validate({"phone": "+27821234567", "first_name": "Buhle"})
    result, was_created = upsert_contact(org_id, body, mode="create_only", last=last)
    # Then it is decided on the guards as they are: the phone is free, so it creates
    assert was_created and result.result == "created"
    assert result.contact.id != created.body["id"]
    assert last.item is not None and last.item.contact_id == result.contact.id
    assert_identity_invariants(org_id)


def contacts_in_audience(api, org_id: str, count: int, members: int, phones: str
                         ) -> tuple[list[str], dict]:
    """``count`` contacts (phones ``phones`` + 4 digits), the first ``members`` of them in
    a new audience; their ids and the audience."""
    ids = [api.request("POST", "/v1/contacts", org_id=org_id,
                       json_body={"phone": f"{phones}{i:04d}"}).body["id"] for i in range(count)]
    audience = api.request("POST", "/v1/audiences", org_id=org_id,
                           json_body={"name": f"First {members}"}).body
    api.request("POST", f"/v1/audiences/{audience['id']}/contacts", org_id=org_id,
                json_body={"contact_ids": ids[:members]})
    return ids, audience


def test_bulk_delete_releases_guards_and_memberships(api, org_id):
    ids, audience = contacts_in_audience(api, org_id, 120, 80, "+2782123")
    response = api.request("POST", "/v1/contacts/bulk-delete", org_id=org_id,
                           json_body={"contact_ids": [*ids[:100], "con_missing", ids[0]]})
    assert response.body == {"deleted": 100, "not_found": ["con_missing"], "failed": []}
    fetched = api.request("GET", f"/v1/audiences/{audience['id']}", org_id=org_id).body
    assert fetched["contact_count"] == 0
    assert len(comparable(org_id)) == 20
    assert_identity_invariants(org_id)
    assert api.request("POST", "/v1/contacts", org_id=org_id,
                       json_body={"phone": "+27821230000"}).status == 201


def test_modes_fail_items_with_the_reason_spec_gives(api, org_id):
    # Given one existing contact
    existing = api.request("POST", "/v1/contacts", org_id=org_id,
                           json_body={"phone": "+27821234567"}).body
    items = [{"phone": "+27821234567", "first_name": "Sam"},
             {"email": "new@example.com"}, {"email": "new@example.com", "first_name": "N"}]
    # When the same items go in create_only and in update_only
    create_only = api.request("POST", "/v1/contacts/bulk", org_id=org_id,
                              json_body={"contacts": items, "mode": "create_only"}).body
    update_only = api.request("POST", "/v1/contacts/bulk", org_id=org_id,
                              json_body={"contacts": items, "mode": "update_only"}).body
    # Then create_only refuses the existing person (naming it) and the repeat of the new one
    assert [r["status"] for r in create_only["results"]] == ["failed", "created", "failed"]
    refused = create_only["results"][0]["error"]
    assert (refused["code"], refused["conflicting_contact_id"]) == (
        "identity_conflict", existing["id"])
    assert create_only["results"][2]["error"]["conflicting_contact_id"] == \
        create_only["results"][1]["id"]
    # ... and update_only updates both, now that the email exists
    assert [r["status"] for r in update_only["results"]] == ["updated", "unchanged", "updated"]
    # ... and an unknown person is not_found in update_only
    unknown = api.request("POST", "/v1/contacts/bulk", org_id=org_id, json_body={
        "contacts": [{"email": "nobody@example.com"}], "mode": "update_only"}).body
    assert unknown["results"][0]["status"] == "failed"
    assert unknown["results"][0]["error"]["code"] == "not_found"
    assert_identity_invariants(org_id)


def test_an_unknown_mode_is_a_400_naming_it(api, org_id):
    response = api.request("POST", "/v1/contacts/bulk", org_id=org_id,
                           json_body={"contacts": [{"email": "a@example.com"}],
                                      "mode": "merge"})
    assert response.status == 400
    assert [e["field"] for e in response.body["errors"]] == ["mode"]
    assert api.request("GET", "/v1/contacts", org_id=org_id).body["data"] == []


@pytest.mark.parametrize("odd", [None, "a string", 1, [], True])
def test_an_item_that_is_not_an_object_fails_alone(api, org_id, odd):
    # Given a bulk request whose second item is not a JSON object
    items = [{"email": "first@example.com"}, odd, {"email": "third@example.com"}]
    # When it is sent
    response = api.request("POST", "/v1/contacts/bulk", org_id=org_id,
                           json_body={"contacts": items})
    # Then that item alone fails, naming why, and the others are created
    assert response.status == 200, response.body
    results = response.body["results"]
    assert [r["status"] for r in results] == ["created", "failed", "created"]
    assert results[1]["index"] == 1
    assert results[1]["error"]["code"] == "validation_error"
    assert results[1]["error"]["errors"][0]["field"] == "body"
    assert len(comparable(org_id)) == 2


def test_a_contact_created_and_updated_in_one_request_is_never_updated_before_created(
        api, org_id):
    # Given a bulk request that creates 200 contacts and then updates each of them
    emails = [f"t{i}@example.com" for i in range(200)]
    items = [{"email": e} for e in emails] + [{"email": e, "first_name": "U"} for e in emails]
    # When it runs
    response = api.request("POST", "/v1/contacts/bulk", org_id=org_id,
                           json_body={"contacts": items})
    assert response.status == 200, response.body
    # Then every contact's updated_at is at or after its created_at, as answered and stored
    updated = [r for r in response.body["results"] if r["status"] == "updated"]
    assert len(updated) == 200
    for result in updated:
        contact = result["contact"]
        assert contact["updated_at"] >= contact["created_at"], contact
        stored = api.request("GET", f"/v1/contacts/{result['id']}", org_id=org_id).body
        assert stored["updated_at"] >= stored["created_at"], stored


def test_items_naming_huge_unknown_members_get_an_answer_that_fits_lambda(api, org_id):
    # Given 1000 items, each with an unknown member whose name is 5,500 characters
    long_names = [{"email": f"z{i}@example.com", "x" * 5500: 1} for i in range(1000)]
    # When they are bulk upserted
    response = api.request("POST", "/v1/contacts/bulk", org_id=org_id,
                           json_body={"contacts": long_names})
    # Then each fails naming the member cut short, and the answer is small
    assert response.status == 200 and response.body["failed"] == 1000
    (error,) = response.body["results"][0]["error"]["errors"]
    assert error == {"field": "x" * 64 + "…", "message": "unknown field"}
    assert len(json.dumps(response.body)) < 1_000_000


def test_items_failing_many_escaped_ways_still_fit_lambdas_response(api, org_id):
    # Given items whose 30 unknown members each have a name of 64 control characters (six
    # bytes apiece once JSON-escaped): listing their errors would answer over 6 MB
    def item(i: int) -> dict[str, object]:
        return {"email": f"y{i}@example.com",
                **{chr(1 + k) + "\x01" * 63 + str(i): 1 for k in range(30)}}
    body = {"contacts": [item(i) for i in range(480)]}
    assert len(json.dumps(body)) < 6 * 1024 * 1024
    # When they are bulk upserted
    response = api.request("POST", "/v1/contacts/bulk", org_id=org_id, json_body=body)
    # Then every item fails as invalid, and the whole answer fits Lambda's response budget
    assert response.status == 200 and response.body["failed"] == 480
    assert {r["error"]["code"] for r in response.body["results"]} == {"validation_error"}
    assert len(json.dumps(response.body)) <= RESPONSE_BUDGET


def test_a_bulk_upsert_with_no_time_left_writes_nothing_and_says_so(api, org_id, monkeypatch):
    # Given an invocation with less time left than a bulk request keeps for its answer
    from tests.integration import conftest

    monkeypatch.setattr(conftest._Context, "get_remaining_time_in_millis", lambda self: 4000)
    # When five new contacts are bulk upserted
    response = api.request("POST", "/v1/contacts/bulk", org_id=org_id, json_body={
        "contacts": [{"email": f"late{i}@example.com"} for i in range(5)]})
    # Then every item is reported not attempted, and none was written
    assert response.status == 200 and response.body["failed"] == 5
    assert {r["error"]["code"] for r in response.body["results"]} == {"not_attempted"}
    assert comparable(org_id) == []
    assert_identity_invariants(org_id)


def test_a_bulk_delete_running_out_of_time_reports_each_contact_exactly(api, org_id,
                                                                        monkeypatch):
    # Given 150 contacts, 60 of them in an audience
    ids, audience = contacts_in_audience(api, org_id, 150, 60, "+2782124")
    # And a request whose time runs out after its first two checks (some batches start)
    from contacts_core.contacts import bulk

    checks = iter(range(10**6))
    monkeypatch.setattr(bulk._Clock, "out_of_time", lambda self: next(checks) >= 2)
    # When they are all bulk deleted
    body = api.request("POST", "/v1/contacts/bulk-delete", org_id=org_id,
                       json_body={"contact_ids": ids}).body
    # Then each contact is either deleted or reported not attempted, and those still exist
    late = [f["id"] for f in body["failed"]]
    assert {f["error"]["code"] for f in body["failed"]} == {"not_attempted"}
    assert 0 < body["deleted"] < 150 and body["deleted"] + len(late) == 150
    assert {c.contact_id for c in ContactStore().scan_contacts(org_id)} == set(late)
    # And guards, memberships and the audience count are exact
    members = sum(1 for i in late if i in ids[:60])
    assert api.request("GET", f"/v1/audiences/{audience['id']}", org_id=org_id
                       ).body["contact_count"] == members
    assert_identity_invariants(org_id)
