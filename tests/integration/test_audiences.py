"""Audiences and memberships through their handlers, against DynamoDB Local (SPEC §5, I5)."""

from __future__ import annotations

import json
import os
import random
from concurrent.futures import ThreadPoolExecutor

import pytest

from contacts_core.audiences import operations as audiences
from contacts_core.audiences.store import AudienceStore
from contacts_core.contacts.records import ADDED_AT_PREFIX
from contacts_core.contacts.store import ContactStore
from contacts_core.names import audience_name_key, fold
from tests.support.invariants import assert_consistent


@pytest.fixture
def people(api, org_id):
    return [api.request("POST", "/v1/contacts", org_id=org_id,
                        json_body={"email": f"p{i}@example.com", "name": f"Person {i}"}).body["id"]
            for i in range(6)]


def new_audience(api, org_id, name="VIP customers"):
    response = api.request("POST", "/v1/audiences", org_id=org_id,
                           json_body={"name": name, "description": "Top spenders"})
    assert response.status == 201, response.body
    return response.body


def test_audience_names_are_unique_per_org(api, org_id):
    vip = new_audience(api, org_id)
    assert vip["id"].startswith("aud_") and vip["contact_count"] == 0
    taken = api.request("POST", "/v1/audiences", org_id=org_id, json_body={"name": "vip CUSTOMERS"})
    assert taken.status == 409 and taken.body["conflicting_audience_id"] == vip["id"]
    other_org = api.request("POST", "/v1/audiences", org_id=org_id + "x",
                            json_body={"name": "VIP customers"})
    assert other_org.status == 201
    second = new_audience(api, org_id, "Newsletter")
    rename = api.request("PATCH", f"/v1/audiences/{second['id']}", org_id=org_id,
                         json_body={"name": "VIP Customers"})
    assert rename.status == 409
    renamed = api.request("PATCH", f"/v1/audiences/{vip['id']}", org_id=org_id,
                          json_body={"name": "Gold", "description": None})
    assert renamed.body["name"] == "Gold" and renamed.body["description"] is None
    assert api.request("POST", "/v1/audiences", org_id=org_id,
                       json_body={"name": "VIP customers"}).status == 201
    listed = api.request("GET", "/v1/audiences", org_id=org_id, query={"limit": "2"})
    assert [a["name"] for a in listed.body["data"]] == ["Gold", "Newsletter"]
    rest = api.request("GET", "/v1/audiences", org_id=org_id,
                       query={"limit": "2", "cursor": listed.body["next_cursor"]})
    assert [a["name"] for a in rest.body["data"]] == ["VIP customers"]
    assert rest.body["next_cursor"] is None


def test_add_is_idempotent_and_reports_unknown_ids(api, org_id, people):
    vip = new_audience(api, org_id)
    path = f"/v1/audiences/{vip['id']}/contacts"
    first = api.request("POST", path, org_id=org_id,
                        json_body={"contact_ids": [*people[:4], "con_nope", people[0]]})
    assert first.body == {"added": 4, "already_members": 0, "not_found": ["con_nope"],
                          "contact_count": 4}
    again = api.request("POST", "/v1/contacts/add-to-audience", org_id=org_id,
                        json_body={"audience_id": vip["id"], "contact_ids": people[2:6]})
    assert again.body == {"added": 2, "already_members": 2, "not_found": [],
                          "contact_count": 6}
    members = api.request("GET", path, org_id=org_id, query={"limit": "4"})
    page2 = api.request("GET", path, org_id=org_id,
                        query={"limit": "4", "cursor": members.body["next_cursor"]})
    assert sorted(c["id"] for c in members.body["data"] + page2.body["data"]) == sorted(people)
    removed = api.request("POST", f"{path}/remove", org_id=org_id,
                          json_body={"contact_ids": people[:2] + people[:1]})
    assert removed.body == {"removed": 2, "not_members": 0, "not_found": [],
                            "contact_count": 4}
    # another org's audience or contacts are not found
    assert api.request("POST", path, org_id=org_id + "x",
                       json_body={"contact_ids": people}).status == 404
    # nor are ids of any length or bytes: listed, not refused, as batch get does
    odd = ["con_" + "A" * 300, "", "\u00e9" * 70]
    for route, body in ((path, {}), ("/v1/contacts/add-to-audience", {"audience_id": vip["id"]})):
        answer = api.request("POST", route, org_id=org_id,
                             json_body=body | {"contact_ids": [people[5], *odd]})
        assert answer.status == 200, answer.body
        assert answer.body["not_found"] == odd and answer.body["already_members"] == 1
    assert api.request("POST", "/v1/contacts/add-to-audience", org_id=org_id, json_body={
        "audience_id": "aud_" + "A" * 300, "contact_ids": people}).status == 404


