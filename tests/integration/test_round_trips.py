"""DynamoDB round trips per operation (issue outcome 6), counted on the real client."""

from __future__ import annotations

import pytest

from contacts_core.audiences.models import AudienceCreate
from contacts_core.audiences.operations import (
    PageQuery,
    add_members,
    create_audience,
    list_contact_audiences,
)
from contacts_core.contacts.merge import MergeRequest, merge_contacts
from contacts_core.contacts.operations import (
    batch_get_contacts,
    create_contact,
    delete_contact,
    get_contact,
    update_contact,
    upsert_contact,
)
from contacts_core.contacts.requests import ContactCreate, ContactPatch, ContactUpsert

SAM = ContactCreate(phone="+27821234567", email="sam@example.com", first_name="Sam")


def test_get_is_one_get_item(log, org_id):
    contact = create_contact(org_id, SAM)
    _, calls = log.during(lambda: get_contact(org_id, contact.id))
    assert calls == ["GetItem"]


def test_create_is_one_transaction(log, org_id):
    _, calls = log.during(lambda: create_contact(org_id, SAM))
    assert calls == ["TransactWriteItems"]


@pytest.mark.parametrize("patch", [
    {"first_name": "Sam", "tags": ["vip", "renewed"]},
    {"attributes": {"tier": "gold", "old": None}, "consent": {"sms": "opted_out"}},
    {"suppressed": True, "language": "en-ZA"},
])
def test_update_without_identity_or_name_change_is_one_update_item(log, org_id, patch):
    contact = create_contact(org_id, SAM)
    _, calls = log.during(
        lambda: update_contact(org_id, contact.id, ContactPatch.model_validate(patch)))
    assert calls == ["UpdateItem"]


@pytest.mark.parametrize("patch", [{"first_name": "Samuel", "tags": ["vip"]},
                                   {"suppressed": True, "name": "Sam M."}])
def test_name_change_is_a_refused_update_then_one_transaction(log, org_id, patch):
    # Given a contact; When a PATCH changes a name part (its name words must move)
    contact = create_contact(org_id, SAM)
    updated, calls = log.during(
        lambda: update_contact(org_id, contact.id, ContactPatch.model_validate(patch)))
    # Then the conditional update refuses and hands back the item: no extra read
    assert calls == ["UpdateItem", "TransactWriteItems"]
    assert updated.version == contact.version + 1


def test_update_with_identity_change_reads_then_transacts(log, org_id):
    contact = create_contact(org_id, SAM)
    _, calls = log.during(lambda: update_contact(
        org_id, contact.id, ContactPatch(email="sam.new@example.com")))
    assert calls == ["GetItem", "TransactWriteItems"]


def test_upsert_is_at_most_two_calls_when_creating_updating_or_unchanged(log, org_id):
    body = ContactUpsert(phone="+27821234567", email="sam@example.com", first_name="Sam")
    (created, _), calls = log.during(lambda: upsert_contact(org_id, body))
    assert created.result == "created" and calls == ["BatchGetItem", "TransactWriteItems"]
    (same, _), calls = log.during(lambda: upsert_contact(org_id, body))
    assert same.result == "unchanged" and calls == ["BatchGetItem", "UpdateItem"]
    tagged = body.model_copy(update={"tags": ["vip"]})
    (updated, _), calls = log.during(lambda: upsert_contact(org_id, tagged))
    assert updated.result == "updated" and calls == ["BatchGetItem", "UpdateItem"]
    renamed = tagged.model_copy(update={"first_name": "Samuel"})
    (updated, _), calls = log.during(lambda: upsert_contact(org_id, renamed))
    assert updated.result == "updated" and updated.contact.name == "Samuel"
    assert calls == ["BatchGetItem", "UpdateItem", "TransactWriteItems"]


def test_delete_is_a_read_and_a_transaction(log, org_id):
    contact = create_contact(org_id, SAM)
    _, calls = log.during(lambda: delete_contact(org_id, contact.id))
    assert calls == ["GetItem", "TransactWriteItems"]


def test_batch_get_of_100_ids_is_one_batch_get_item(log, org_id):
    # Given 99 contacts, asked for with an id we never issued
    ids = [create_contact(org_id, ContactCreate(email=f"b{i}@example.com")).id
           for i in range(99)]
    # When they are read in one batch
    result, calls = log.during(lambda: batch_get_contacts(org_id, [*ids, "con_nope"]))
    # Then that is one BatchGetItem, and the odd id never reached it
    assert len(result.data) == 99 and result.not_found == ["con_nope"]
    assert calls == ["BatchGetItem"]


def test_batch_get_of_only_malformed_ids_reads_nothing(log, org_id):
    result, calls = log.during(lambda: batch_get_contacts(org_id, ["x", "con_1"]))
    assert result.not_found == ["x", "con_1"] and calls == []


def test_a_contacts_audiences_are_a_get_item_and_one_batch_get_item(log, org_id):
    # Given a contact in three audiences
    contact = create_contact(org_id, SAM)
    for name in ("A", "B", "C"):
        audience = create_audience(org_id, AudienceCreate(name=name))
        add_members(org_id, audience.id, [contact.id])
    # When a page of its audiences is read
    page, calls = log.during(
        lambda: list_contact_audiences(org_id, contact.id, PageQuery(limit=2)))
    # Then that is the contact and one batch of audiences
    assert len(page.data) == 2 and page.next_cursor
    assert calls == ["GetItem", "BatchGetItem"]


def test_merge_is_a_batch_read_and_one_transaction_whatever_it_moves(log, org_id):
    # Given a source with every identifier and memberships, one shared with the target
    target = create_contact(org_id, ContactCreate(email="t@example.com"))
    source = create_contact(org_id, ContactCreate(phone="+27821234560", email="s@example.com",
                                                  external_id="crm-1"))
    shared, moved = (create_audience(org_id, AudienceCreate(name=n)).id for n in ("S", "M"))
    add_members(org_id, shared, [target.id, source.id])
    add_members(org_id, moved, [source.id])
    # When it is merged: 2 round trips, the stated bound
    _, calls = log.during(lambda: merge_contacts(org_id, target.id,
                                                 MergeRequest(source_id=source.id)))
    assert calls == ["BatchGetItem", "TransactWriteItems"]
