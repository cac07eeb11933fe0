"""Invariants I1, I2, I4, I5 (SPEC §3) against DynamoDB Local — no mocks.

The checker lives in :mod:`tests.support.invariants`; the last tests here show it (and the
stream replay of :mod:`tests.support.streams`) can fail.
"""

from __future__ import annotations

import random
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest

from contacts_core.contacts.models import UpsertResult
from contacts_core.contacts.operations import (
    create_contact,
    delete_contact,
    update_contact,
    upsert_contact,
)
from contacts_core.contacts.requests import ContactCreate, ContactPatch, ContactUpsert
from contacts_core.contacts.search import ListQuery, list_contacts
from contacts_core.contacts.store import ContactStore
from contacts_core.errors import ConcurrentModification, ContactNotFound, DomainError
from tests.support.invariants import assert_consistent, check
from tests.support.streams import read_stream, replay

P1, P2 = "+27821234560", "+27821234561"
E1 = "lerato@example.com"


def test_32_concurrent_upserts_of_one_phone_leave_exactly_one_contact(dynamodb, org_id):
    # Given 32 upserts of the same new person, each with a different first name
    bodies = [ContactUpsert(phone="+27821234567", first_name=f"Sam{i}") for i in range(32)]
    # When 16 threads send them at once
    def upsert(body: ContactUpsert) -> UpsertResult | None:
        try:
            return upsert_contact(org_id, body)[0]
        except ConcurrentModification:  # 409, retryable: lost every race of its budget
            return None

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(upsert, bodies))
    outcomes = [o for o in answers if o is not None]
    # Then exactly one contact exists, one call created it, the others matched it — or,
    # on a cold engine where 16 writers on one item can outlast a retry budget, answered
    # 409 having written nothing (the version counts only the updates)
    contacts = assert_consistent(org_id).contacts
    assert len(contacts) == 1
    (contact,) = contacts.values()
    results = Counter(o.result for o in outcomes)
    assert results["created"] == 1 and results["created"] + results["updated"] == len(outcomes)
    assert len(outcomes) >= 24, f"{32 - len(outcomes)} of 32 answered 409"
    assert {o.contact.id for o in outcomes} == {contact["contact_id"]}
    assert contact["version"] == 1 + results["updated"]


PHONES = [f"+2782123456{i}" for i in range(6)]
EMAILS = [f"person{i}@example.com" for i in range(6)]


def _random_operation(org_id: str, rng: random.Random, known: list[str]) -> None:
    phone = rng.choice([*PHONES, None])
    email = rng.choice([*EMAILS, None])
    kind = rng.choice(["create", "upsert", "upsert", "update", "update", "delete"])
    try:
        if kind == "create" and (phone or email):
            known.append(create_contact(org_id, ContactCreate(phone=phone, email=email)).id)
        elif kind == "upsert" and (phone or email):
            result, _ = upsert_contact(org_id, ContactUpsert(
                phone=phone, email=email, first_name=rng.choice(["A", "B"])))
            known.append(result.contact.id)
        elif kind == "update" and known:
            patch = rng.choice([{"phone": phone}, {"email": email}, {"first_name": "C"},
                                {"phone": phone, "email": email}, {"tags": ["t"]}])
            update_contact(org_id, rng.choice(known), ContactPatch.model_validate(patch))
        elif kind == "delete" and known:
            delete_contact(org_id, rng.choice(known))
    except (DomainError, ValueError):
        pass  # conflicts, 404s and "needs an identity" are expected outcomes here


def test_randomized_concurrent_run_keeps_guards_and_contacts_in_step(dynamodb, org_id):
    # Given 6 phones and 6 emails fought over by 8 threads, 400 operations in all
    def worker(seed: int) -> None:
        rng, known = random.Random(seed), list[str]()
        for _ in range(50):
            _random_operation(org_id, rng, known)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(worker, range(8)))
    # Then every guard matches its contact and every phone/email is guarded (I1, I2)
    assert assert_consistent(org_id).contacts, "the run should leave some contacts behind"


def test_upsert_twice_in_a_row_reads_its_own_write(dynamodb, org_id):
    first, created = upsert_contact(org_id, ContactUpsert(email="priya@example.com"))
    second, again = upsert_contact(org_id, ContactUpsert(email="priya@example.com",
                                                         language="hi-IN"))
    assert created and not again and second.result == "updated"
    assert second.contact.id == first.contact.id


def test_the_same_email_upserted_twice_answers_201_then_200(api, org_id):
    # Given an upsert that creates a contact from an email only (bug 3: the second was a 500)
    body = {"email": "priya@example.com"}
    first = api.request("POST", "/v1/contacts/upsert", org_id=org_id, json_body=body)
    # When the identical upsert is sent again
    second = api.request("POST", "/v1/contacts/upsert", org_id=org_id, json_body=body)
    # Then it matches the same contact and changes nothing
    assert (first.status, second.status) == (201, 200), second.body
    assert second.body["result"] == "unchanged" and second.body["matched_on"] == "email"
    assert second.body["contact"]["id"] == first.body["contact"]["id"]
    assert_consistent(org_id)