def test_deleting_a_contact_leaves_its_audiences_with_exact_counts(api, org_id, people):
    a, b = new_audience(api, org_id, "A"), new_audience(api, org_id, "B")
    for aud in (a, b):
        api.request("POST", f"/v1/audiences/{aud['id']}/contacts", org_id=org_id,
                    json_body={"contact_ids": people})
    assert api.request("DELETE", f"/v1/contacts/{people[0]}", org_id=org_id).status == 204
    for aud in (a, b):
        fetched = api.request("GET", f"/v1/audiences/{aud['id']}", org_id=org_id).body
        assert fetched["contact_count"] == 5
        listed = api.request("GET", f"/v1/audiences/{aud['id']}/contacts", org_id=org_id)
        assert people[0] not in [c["id"] for c in listed.body["data"]]


def test_deleting_an_audience_removes_memberships_not_contacts(api, org_id, people):
    vip = new_audience(api, org_id)
    api.request("POST", f"/v1/audiences/{vip['id']}/contacts", org_id=org_id,
                json_body={"contact_ids": people})
    assert api.request("DELETE", f"/v1/audiences/{vip['id']}", org_id=org_id).status == 204
    assert api.request("GET", f"/v1/audiences/{vip['id']}", org_id=org_id).status == 404
    assert api.request("DELETE", f"/v1/audiences/{vip['id']}", org_id=org_id).status == 404
    for person in people:
        assert api.request("GET", f"/v1/contacts/{person}", org_id=org_id).status == 200
    again = new_audience(api, org_id)  # the name is free again
    added = api.request("POST", f"/v1/audiences/{again['id']}/contacts", org_id=org_id,
                        json_body={"contact_ids": people})
    assert added.body["added"] == 6
    # and the contacts can be deleted cleanly afterwards
    assert api.request("DELETE", f"/v1/contacts/{people[1]}", org_id=org_id).status == 204


@pytest.mark.parametrize(("body", "field"), [({"contact_ids": []}, "contact_ids"),
                                             ({"contact_ids": ["x"] * 1001}, "contact_ids"),
                                             ({"ids": ["x"]}, "ids")])
def test_bad_member_requests_answer_400(api, org_id, body, field):
    vip = new_audience(api, org_id)
    response = api.request("POST", f"/v1/audiences/{vip['id']}/contacts", org_id=org_id,
                           json_body=body)
    assert response.status == 400 and field in [e["field"] for e in response.body["errors"]]


def test_contact_count_stays_exact_under_concurrent_adds_and_removes(api, org_id):
    # Given 30 contacts and one audience
    ids = [api.request("POST", "/v1/contacts", org_id=org_id,
                       json_body={"email": f"c{i}@example.com"}).body["id"] for i in range(30)]
    vip = new_audience(api, org_id)
    path = f"/v1/audiences/{vip['id']}/contacts"

    # When 8 threads add and remove random overlapping subsets, repeatedly
    def churn(seed):
        rng = random.Random(seed)
        for _ in range(12):
            subset = rng.sample(ids, rng.randint(1, 12))
            suffix = "" if rng.random() < 0.6 else "/remove"
            response = api.request("POST", path + suffix, org_id=org_id,
                                   json_body={"contact_ids": subset})
            assert response.status == 200, response.body

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(churn, range(8)))
    # Then contact_count equals the number of membership items, and each side agrees
    store = AudienceStore()
    members, _ = store.member_page(vip["id"], 1000, None)
    count = api.request("GET", f"/v1/audiences/{vip['id']}", org_id=org_id).body["contact_count"]
    assert count == len(members)
    for contact_id in ids:
        contact_item = store.client.get_item(
            TableName=store.contacts_table, ConsistentRead=True,
            Key={"org_id": {"S": org_id}, "contact_id": {"S": contact_id}})["Item"]
        in_set = vip["id"] in contact_item.get("audience_ids", {}).get("SS", [])
        assert in_set == (contact_id in members)


