"""Invariants I1–I4 (SPEC §3) under concurrency, against DynamoDB Local — no mocks."""

from __future__ import annotations

import random
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from contacts_core.contacts import (
    ListQuery,
    create_contact,
    delete_contact,
    list_contacts,
    update_contact,
    upsert_contact,
)
from contacts_core.errors import ContactNotFound, DomainError
from contacts_core.models import ContactCreate, ContactPatch, ContactUpsert
from contacts_core.store import ContactStore


def assert_identity_invariants(org_id: str) -> list:
    """I1 and I2 for one org: unique identities, every guard matched, every value guarded."""
    store = ContactStore()
    contacts = [c for c in store.scan_contacts() if c.org_id == org_id]
    guards = {identity: cid for identity, cid in store.scan_guards()
              if identity.startswith(f"{org_id}#")}
    by_id = {c.contact_id: c for c in contacts}
    for field in ("phone", "email"):
        values = Counter(getattr(c, field) for c in contacts if getattr(c, field))
        assert all(n == 1 for n in values.values()), f"duplicate {field}: {values}"
    for contact in contacts:
        for field, value in contact.identities().items():
            assert guards.get(store.guard_id(org_id, field, value)) == contact.contact_id, (
                f"{contact.contact_id} holds unguarded {field} {value}")
    for identity, contact_id in guards.items():
        _, field, value = identity.split("#", 2)
        assert contact_id in by_id, f"orphan guard {identity}"
        assert getattr(by_id[contact_id], field) == value, f"guard {identity} points elsewhere"
    return contacts


def test_32_concurrent_upserts_of_one_phone_leave_exactly_one_contact(dynamodb, org_id):
    # Given 32 upserts of the same new person, each with a different first name
    bodies = [ContactUpsert(phone="+27821234567", first_name=f"Sam{i}") for i in range(32)]
    # When 16 threads send them at once
    with ThreadPoolExecutor(16) as pool:
        outcomes = list(pool.map(lambda b: upsert_contact(org_id, b)[0], bodies))
    # Then exactly one contact exists, one call created it, the others matched it
    contacts = assert_identity_invariants(org_id)
    assert len(contacts) == 1
    results = Counter(o.result for o in outcomes)
    assert results["created"] == 1 and results["created"] + results["updated"] == 32
    assert {o.contact.id for o in outcomes} == {contacts[0].contact_id}
    assert contacts[0].version == 1 + results["updated"]


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
        rng, known = random.Random(seed), []
        for _ in range(50):
            _random_operation(org_id, rng, known)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(worker, range(8)))
    # Then every guard matches its contact and every phone/email is guarded (I1, I2)
    contacts = assert_identity_invariants(org_id)
    assert contacts, "the run should leave some contacts behind"


def test_upsert_twice_in_a_row_reads_its_own_write(dynamodb, org_id):
    first, created = upsert_contact(org_id, ContactUpsert(email="priya@example.com"))
    second, again = upsert_contact(org_id, ContactUpsert(email="priya@example.com",
                                                         language="hi-IN"))
    assert created and not again and second.result == "updated"
    assert second.contact.id == first.contact.id


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


def test_the_invariant_checker_catches_an_orphan_guard(dynamodb, org_id):
    # Given a consistent org, When a guard is written behind the domain's back
    create_contact(org_id, ContactCreate(email="ravi@example.com"))
    store = ContactStore()
    store.client.put_item(TableName=store.identities_table, Item={
        "identity": {"S": store.guard_id(org_id, "phone", "+919123456789")},
        "contact_id": {"S": "con_01JD8Q2M6W3YQ0V4C7N5T9KX2B"}})
    # Then the checker reports it
    with pytest.raises(AssertionError, match="orphan guard"):
        assert_identity_invariants(org_id)