def test_upsert_that_matches_on_phone_and_clears_the_email_releases_its_guard(api, org_id):
    # Given a contact with a phone and an email
    created = api.request("POST", "/v1/contacts", org_id=org_id,
                          json_body={"phone": P1, "email": E1}).body
    # When an upsert matches it on the phone and sends email null (bug 3: a 500)
    response = api.request("POST", "/v1/contacts/upsert", org_id=org_id,
                           json_body={"phone": P1, "email": None})
    # Then the contact lost its email, and its email guard went with it
    assert response.status == 200, response.body
    assert response.body["contact"]["id"] == created["id"]
    assert response.body["contact"]["email"] is None
    snap = assert_consistent(org_id)
    assert set(snap.guards) == {f"{org_id}#phone#{P1}"}


def test_bulk_upsert_that_moves_and_clears_identities_releases_the_old_guards(api, org_id):
    # Given a contact with phone P1 and email E1
    contact = api.request("POST", "/v1/contacts", org_id=org_id,
                          json_body={"phone": P1, "email": E1}).body
    # When a bulk item matched on E1 moves the phone to P2 (bug 1: P1's guard stayed)
    moved = api.request("POST", "/v1/contacts/bulk", org_id=org_id,
                        json_body={"contacts": [{"email": E1, "phone": P2}]})
    assert moved.status == 200 and moved.body["results"][0]["status"] == "updated", moved.body
    assert assert_consistent(org_id).guards == {f"{org_id}#phone#{P2}": contact["id"],
                                                f"{org_id}#email#{E1}": contact["id"]}
    # And another, matched on P2, clears the email (bug 1: E1's guard stayed)
    cleared = api.request("POST", "/v1/contacts/bulk", org_id=org_id,
                          json_body={"contacts": [{"phone": P2, "email": None}]})
    assert cleared.status == 200 and cleared.body["results"][0]["status"] == "updated"
    # Then only P2 is guarded, by the contact, and P1 and E1 are free for others
    assert assert_consistent(org_id).guards == {f"{org_id}#phone#{P2}": contact["id"]}
    other = api.request("POST", "/v1/contacts", org_id=org_id,
                        json_body={"phone": P1, "email": E1})
    assert other.status == 201, other.body


@pytest.fixture
def other_org(org_id: str) -> str:
    return org_id + "_other"


def test_another_orgs_ids_answer_404_everywhere(api, org_id, other_org):
    # Given a contact of one org
    sam = api.request("POST", "/v1/contacts", org_id=org_id,
                      json_body={"phone": "+27821234567", "email": "sam@example.com",
                                 "name": "Sam Mokoena"}).body
    path = f"/v1/contacts/{sam['id']}"
    # When another org reaches for it, Then it answers exactly like a missing id
    missing = api.request("GET", "/v1/contacts/con_01JD8Q2M6W3YQ0V4C7N5T9KX2B", org_id=other_org)
    for method, body in [("GET", None), ("PATCH", {"first_name": "X"}), ("DELETE", None)]:
        response = api.request(method, path, org_id=other_org, json_body=body)
        assert response.status == 404
        assert response.body["detail"] == missing.body["detail"].replace(
            "con_01JD8Q2M6W3YQ0V4C7N5T9KX2B", sam["id"])
    for term in ("+27821234567", "sam@example.com", "sam"):
        found = api.request("GET", "/v1/contacts", org_id=other_org, query={"search": term})
        assert found.body["data"] == []
    # and the other org may hold the same phone and email itself
    own = api.request("POST", "/v1/contacts", org_id=other_org,
                      json_body={"phone": "+27821234567", "email": "sam@example.com"})
    assert own.status == 201
    assert api.request("GET", path, org_id=org_id).body == sam
    page = list_contacts(org_id, ListQuery())
    assert [c.id for c in page.data] == [sam["id"]]


def test_get_of_a_deleted_contact_is_not_found(dynamodb, org_id):
    contact = create_contact(org_id, ContactCreate(phone="+971501234567"))
    delete_contact(org_id, contact.id)
    with pytest.raises(ContactNotFound):
        delete_contact(org_id, contact.id)


# --------------------------------------------------------------- the checker can fail
GHOST = "con_01JD8Q2M6W3YQ0V4C7N5T9KX2B"


@pytest.fixture
def raw(dynamodb: str):
    """A plain client and the store's table names, to write behind the domain's back."""
    return boto3.client("dynamodb"), ContactStore(client=boto3.client("dynamodb"))