class Crash(BaseException):
    """The function dying mid-request (timeout, out of memory): no ``except`` catches it."""


def run_streams_until(pipeline, done) -> None:
    """Poll the template's stream mappings until ``done()``, then until they are idle."""
    while not done():
        # the functions run inside poll() and their writes are in the stream when it returns
        assert sum(p.poll() for p in pipeline.streams), "the streams went idle, not done"
    while sum(p.poll() for p in pipeline.streams):
        pass


def enqueued_events(pipeline, org_id: str) -> list[dict]:
    """The org's events in the delivery queue, taken out of it (in order per FIFO group)."""
    url = pipeline.sqs_urls["WebhookDeliveryQueue"]
    events = []
    while messages := pipeline.sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        bodies = [json.loads(m["Body"]) for m in messages]
        events += [b["event"] for b in bodies if b["org_id"] == org_id]
        pipeline.sqs.delete_message_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)])
    return events


def contact_items(store: AudienceStore, org_id: str, ids: list[str]) -> list[dict]:
    keys = [{"org_id": {"S": org_id}, "contact_id": {"S": i}} for i in ids]
    items = []
    for start in range(0, len(keys), 100):
        response = store.client.batch_get_item(RequestItems={store.contacts_table: {
            "Keys": keys[start:start + 100], "ConsistentRead": True}})
        items += response["Responses"][store.contacts_table]
    assert len(items) == len(ids)
    return items


def test_an_audience_delete_cut_short_by_a_crash_finishes_by_itself(
        api, org_id, pipeline, monkeypatch):
    # Given 110 contacts in audiences A and B, and an endpoint for removals and deletes
    api.request("POST", "/v1/webhook-endpoints", org_id=org_id, json_body={
        "url": "http://127.0.0.1:9/", "events": ["audience.deleted", "audience.contact_removed"]})
    ids = [r["id"] for r in api.request("POST", "/v1/contacts/bulk", org_id=org_id, json_body={
        "contacts": [{"email": f"m{i}@example.com"} for i in range(110)]}).body["results"]]
    a, b = new_audience(api, org_id, "A"), new_audience(api, org_id, "B")
    for aud in (a, b):
        for start in (0, 55):
            api.request("POST", f"/v1/audiences/{aud['id']}/contacts", org_id=org_id,
                        json_body={"contact_ids": ids[start:start + 55]})
    # When the DELETE of A dies right after its first transaction of 49 removals
    original = AudienceStore.change_members
    calls: list[int] = []

    def crash_after_first(self, audience, contact_ids, add, now):
        if calls:
            raise Crash()
        calls.append(len(contact_ids))
        return original(self, audience, contact_ids, add, now)

    with monkeypatch.context() as patch:
        patch.setattr(AudienceStore, "change_members", crash_after_first)
        with pytest.raises(Crash):
            api.request("DELETE", f"/v1/audiences/{a['id']}", org_id=org_id)
    store = AudienceStore()
    assert calls == [49]
    assert api.request("GET", f"/v1/audiences/{a['id']}", org_id=org_id).status == 404
    assert store.get(org_id, a["id"]).contact_count == 61, "half done: 61 members left"
    # Then the stream-driven cleanup finishes it with no one repeating the DELETE
    enqueued_events(pipeline, org_id)
    run_streams_until(pipeline, lambda: store.get(org_id, a["id"]) is None)
    # memberships, counts and the contacts' audience lists are exact
    assert store.member_page(a["id"], 1000, None) == ([], None)
    assert sorted(store.member_page(b["id"], 1000, None)[0]) == sorted(ids)
    assert store.get(org_id, b["id"]).contact_count == 110
    for item in contact_items(store, org_id, ids):
        assert item["audience_ids"]["SS"] == [b["id"]]
        assert ADDED_AT_PREFIX + a["id"] not in item and ADDED_AT_PREFIX + b["id"] in item
    # audience.deleted once, every member's removal once (as emitted to the delivery queue)
    events = enqueued_events(pipeline, org_id)
    assert [e["data"]["object"]["id"] for e in events if e["type"] == "audience.deleted"] == [
        a["id"]]
    removed = [e["data"]["object"] for e in events if e["type"] == "audience.contact_removed"]
    assert sorted(r["contact_id"] for r in removed) == sorted(ids)
    assert {r["audience_id"] for r in removed} == {a["id"]}
    # the name is free again, and a contact's cap counts only B
    assert api.request("POST", "/v1/audiences", org_id=org_id,
                       json_body={"name": "A"}).status == 201


