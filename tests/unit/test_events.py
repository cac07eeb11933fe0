"""Stream records → webhook events, from the sample stream in events/ (SPEC §6)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from contacts_core.webhooks.events import MergedInto, object_key, webhook_events
from contacts_core.webhooks.models import WebhookEvent

RECORDS = json.loads((Path(__file__).parents[2] / "events" / "dynamodb_stream_contacts.json")
                     .read_text())["Records"]
CONTACT = "con_01JD8Q2M6W3YQ0V4C7N5T9KX2B"
AUDIENCE = "aud_01JD8Q2M6W3YQ0V4C7N5T9KX2C"


def events_of(record: dict, merged_into: MergedInto | None = None) -> list[WebhookEvent]:
    """``webhook_events(record)`` as the deliverer reads them. The emitter builds plain
    dicts; each must be in the shape of the ``WebhookEvent`` model: it validates, and dumps
    back to exactly what was built."""
    built = webhook_events(record, merged_into)
    read = [WebhookEvent.model_validate(event) for event in built]
    assert [event.model_dump(mode="json") for event in read] == built
    return read


@pytest.fixture(autouse=True)
def tables(monkeypatch):
    monkeypatch.setenv("CONTACTS_TABLE", "ContactsTable")
    monkeypatch.setenv("AUDIENCES_TABLE", "AudiencesTable")
    monkeypatch.setenv("MEMBERS_TABLE", "AudienceMembersTable")


def test_each_change_becomes_its_events_in_commit_order():
    # Given a contact created, renamed, added to an audience and deleted (one record each)
    # When each record is turned into events
    events = [events_of(r) for r in RECORDS]
    # Then the membership change is told from the contact's own record, and the delete
    # first removes the contact from its audience, then deletes it
    assert [[e.type for e in es] for es in events] == [
        ["contact.created"], ["contact.updated"], ["audience.contact_added"],
        ["audience.contact_removed", "contact.deleted"]]
    (created,), (updated,), (added,), (removed, deleted) = events
    assert created.data.object["first_name"] == "Sam" and created.data.previous_attributes is None
    assert updated.data.previous_attributes == {"first_name": "Sam"}
    assert updated.data.object["first_name"] == "Samuel"
    assert deleted.data.object["id"] == CONTACT
    membership = {"audience_id": AUDIENCE, "contact_id": CONTACT,
                  "added_at": "2026-05-22T10:30:02.345Z"}
    assert added.data.object == removed.data.object == membership
    every = [e for es in events for e in es]
    assert all(e.organization_id == "org_example" for e in every)
    keys = {object_key(e) for r in RECORDS for e in webhook_events(r)}
    assert keys == {CONTACT}, "one FIFO group per contact"
    assert "audience_ids" not in json.dumps(deleted.data.object)
    assert "added_at#" not in json.dumps(deleted.data.object)


@pytest.mark.parametrize(("before", "after", "old_value"), [
    ({"N": "1"}, {"BOOL": True}, 1), ({"BOOL": False}, {"N": "0"}, False)])
def test_a_value_changing_between_number_and_boolean_is_an_update(before, after, old_value):
    # Given a write whose only change is an attribute from a number to a boolean (or back):
    # Python's == holds 1 == True, JSON and DynamoDB do not
    record = json.loads(json.dumps(RECORDS[1]))
    image = record["dynamodb"]
    image["OldImage"] |= {"first_name": image["NewImage"]["first_name"],
                          "attributes": {"M": {"vip": before}}}
    image["NewImage"]["attributes"] = {"M": {"vip": after}}
    # When it is turned into events
    events = events_of(record)
    # Then it is one contact.updated whose previous_attributes hold the old value, typed
    assert [e.type for e in events] == ["contact.updated"]
    assert json.dumps(events[0].data.previous_attributes) \
        == json.dumps({"attributes": {"vip": old_value}})


def test_membership_changes_of_one_record_are_one_event_per_audience():
    # Given one write that moves a contact from audience A to B and C, without a kept time
    record = json.loads(json.dumps(RECORDS[2]))
    image = record["dynamodb"]
    image["OldImage"]["audience_ids"] = {"SS": ["aud_A"]}
    image["NewImage"]["audience_ids"] = {"SS": ["aud_C", "aud_B"]}
    del image["NewImage"][f"added_at#{AUDIENCE}"]
    # When it is turned into events
    events = events_of(record)
    # Then removals come before additions, each audience once, in id order, and added_at
    # falls back to the time the events are dated (the record's, never before the
    # contact's updated_at, which this sample sets later)
    assert [(e.type, e.data.object["audience_id"]) for e in events] == [
        ("audience.contact_removed", "aud_A"), ("audience.contact_added", "aud_B"),
        ("audience.contact_added", "aud_C")]
    assert events[1].data.object["added_at"] == events[1].created_at \
        == "2026-05-22T11:00:00.000Z"
    assert len({e.id for e in events}) == 3


def test_event_ids_are_stable_per_record_and_event_and_distinct_between_them():
    first = [e for r in RECORDS for e in events_of(r)]
    again = [e for r in RECORDS for e in events_of(r)]
    ids = [e.id for e in first]
    assert ids == [e.id for e in again]
    assert len(set(ids)) == 5 and all(i.startswith("evt_") and len(i) == 30 for i in ids)



def test_an_event_is_dated_when_its_change_was_written():
    # Given the sample's records (each with a whole-second ApproximateCreationDateTime),
    # and the delete as it would come an hour later
    late = json.loads(json.dumps(RECORDS[3]))
    late["dynamodb"]["ApproximateCreationDateTime"] += 3600
    events = [[e.created_at for e in events_of(r)] for r in [*RECORDS, late]]
    # Then a write that set updated_at is dated by it, to the millisecond; a membership
    # change that left it alone, and a delete, by the record's time — but never before
    # the contact's last updated_at (the sample's times are out of step on purpose)
    written = [r["dynamodb"].get("NewImage", {}).get("updated_at", {}).get("S") for r in RECORDS]
    assert events[0] == [written[0]] and events[1] == [written[1]]
    assert events[2] == [written[1]] and events[3] == [written[1]] * 2
    assert events[4] == ["2026-05-22T11:30:04.000Z"] * 2


def test_a_membership_add_is_dated_by_when_the_contact_joined():
    # Given a membership add written at 11:30:05.678, after the contact's last update, whose
    # record carries a coarser, earlier time (DynamoDB Local's are whole minutes)
    added = json.loads(json.dumps(RECORDS[2]))
    added["dynamodb"]["NewImage"][f"added_at#{AUDIENCE}"] = {"S": "2026-05-22T11:30:05.678Z"}
    added["dynamodb"]["ApproximateCreationDateTime"] = 1779449400  # 11:30:00
    # Then its event is dated when the contact joined, to the millisecond
    assert [e.created_at for e in events_of(added)] == ["2026-05-22T11:30:05.678Z"]


def test_records_of_other_tables_name_guards_and_deleting_flags_are_not_events():
    guard = json.loads(json.dumps(RECORDS[0]))
    guard["eventSourceARN"] = guard["eventSourceARN"].replace("ContactsTable", "AudiencesTable")
    guard["dynamodb"]["NewImage"] = {"org_id": {"S": "o"}, "audience_id": {"S": "name#vip"},
                                     "guard_for": {"S": "aud_1"}}
    assert events_of(guard) == []
    other = json.loads(json.dumps(RECORDS[0]))
    other["eventSourceARN"] = other["eventSourceARN"].replace("ContactsTable", "Elsewhere")
    assert events_of(other) == []
    audience = {"org_id": {"S": "o"}, "audience_id": {"S": "aud_1"}, "name": {"S": "VIP"},
                "contact_count": {"N": "3"}, "created_at": {"S": "t"}, "updated_at": {"S": "t"}}
    flagged = json.loads(json.dumps(guard))
    flagged["eventName"] = "MODIFY"
    flagged["dynamodb"]["OldImage"] = audience
    flagged["dynamodb"]["NewImage"] = audience | {"deleting": {"BOOL": True},
                                                  "contact_count": {"N": "2"}}
    assert events_of(flagged) == []
    gone = json.loads(json.dumps(flagged))
    gone["eventName"] = "REMOVE"
    del gone["dynamodb"]["NewImage"]
    (deleted,) = events_of(gone)
    assert deleted.type == "audience.deleted" and deleted.data.object["id"] == "aud_1"


def _import_record(old: dict[str, str] | None, new: dict[str, str]) -> dict:
    job = {"org_id": {"S": "org_example"}, "import_id": {"S": "imp_01JD8Q2M6W3YQ0V4C7N5T9KX2B"},
           "mode": {"S": "upsert"}, "created_at": {"S": "2026-11-22T10:00:00.000Z"},
           "updated_at": {"S": "2026-11-22T10:00:00.000Z"},
           "upload_key": {"S": "uploads/org_example/imp_01JD8Q2M6W3YQ0V4C7N5T9KX2B.csv"},
           "rows_total": {"N": "3"}, "rows_done": {"N": "3"}, "created": {"N": "2"},
           "failed": {"N": "1"}}
    record = json.loads(json.dumps(RECORDS[1]))
    record["eventSourceARN"] = record["eventSourceARN"].replace("ContactsTable", "ImportsTable")
    record["dynamodb"]["Keys"] = {k: job[k] for k in ("org_id", "import_id")}
    record["dynamodb"]["NewImage"] = job | {"status": {"S": new["status"]}}
    if old is None:
        record["eventName"] = "INSERT"
        record["dynamodb"].pop("OldImage", None)
    else:
        record["dynamodb"]["OldImage"] = job | {"status": {"S": old["status"]}}
    return record


@pytest.mark.parametrize("status", ["completed", "failed"])
def test_an_import_job_reaching_its_end_is_one_event_and_only_then(monkeypatch, status):
    # Given the template's filter of the imports stream mapping
    from devstack.event_sources import mappings
    from devstack.routes import REPO_ROOT

    monkeypatch.setenv("IMPORTS_TABLE", "ImportsTable")
    (mapping,) = [m for m in mappings(REPO_ROOT / "template.yaml") if m.source == "ImportsTable"]
    # When a running job ends
    ended = _import_record({"status": "running"}, {"status": status})
    # Then the record passes the filter and is one import.<status> event with the job
    assert mapping.filters.passes(ended)
    (event,) = events_of(ended)
    assert event.type == f"import.{status}"
    job = event.data.object
    assert (job["id"], job["status"], job["created"], job["failed"]) == (
        "imp_01JD8Q2M6W3YQ0V4C7N5T9KX2B", status, 2, 1)
    assert job["progress"] == {"rows_done": 3, "rows_total": 3,
                               "percent": 100.0}
    assert "errors_url" not in job  # GET the job for a fresh link (README)
    # And the records of a job that is created, runs, or is written again at its end are not
    created = _import_record(None, {"status": "awaiting_upload"})
    running = _import_record({"status": "running"}, {"status": "running"})
    again = _import_record({"status": status}, {"status": status})
    assert not mapping.filters.passes(created) and not mapping.filters.passes(running)
    assert events_of(created) == events_of(running) == events_of(again) == []


def test_a_merge_is_one_merged_event_and_the_source_is_not_deleted():
    # Given the target's record of a merge (its last_merged_id set, the source's email taken)
    merge = json.loads(json.dumps(RECORDS[1]))
    merge["dynamodb"]["NewImage"] |= {"last_merged_id": {"S": "con_source"},
                                      "email": {"S": "sam@example.com"}}
    # When it is turned into events
    (merged,) = events_of(merge)
    # Then it is contact.merged naming the source, with what the merge changed
    assert (merged.type, merged.data.merged_contact_id) == ("contact.merged", "con_source")
    assert merged.data.object["email"] == "sam@example.com"
    assert merged.data.object["channels"]["has_email"] is True
    assert merged.data.previous_attributes is not None
    assert merged.data.previous_attributes["email"] is None
    # And the source's REMOVE, merged into the target, is only its audience removals
    removed = events_of(RECORDS[3], lambda org_id, contact_id: "con_target")
    assert [e.type for e in removed] == ["audience.contact_removed"]
    assert [e.type for e in events_of(RECORDS[3])] == ["audience.contact_removed",
                                                       "contact.deleted"]