def test_the_checker_passes_a_consistent_org_with_audiences(api, org_id):
    # Given contacts in an audience, one removed again
    ids = [api.request("POST", "/v1/contacts", org_id=org_id,
                       json_body={"phone": p}).body["id"] for p in (P1, P2)]
    audience = api.request("POST", "/v1/audiences", org_id=org_id,
                           json_body={"name": "VIPs"}).body
    api.request("POST", f"/v1/audiences/{audience['id']}/contacts", org_id=org_id,
                json_body={"contact_ids": ids})
    api.request("POST", f"/v1/audiences/{audience['id']}/contacts/remove", org_id=org_id,
                json_body={"contact_ids": ids[:1]})
    # Then the checker finds nothing wrong and sees one membership
    report = check(org_id)
    assert report.violations() == []
    assert report.snapshot is not None and report.snapshot.members == {(audience["id"], ids[1])}


def test_the_checker_catches_an_orphan_guard(raw, org_id):
    # Given a consistent org, When a guard is written behind the domain's back
    client, store = raw
    create_contact(org_id, ContactCreate(email="ravi@example.com"))
    client.put_item(TableName=store.identities_table, Item={
        "identity": {"S": store.guard_id(org_id, "phone", "+919123456789")},
        "contact_id": {"S": GHOST}, "org_id": {"S": org_id}})
    # Then the checker reports it
    report = check(org_id)
    assert len(report.orphan_guards) == 1 and GHOST in report.orphan_guards[0]
    with pytest.raises(AssertionError, match="orphan_guards 1"):
        assert_consistent(org_id)


def test_the_checker_catches_a_duplicate_phone_and_an_unguarded_value(raw, org_id):
    # Given a contact, When a second contact with its phone is written without a guard
    client, store = raw
    create_contact(org_id, ContactCreate(phone=P1))
    client.put_item(TableName=store.contacts_table, Item={
        "org_id": {"S": org_id}, "contact_id": {"S": GHOST}, "phone": {"S": P1},
        "version": {"N": "1"}})
    # Then both the duplicate and the unguarded value are reported
    report = check(org_id)
    assert report.duplicates == [f"phone {P1} held by {sorted(report.snapshot.contacts)}"]
    assert len(report.unguarded) == 1 and GHOST in report.unguarded[0]


def test_the_checker_catches_a_wrong_count_and_a_dangling_membership(api, raw, org_id):
    # Given an audience with one member
    client, store = raw
    cid = api.request("POST", "/v1/contacts", org_id=org_id, json_body={"phone": P1}).body["id"]
    aud = api.request("POST", "/v1/audiences", org_id=org_id, json_body={"name": "A"}).body["id"]
    api.request("POST", f"/v1/audiences/{aud}/contacts", org_id=org_id,
                json_body={"contact_ids": [cid]})
    # When a membership of a deleted contact appears behind the domain's back
    client.put_item(TableName=store.members_table, Item={
        "audience_id": {"S": aud}, "contact_id": {"S": GHOST}, "org_id": {"S": org_id}})
    # Then the count and the membership are both reported
    report = check(org_id)
    assert report.counts == [f"{aud} contact_count 1 != 2 members"]
    assert report.memberships == [f"deleted contact {GHOST} still a member of {aud}"]


def _record(seq: int, cid: str, old: dict | None, new: dict | None) -> dict:
    def image(values: dict | None) -> dict | None:
        return None if values is None else {k: {"S": v} for k, v in values.items()}

    return {"dynamodb": {"SequenceNumber": str(seq),
                         "Keys": {"org_id": {"S": "o"}, "contact_id": {"S": cid}},
                         "OldImage": image(old), "NewImage": image(new)}}


def test_the_stream_replay_catches_a_duplicate_that_outlives_a_transaction():
    # Given X holds P1; Y takes P1 and X lets it go only two records later
    x = {"phone": P1}
    records = [_record(1, "x", None, x), _record(2, "y", None, {"phone": P1}),
               _record(3, "z", None, {"phone": P2}), _record(4, "x", x, {})]
    # When replayed with a one-record window, or with no transaction holding x and y
    # Then the duplicate is a violation; inside one transaction's records it is transient
    assert replay(records, "o", window=2).violations
    assert replay(records, "o", together=set()).violations
    together = {frozenset({("o", "x"), ("o", "y")})}
    assert replay(records, "o", together=together).transient == 1
    assert replay(records, "o", together=together).violations == []


def test_the_stream_replay_catches_a_lost_record():
    records = [_record(1, "x", None, {"phone": P1}), _record(2, "x", {"phone": P2}, None)]
    assert "lost or reordered" in replay(records, "o").violations[0]


def test_the_stream_of_a_consistent_org_replays_without_violations(api, org_id):
    # Given a contact moving its phone and another taking it afterwards
    x = api.request("POST", "/v1/contacts", org_id=org_id, json_body={"phone": P1}).body
    api.request("PATCH", f"/v1/contacts/{x['id']}", org_id=org_id, json_body={"phone": P2})
    api.request("POST", "/v1/contacts", org_id=org_id, json_body={"phone": P1})
    # Then the replay of the real stream sees three records and no moment with a duplicate
    outcome = replay(read_stream(), org_id)
    assert (outcome.records, outcome.violations) == (3, [])