def test_a_large_audience_is_deleted_by_the_stream_when_the_request_leaves_it(
        api, org_id, pipeline, monkeypatch):
    # Given an audience whose members are more than a DELETE request removes itself
    monkeypatch.setattr(audiences, "INLINE_DELETE_MEMBERS", 49)
    ids = [r["id"] for r in api.request("POST", "/v1/contacts/bulk", org_id=org_id, json_body={
        "contacts": [{"email": f"l{i}@example.com"} for i in range(100)]}).body["results"]]
    big = new_audience(api, org_id, "Big")
    api.request("POST", f"/v1/audiences/{big['id']}/contacts", org_id=org_id,
                json_body={"contact_ids": ids})
    # When it is deleted
    assert api.request("DELETE", f"/v1/audiences/{big['id']}", org_id=org_id).status == 204
    # Then the request answered after removing 49; a repeat is accepted while it is deleting
    store = AudienceStore()
    assert store.get(org_id, big["id"]).contact_count == 51
    monkeypatch.setattr(audiences, "INLINE_DELETE_MEMBERS", 0)
    assert api.request("DELETE", f"/v1/audiences/{big['id']}", org_id=org_id).status == 204
    # … and while it is deleting, its name answers a retryable 409 that says so
    keyed = {"Idempotency-Key": "create-big"}
    taken = api.request("POST", "/v1/audiences", org_id=org_id, json_body={"name": "big"},
                        headers=keyed)
    assert taken.status == 409 and taken.body["conflicting_audience_id"] == big["id"]
    assert taken.body["retryable"] is True and taken.headers["Retry-After"] == "1"
    assert "being deleted" in taken.body["detail"]
    # and the stream removes the rest, then the audience, freeing the name
    run_streams_until(pipeline, lambda: store.get(org_id, big["id"]) is None)
    assert store.member_page(big["id"], 1000, None) == ([], None)
    assert all("audience_ids" not in item for item in contact_items(store, org_id, ids))
    assert api.request("DELETE", f"/v1/audiences/{big['id']}", org_id=org_id).status == 404
    # (the retryable 409 was not kept: the retry under the same key runs, and creates it)
    created = api.request("POST", "/v1/audiences", org_id=org_id, json_body={"name": "big"},
                          headers=keyed)
    assert created.status == 201 and "Idempotent-Replayed" not in created.headers


