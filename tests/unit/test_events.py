"""Stream records → webhook events, from the sample stream in events/ (SPEC §6)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from contacts_core.events import webhook_event

RECORDS = json.loads((Path(__file__).parents[2] / "events" / "dynamodb_stream_contacts.json")
                     .read_text())["Records"]


@pytest.fixture(autouse=True)
def tables(monkeypatch):
    monkeypatch.setenv("CONTACTS_TABLE", "ContactsTable")
    monkeypatch.setenv("AUDIENCES_TABLE", "AudiencesTable")
    monkeypatch.setenv("MEMBERS_TABLE", "AudienceMembersTable")


def test_each_change_becomes_its_event_and_bookkeeping_does_not():
    events = [webhook_event(r) for r in RECORDS]
    assert [e.type if e else None for e in events] == [
        "contact.created", "contact.updated", None, "contact.deleted"]
    created, updated, _, deleted = events
    assert created.data.object["first_name"] == "Sam" and created.data.previous_attributes is None
    assert updated.data.previous_attributes == {"first_name": "Sam"}
    assert updated.data.object["first_name"] == "Samuel"
    assert deleted.data.object["id"] == "con_01JD8Q2M6W3YQ0V4C7N5T9KX2B"
    assert all(e.organization_id == "org_example" for e in (created, updated, deleted))
    assert "audience_ids" not in json.dumps(deleted.data.object)


def test_event_ids_are_stable_per_record_and_distinct_between_records():
    first = [webhook_event(r) for r in RECORDS]
    again = [webhook_event(r) for r in RECORDS]
    ids = [e.id for e in first if e]
    assert ids == [e.id for e in again if e]
    assert len(set(ids)) == 3 and all(i.startswith("evt_") and len(i) == 30 for i in ids)
    assert first[0].created_at == "2026-05-22T10:30:01.000Z"


def test_records_of_other_tables_and_name_guards_are_not_events():
    guard = json.loads(json.dumps(RECORDS[0]))
    guard["eventSourceARN"] = guard["eventSourceARN"].replace("ContactsTable", "AudiencesTable")
    guard["dynamodb"]["NewImage"] = {"org_id": {"S": "o"}, "audience_id": {"S": "name#vip"},
                                     "guard_for": {"S": "aud_1"}}
    assert webhook_event(guard) is None
    other = json.loads(json.dumps(RECORDS[0]))
    other["eventSourceARN"] = other["eventSourceARN"].replace("ContactsTable", "Elsewhere")
    assert webhook_event(other) is None