def test_a_cleanup_run_short_of_time_stops_and_its_own_stream_record_resumes_it(
        api, org_id, pipeline, monkeypatch):
    import tests.integration.conftest as harness

    class ShortOfTime(harness._Context):
        """Lambda context with 30 s left at first and 1 s (too little) once asked again."""

        def __init__(self) -> None:
            self.asked = 0

        def get_remaining_time_in_millis(self) -> int:
            self.asked += 1
            return 30_000 if self.asked == 1 else 1_000

    # Given an audience of 100 members whose DELETE leaves everything to the stream, and a
    # cleanup function that has time for one transaction per invocation
    monkeypatch.setattr(audiences, "INLINE_DELETE_MEMBERS", 0)
    monkeypatch.setattr(harness, "_Context", ShortOfTime)
    removals: list[int] = []  # member transactions, per cleanup run
    invoke, change = pipeline.invoke, AudienceStore.change_members

    def counting_change(self, *args, **kwargs):
        removals[-1] += 1
        return change(self, *args, **kwargs)

    def counting(function_id, event):
        if function_id != "FinishAudienceDeleteFunction":
            return invoke(function_id, event)
        removals.append(0)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(AudienceStore, "change_members", counting_change)
            return invoke(function_id, event)

    for poller in pipeline.streams:
        poller.invoke = counting
    ids = [r["id"] for r in api.request("POST", "/v1/contacts/bulk", org_id=org_id, json_body={
        "contacts": [{"email": f"t{i}@example.com"} for i in range(100)]}).body["results"]]
    aud = new_audience(api, org_id, "Timed")
    api.request("POST", f"/v1/audiences/{aud['id']}/contacts", org_id=org_id,
                json_body={"contact_ids": ids})
    # When it is deleted
    assert api.request("DELETE", f"/v1/audiences/{aud['id']}", org_id=org_id).status == 204
    store = AudienceStore()
    assert store.get(org_id, aud["id"]).contact_count == 100
    # Then each run removes 49 members and stops; the next starts from that change's record
    run_streams_until(pipeline, lambda: store.get(org_id, aud["id"]) is None)
    assert [n for n in removals if n] == [1, 1, 1], "49 + 49 + 2 members, one run each"
    assert store.member_page(aud["id"], 1000, None) == ([], None)
    assert all("audience_ids" not in item for item in contact_items(store, org_id, ids))
    assert not pipeline.failures


def test_a_membership_left_without_its_contact_does_not_block_the_delete(api, org_id, people):
    # Given an audience with members, one of which lost its contact behind the API's back
    vip = new_audience(api, org_id)
    api.request("POST", f"/v1/audiences/{vip['id']}/contacts", org_id=org_id,
                json_body={"contact_ids": people[:2]})
    store = AudienceStore()
    store.client.delete_item(TableName=store.contacts_table,
                             Key={"org_id": {"S": org_id}, "contact_id": {"S": people[0]}})
    store.client.delete_item(TableName=os.environ["IDENTITIES_TABLE"], Key={"identity": {
        "S": ContactStore.guard_id(org_id, "email", "p0@example.com")}})  # others check guards
    # When the audience is deleted
    assert api.request("DELETE", f"/v1/audiences/{vip['id']}", org_id=org_id).status == 204
    # Then the orphan membership went with the others, and so did the audience
    assert store.get(org_id, vip["id"]) is None
    assert store.member_page(vip["id"], 10, None) == ([], None)
    (other,) = contact_items(store, org_id, [people[1]])
    assert "audience_ids" not in other


def test_adding_a_contact_over_the_audience_cap_adds_nobody(api, org_id):
    # Given a contact already in 45 audiences, and another contact in none
    full = api.request("POST", "/v1/contacts", org_id=org_id,
                       json_body={"email": "full@example.com"}).body["id"]
    free = api.request("POST", "/v1/contacts", org_id=org_id,
                       json_body={"email": "free@example.com"}).body["id"]
    for n in range(45):
        aud = api.request("POST", "/v1/audiences", org_id=org_id,
                          json_body={"name": f"A{n}"}).body["id"]
        assert api.request("POST", f"/v1/audiences/{aud}/contacts", org_id=org_id,
                           json_body={"contact_ids": [full]}).body["added"] == 1
    extra = api.request("POST", "/v1/audiences", org_id=org_id,
                        json_body={"name": "Extra"}).body["id"]
    # When both are added to a 46th audience
    response = api.request("POST", f"/v1/audiences/{extra}/contacts", org_id=org_id,
                           json_body={"contact_ids": [free, full]})
    # Then 400 naming contact_ids, and nobody was added
    assert response.status == 400, response.body
    assert [e["field"] for e in response.body["errors"]] == ["contact_ids"]
    assert api.request("GET", f"/v1/audiences/{extra}", org_id=org_id).body["contact_count"] == 0
    assert api.request("GET", f"/v1/contacts/{free}/audiences", org_id=org_id).body["data"] == []


def test_a_blank_description_is_none(api, org_id):
    created = api.request("POST", "/v1/audiences", org_id=org_id,
                          json_body={"name": "Blank", "description": "  "})
    assert created.status == 201 and created.body["description"] is None
    described = api.request("PATCH", f"/v1/audiences/{created.body['id']}", org_id=org_id,
                            json_body={"description": "Some"})
    assert described.body["description"] == "Some"
    cleared = api.request("PATCH", f"/v1/audiences/{created.body['id']}", org_id=org_id,
                          json_body={"description": ""})
    assert cleared.status == 200 and cleared.body["description"] is None


def test_a_patch_that_changes_nothing_writes_nothing(api, org_id):
    # Given an audience
    vip = new_audience(api, org_id)
    path = f"/v1/audiences/{vip['id']}"
    # When it is patched with the name and description it already has
    same = api.request("PATCH", path, org_id=org_id,
                       json_body={"name": "VIP customers", "description": "Top spenders"})
    # Then it answers the audience as it was: updated_at has not moved
    assert same.status == 200, same.body
    assert same.body == vip
    assert api.request("GET", path, org_id=org_id).body == vip
    # And a real change (a name differing only in case) still writes
    recased = api.request("PATCH", path, org_id=org_id, json_body={"name": "VIP Customers"})
    assert recased.body["name"] == "VIP Customers"
    assert recased.body["updated_at"] >= vip["updated_at"]
    assert recased.body["description"] == "Top spenders"


def test_a_member_deleted_or_merged_away_moves_the_audience_updated_at(api, org_id, people):
    # Given an audience of three people
    vip = new_audience(api, org_id)
    path = f"/v1/audiences/{vip['id']}"
    added = api.request("POST", f"{path}/contacts", org_id=org_id,
                        json_body={"contact_ids": people[:3]})
    assert added.body["contact_count"] == 3
    after_add = api.request("GET", path, org_id=org_id).body
    # When one member is deleted
    assert api.request("DELETE", f"/v1/contacts/{people[0]}", org_id=org_id).status == 204
    after_delete = api.request("GET", path, org_id=org_id).body
    # Then the count drops and updated_at moves, as when a member is removed from the audience
    assert after_delete["contact_count"] == 2
    assert after_delete["updated_at"] > after_add["updated_at"]
    # And when a member is merged into a contact outside the audience, its membership moves
    # with it: the count stays, and so does updated_at (no member left or joined)
    merged = api.request("POST", f"/v1/contacts/{people[5]}/merge", org_id=org_id,
                         json_body={"source_id": people[1]})
    assert merged.status == 200, merged.body
    after_merge = api.request("GET", path, org_id=org_id).body
    assert after_merge["contact_count"] == 2
    assert after_merge["updated_at"] == after_delete["updated_at"]
    # And when a member is merged into another member, one membership is left
    both = api.request("POST", f"/v1/contacts/{people[5]}/merge", org_id=org_id,
                       json_body={"source_id": people[2]})
    assert both.status == 200, both.body
    after_both = api.request("GET", path, org_id=org_id).body
    assert after_both["contact_count"] == 1
    assert after_both["updated_at"] > after_merge["updated_at"]


INVISIBLE = ["\u200b", "\ufeff", "\u2060", "\u00ad", "\u200d", "\u200e", "\u202e", "\ufe0f"]


@pytest.mark.parametrize("mark", INVISIBLE, ids=lambda m: f"U+{ord(m):04X}")
def test_names_that_differ_only_by_invisible_characters_are_one_name(api, org_id, mark):
    # Given an audience "Newsletter", and another one
    first = new_audience(api, org_id, "Newsletter")
    other = new_audience(api, org_id, "Other")
    # When a name that looks the same (an invisible character inside or at the end) is
    # created, or another audience is renamed to it
    for name in (f"News{mark}letter", f"Newsletter{mark}"):
        created = api.request("POST", "/v1/audiences", org_id=org_id, json_body={"name": name})
        renamed = api.request("PATCH", f"/v1/audiences/{other['id']}", org_id=org_id,
                              json_body={"name": name})
        # Then both are the 409 of a taken name, naming the holder
        for answer in (created, renamed):
            assert answer.status == 409, answer.body
            assert answer.body["conflicting_audience_id"] == first["id"]
    # And the holder may respell its own name with one, keeping it
    respelled = api.request("PATCH", f"/v1/audiences/{first['id']}", org_id=org_id,
                            json_body={"name": f"NEWS{mark}LETTER"})
    assert respelled.status == 200, respelled.body
    assert api.request("POST", "/v1/audiences", org_id=org_id,
                       json_body={"name": "newsletter"}).status == 409
    assert_consistent(org_id)


@pytest.mark.parametrize("name", ["\u200b", "\u00ad\u200b", "\ufe0f", "\U000e0001", "\u0301",
                                  " \u200b "])
def test_a_name_of_nothing_visible_answers_400(api, org_id, name):
    created = api.request("POST", "/v1/audiences", org_id=org_id, json_body={"name": name})
    assert created.status == 400, created.body
    assert [e["field"] for e in created.body["errors"]] == ["name"]
    assert api.request("GET", "/v1/audiences", org_id=org_id).body["data"] == []


@pytest.mark.parametrize("accent", ["\u00b4", "\u00b8", "\u02dc", " \u00b4\u200b "])
def test_a_name_of_a_spacing_accent_is_visible_and_unique(api, org_id, accent):
    # Given an audience named by a spacing accent alone (it folds to a space, yet shows)
    created = api.request("POST", "/v1/audiences", org_id=org_id, json_body={"name": accent})
    # Then it is created, and the same accent again is the same name (409)
    assert created.status == 201, created.body
    again = api.request("POST", "/v1/audiences", org_id=org_id,
                        json_body={"name": accent.strip()})
    assert again.status == 409, again.body
    assert_consistent(org_id)


def guarded_the_earlier_way(audience: dict, org_id: str) -> dict:
    """``audience`` with its name guard moved to the key versions before this one used
    (``fold`` alone: ``name#news\u200bletter``), as an upgraded table holds it."""
    store = AudienceStore()
    key = f"name#{audience_name_key(audience['name'])}"
    earlier = f"name#{fold(audience['name'])}"
    store.client.delete_item(TableName=store.audiences_table,
                             Key={"org_id": {"S": org_id}, "audience_id": {"S": key}})
    store.client.put_item(TableName=store.audiences_table, Item={
        "org_id": {"S": org_id}, "audience_id": {"S": earlier},
        "guard_for": {"S": audience["id"]}})
    return audience


def test_an_audience_named_by_an_earlier_version_keeps_its_name_and_leaves_no_guard(
        api, org_id):
    # Given an audience whose name has an invisible character, guarded as versions before
    # this one did (by fold alone: "name#news\u200bletter")
    legacy = guarded_the_earlier_way(new_audience(api, org_id, "News\u200bletter"), org_id)
    # When the same spelling is created again, Then it is taken (the earlier key is checked)
    again = api.request("POST", "/v1/audiences", org_id=org_id,
                        json_body={"name": "News\u200bletter"})
    assert again.status == 409 and again.body["conflicting_audience_id"] == legacy["id"]
    # When it is renamed, Then its earlier guard goes with the old name
    renamed = api.request("PATCH", f"/v1/audiences/{legacy['id']}", org_id=org_id,
                          json_body={"name": "Digest\u200b"})
    assert renamed.status == 200, renamed.body
    assert_consistent(org_id)
    assert api.request("POST", "/v1/audiences", org_id=org_id,
                       json_body={"name": "News\u200bletter"}).status == 201


def test_deleting_an_audience_of_an_earlier_version_releases_its_earlier_guard(api, org_id):
    # Given an audience guarded the earlier way only
    legacy = guarded_the_earlier_way(new_audience(api, org_id, "Promo\u00ad"), org_id)
    # When it is deleted
    assert api.request("DELETE", f"/v1/audiences/{legacy['id']}", org_id=org_id).status == 204
    # Then no guard of it is left, and its name is free in either spelling
    assert_consistent(org_id)
    assert api.request("POST", "/v1/audiences", org_id=org_id,
                       json_body={"name": "Promo\u00ad"}).status == 201
