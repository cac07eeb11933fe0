"""Webhooks end to end in-process: DynamoDB Local streams → emit_webhooks → SQS (moto) →
deliver_webhooks → receivers on 127.0.0.1 (SPEC §6, issue 4)."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import WebhookVerificationError

from devstack.receiver import WebhookReceiver, verify

pytestmark = pytest.mark.usefixtures("sqs")


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    """Endpoints on one server: /ok → 200, /down → 500 forever, /gone → 410,
    /flaky → 500 on its first try of each event, /chaos → 503 forever for contacts whose
    email starts with "dead", else 503 at random (30 %, seeded) and 200."""
    tries: dict[tuple[str, str], int] = {}
    chaos = random.Random(7)

    def respond(path: str, event: dict, nth: int) -> int:
        key = (path, event["id"])
        tries[key] = tries.get(key, 0) + 1
        if path == "/down":
            return 500
        if path == "/gone":
            return 410
        if path == "/flaky":
            return 500 if tries[key] == 1 else 204
        if path == "/chaos":
            doomed = str(event["data"]["object"].get("email", "")).startswith("dead")
            return 503 if doomed or chaos.random() < 0.3 else 200
        return 200

    server = WebhookReceiver(respond=respond).start()
    yield server
    server.stop()


def endpoint(api, org_id, url, events=("*",)):
    response = api.request("POST", "/v1/webhook-endpoints", org_id=org_id,
                           json_body={"url": url, "events": list(events)})
    assert response.status == 201, response.body
    return response.body


def delivered(receiver, path):
    return [r for r in receiver.on(path) if 200 <= r.status < 300]


def test_contact_changes_arrive_signed_in_commit_order(api, org_id, pipeline, receiver):
    # Given an endpoint subscribed to everything
    hook = endpoint(api, org_id, receiver.url + "/ok")
    # When a contact is created, updated twice, upserted unchanged, and deleted
    sam = api.request("POST", "/v1/contacts", org_id=org_id, json_body={
        "phone": "+27821234567", "first_name": "Sam", "tags": ["vip"]}).body
    path = f"/v1/contacts/{sam['id']}"
    api.request("PATCH", path, org_id=org_id, json_body={"first_name": "Samuel"})
    api.request("PATCH", path, org_id=org_id, json_body={"tags": ["vip", "renewed"]})
    unchanged = api.request("POST", "/v1/contacts/upsert", org_id=org_id,
                            json_body={"phone": "+27821234567", "first_name": "Samuel"})
    assert unchanged.body["result"] == "unchanged"
    api.request("DELETE", path, org_id=org_id)
    # Then four events arrive, in commit order, each verified with the endpoint's secret
    pipeline.pump(lambda: len(delivered(receiver, "/ok")) >= 4)
    events = [verify(r, hook["secret"]) for r in delivered(receiver, "/ok")]
    assert [e["type"] for e in events] == ["contact.created", "contact.updated",
                                           "contact.updated", "contact.deleted"]
    assert [e["data"]["object"]["version"] for e in events] == [1, 2, 3, 3]
    # the display name followed first_name (SPEC §9.3), so it changed too
    assert events[1]["data"]["previous_attributes"] == {"first_name": "Sam", "name": "Sam"}
    assert events[1]["data"]["object"]["name"] == "Samuel"
    assert events[2]["data"]["previous_attributes"] == {"tags": ["vip"]}
    assert all(e["organization_id"] == org_id and e["id"].startswith("evt_") for e in events)
    assert [r.headers["webhook-id"] for r in delivered(receiver, "/ok")] == [
        e["id"] for e in events]
    pipeline.pump(lambda: True)
    assert len(receiver.on("/ok")) == 4, "the unchanged upsert must emit nothing"


def test_membership_events_keep_each_contacts_commit_order(api, org_id, pipeline, receiver):
    # Given an endpoint for contact and membership events
    endpoint(api, org_id, receiver.url + "/ok", ["contact.created", "contact.deleted",
                                                 "audience.contact_added",
                                                 "audience.contact_removed"])
    # When three contacts join audiences A and B, leave A, join it again, and are deleted
    ids = [r["id"] for r in api.request("POST", "/v1/contacts/bulk", org_id=org_id, json_body={
        "contacts": [{"email": f"o{i}@example.com"} for i in range(3)]}).body["results"]]
    a, b = (api.request("POST", "/v1/audiences", org_id=org_id, json_body={"name": n}).body["id"]
            for n in ("A", "B"))
    members = {"contact_ids": ids}
    for path in (f"/v1/audiences/{a}/contacts", f"/v1/audiences/{b}/contacts",
                 f"/v1/audiences/{a}/contacts/remove", f"/v1/audiences/{a}/contacts"):
        assert api.request("POST", path, org_id=org_id, json_body=members).status == 200
    api.request("DELETE", f"/v1/contacts/{ids[0]}", org_id=org_id)
    api.request("POST", "/v1/contacts/bulk-delete", org_id=org_id,
                json_body={"contact_ids": ids[1:]})
    # Then each contact's events arrive in commit order: the leaving of its audiences that
    # the delete implies comes before contact.deleted, never after
    pipeline.pump(lambda: len(delivered(receiver, "/ok")) >= 3 * 8)
    seen: dict[str, list[str]] = {}
    for event in (r.event for r in delivered(receiver, "/ok")):
        obj = event["data"]["object"]
        label = event["type"] + (f" {obj['audience_id']}" if "audience_id" in obj else "")
        seen.setdefault(obj.get("contact_id", obj.get("id")), []).append(label)
    in_order = ["contact.created", f"audience.contact_added {a}", f"audience.contact_added {b}",
                f"audience.contact_removed {a}", f"audience.contact_added {a}",
                *sorted([f"audience.contact_removed {a}", f"audience.contact_removed {b}"]),
                "contact.deleted"]
    assert seen == {contact_id: in_order for contact_id in ids}
    added = [r.event for r in delivered(receiver, "/ok")
             if r.event["type"] == "audience.contact_added"]
    assert all(e["data"]["object"]["added_at"].endswith("Z") for e in added)


def test_no_event_is_dated_before_the_request_that_made_it(api, org_id, pipeline, receiver):
    # Given an endpoint, a contact and an audience
    endpoint(api, org_id, receiver.url + "/ok")
    contact = api.request("POST", "/v1/contacts", org_id=org_id,
                          json_body={"email": "dated@example.com"}).body["id"]
    audience = api.request("POST", "/v1/audiences", org_id=org_id,
                           json_body={"name": "Dated"}).body["id"]
    members = {"contact_ids": [contact]}
    # When the contact joins, leaves and is deleted, each step timed as it is asked for
    asked: dict[str, datetime] = {}
    for kind, method, path, body in [
            ("audience.contact_added", "POST", f"/v1/audiences/{audience}/contacts", members),
            ("audience.contact_removed", "POST", f"/v1/audiences/{audience}/contacts/remove",
             members),
            ("contact.deleted", "DELETE", f"/v1/contacts/{contact}", None)]:
        asked[kind] = datetime.now(UTC) - timedelta(milliseconds=1)  # events keep ms
        assert api.request(method, path, org_id=org_id, json_body=body).status < 300
    # Then none of these changes, which leave updated_at alone, is dated before it was asked
    # for (DynamoDB Local's stream records carry whole minutes)
    pipeline.pump(lambda: {r.event["type"] for r in delivered(receiver, "/ok")} >= {
        *asked, "audience.created"})
    dated = {r.event["type"]: datetime.fromisoformat(r.event["created_at"])
             for r in delivered(receiver, "/ok")}
    assert all(dated[kind] >= at for kind, at in asked.items()), (dated, asked)
    assert dated["audience.contact_added"] >= dated["audience.created"]


def test_signature_fails_on_tampered_body_or_wrong_secret(api, org_id, pipeline, receiver):
    hook = endpoint(api, org_id, receiver.url + "/ok", ["contact.created"])
    api.request("POST", "/v1/contacts", org_id=org_id, json_body={"email": "ahmed@example.com"})
    pipeline.pump(lambda: len(receiver.on("/ok")) >= 1)
    (request,) = receiver.on("/ok")
    assert verify(request, hook["secret"])["type"] == "contact.created"
    request.body = request.body.replace("ahmed", "mallory")
    with pytest.raises(WebhookVerificationError):
        verify(request, hook["secret"])
    with pytest.raises(WebhookVerificationError):
        verify(receiver.on("/ok")[0], "whsec_" + "A" * 43 + "=")


def test_a_dead_endpoint_delays_no_one_and_ends_in_the_dead_letter_queue(
        api, org_id, pipeline, receiver, monkeypatch):
    # Given one endpoint that always answers 500 and one that works, and retries 2 s apart:
    # the dead one cannot reach the DLQ within 10 s, however slow a loaded machine runs
    monkeypatch.setenv("WEBHOOK_RETRY_DELAYS", "2,2,2,2,2")
    endpoint(api, org_id, receiver.url + "/down", ["contact.created"])
    endpoint(api, org_id, receiver.url + "/ok", ["contact.created"])
    pipeline.take_dead_letters()
    # When three contacts are created
    for i in range(3):
        api.request("POST", "/v1/contacts", org_id=org_id, json_body={"email": f"{i}@x.co"})
    # Then the working endpoint has all three while the dead one is still being retried
    pipeline.pump(lambda: len(delivered(receiver, "/ok")) == 3)
    assert pipeline.take_dead_letters() == [], "the good endpoint waited for the dead one"
    # And after its six attempts every event is in the DLQ, whole
    dead: list[dict] = []
    pipeline.pump(lambda: len(dead.extend(pipeline.take_dead_letters()) or dead) == 3,
                  timeout=60)
    assert sorted(d["event"]["data"]["object"]["email"] for d in dead) == [
        "0@x.co", "1@x.co", "2@x.co"]
    assert all(len([r for r in receiver.on("/down") if r.event["id"] == d["event"]["id"]]) == 6
               for d in dead)


def test_redelivery_keeps_the_webhook_id(api, org_id, pipeline, receiver):
    endpoint(api, org_id, receiver.url + "/flaky")
    api.request("POST", "/v1/contacts", org_id=org_id, json_body={"email": "priya@example.com"})
    pipeline.pump(lambda: len(delivered(receiver, "/flaky")) == 1, timeout=30)
    first, second = receiver.on("/flaky")
    assert (first.status, second.status) == (500, 204)
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == first.event["id"]
    assert first.body == second.body


def test_410_disables_the_endpoint(api, org_id, pipeline, receiver):
    gone = endpoint(api, org_id, receiver.url + "/gone")
    api.request("POST", "/v1/contacts", org_id=org_id, json_body={"email": "ravi@example.com"})
    pipeline.pump(lambda: len(receiver.on("/gone")) == 1)
    pipeline.pump(lambda: not api.request("GET", f"/v1/webhook-endpoints/{gone['id']}",
                                          org_id=org_id).body["enabled"])
    fetched = api.request("GET", f"/v1/webhook-endpoints/{gone['id']}", org_id=org_id).body
    assert fetched["disabled_reason"].startswith("410 Gone")
    api.request("POST", "/v1/contacts", org_id=org_id, json_body={"email": "kumar@example.com"})
    pipeline.pump(lambda: True)
    assert len(receiver.on("/gone")) == 1


@pytest.mark.parametrize("enable_again", [True, False])
def test_deliveries_queued_for_a_disabled_endpoint_wait_or_are_dead_lettered(
        api, org_id, pipeline, receiver, enable_again):
    # Given an endpoint, and a change already emitted to it (queued, not yet delivered)
    hook = endpoint(api, org_id, receiver.url + "/ok")
    pipeline.take_dead_letters()
    api.request("POST", "/v1/contacts", org_id=org_id, json_body={"email": "w@example.com"})
    while sum(p.poll() for p in pipeline.streams):
        pass
    # When the endpoint is disabled before the delivery is attempted
    path = f"/v1/webhook-endpoints/{hook['id']}"
    assert api.request("PATCH", path, org_id=org_id,
                       json_body={"enabled": False}).status == 200
    pipeline.streams = []
    for queue in pipeline.queues:  # its first attempt
        queue.poll()
    assert receiver.on("/ok") == [], "no request to a disabled endpoint"
    dead: list[dict] = []
    if enable_again:
        # and enabled again before its last attempt
        assert api.request("PATCH", path, org_id=org_id,
                           json_body={"enabled": True}).status == 200
        pipeline.pump(lambda: len(delivered(receiver, "/ok")) >= 1)
    else:
        pipeline.pump(lambda: bool(dead.extend(pipeline.take_dead_letters()) or dead),
                      timeout=60)
    # Then it is delivered once after all, or dead-lettered: never silently dropped
    if enable_again:
        assert [r.event["type"] for r in delivered(receiver, "/ok")] == ["contact.created"]
    else:
        assert [d["event"]["type"] for d in dead] == ["contact.created"]
        assert receiver.on("/ok") == []


def test_delivered_plus_dead_lettered_equals_emitted(api, org_id, pipeline, receiver,
                                                     monkeypatch):
    # Given a chaotic endpoint: two contacts' events always fail, the rest fail at random,
    # and failed deliveries are retried at once (the retry schedule is a template parameter)
    monkeypatch.setenv("WEBHOOK_RETRY_DELAYS", "0,0,0,0,0")
    endpoint(api, org_id, receiver.url + "/chaos")
    pipeline.take_dead_letters()
    # When 10 contacts are created and each is updated twice (30 changes), in bulk and one
    # by one
    emails = [f"dead{i}@example.com" if i in (3, 7) else f"c{i}@example.com" for i in range(10)]
    bulk = api.request("POST", "/v1/contacts/bulk", org_id=org_id, json_body={"contacts": [
        {"email": e} for e in emails]}).body
    ids = [r["id"] for r in bulk["results"]]
    for n, contact_id in enumerate(ids):
        api.request("PATCH", f"/v1/contacts/{contact_id}", org_id=org_id,
                    json_body={"first_name": f"N{n}"})
    api.request("POST", "/v1/contacts/bulk", org_id=org_id, json_body={"contacts": [
        {"email": e, "language": "en"} for e in emails]})
    emitted = {(contact_id, version) for contact_id in ids for version in (1, 2, 3)}
    # Then every event is delivered exactly once or dead-lettered, none lost
    dead: list[dict] = []

    def settled() -> bool:
        dead.extend(pipeline.take_dead_letters())
        ok = {r.event["id"] for r in receiver.on("/chaos") if r.status == 200}
        return len(ok) + len(dead) >= len(emitted)

    while sum(p.poll() for p in pipeline.streams):  # every change is emitted …
        pass
    pipeline.streams = []  # … so from here only the deliveries need polling
    pipeline.pump(settled, timeout=120)
    delivered_ok = [r.event for r in receiver.on("/chaos") if r.status == 200]
    ok_ids = [e["id"] for e in delivered_ok]
    dead_ids = [d["event"]["id"] for d in dead]
    assert len(ok_ids) == len(set(ok_ids)), "delivered twice"
    assert not set(ok_ids) & set(dead_ids)
    assert len(ok_ids) + len(dead_ids) == len(emitted)

    def change(event: dict) -> tuple[str, int]:
        return event["data"]["object"]["id"], event["data"]["object"]["version"]

    assert {change(e) for e in delivered_ok} | {change(d["event"]) for d in dead} == emitted
    assert {change(d["event"]) for d in dead} == {(ids[i], v) for i in (3, 7) for v in (1, 2, 3)}
    assert all(len([r for r in receiver.on("/chaos") if r.event["id"] == d]) == 6
               for d in dead_ids), "dead-lettered after its six attempts"
    assert len(receiver.on("/chaos")) > len(emitted) + len(dead_ids) * 5, "random failures"
    per_contact: dict[str, list[int]] = {}
    for event in delivered_ok:
        per_contact.setdefault(event["data"]["object"]["id"], []).append(
            event["data"]["object"]["version"])
    assert all(v == sorted(v) for v in per_contact.values()), "out of commit order"


def test_a_merge_is_one_contact_merged_event_and_no_contact_deleted(api, org_id, pipeline,
                                                                     receiver):
    # Given an endpoint for everything, a target and a source that is in an audience
    endpoint(api, org_id, receiver.url + "/ok")
    target, source = (api.request("POST", "/v1/contacts", org_id=org_id, json_body=body).body
                      for body in ({"email": "t@example.com"}, {"phone": "+27821234567"}))
    aud = api.request("POST", "/v1/audiences", org_id=org_id, json_body={"name": "A"}).body["id"]
    api.request("POST", f"/v1/audiences/{aud}/contacts", org_id=org_id,
                json_body={"contact_ids": [source["id"]]})
    # When the source is merged into the target
    merged = api.request("POST", f"/v1/contacts/{target['id']}/merge", org_id=org_id,
                         json_body={"source_id": source["id"]})
    assert merged.status == 200, merged.body
    # Then subscribers see one contact.merged for the target, naming the source, the
    # membership moving, and no contact.deleted
    pipeline.pump(lambda: len(delivered(receiver, "/ok")) >= 7)
    pipeline.pump(lambda: True)
    events = [r.event for r in delivered(receiver, "/ok")]
    by_contact: dict[str, list[str]] = {}
    for event in events:
        obj = event["data"]["object"]
        by_contact.setdefault(obj.get("contact_id") or obj["id"], []).append(event["type"])
    assert by_contact[source["id"]] == ["contact.created", "audience.contact_added",
                                        "audience.contact_removed"]
    assert by_contact[target["id"]] == ["contact.created", "contact.merged",
                                        "audience.contact_added"]
    (event,) = [e for e in events if e["type"] == "contact.merged"]
    assert event["data"]["merged_contact_id"] == source["id"]
    assert event["data"]["object"] == merged.body
    assert event["data"]["previous_attributes"]["phone"] is None
    assert "merged_contact_id" not in events[0]["data"]


def test_a_bulk_request_that_writes_one_contact_three_times_announces_three_changes(
        api, org_id, pipeline, receiver):
    # Given an endpoint subscribed to contact events
    endpoint(api, org_id, receiver.url + "/ok", ["contact.created", "contact.updated"])
    # When one bulk request creates a contact and updates it twice (same phone)
    items = [{"phone": "+27821239101"}, {"phone": "+27821239101", "first_name": "Ann"},
             {"phone": "+27821239101", "first_name": "Anne"}]
    response = api.request("POST", "/v1/contacts/bulk", org_id=org_id,
                           json_body={"contacts": items})
    assert [(r["status"], r["contact"]["version"]) for r in response.body["results"]] == [
        ("created", 1), ("updated", 2), ("updated", 3)]
    # Then each of the three writes is an event of its own, in order, as one by one
    pipeline.pump(lambda: len(delivered(receiver, "/ok")) >= 3)
    events = [r.event for r in delivered(receiver, "/ok")]
    assert [(e["type"], e["data"]["object"]["version"]) for e in events] == [
        ("contact.created", 1), ("contact.updated", 2), ("contact.updated", 3)]
    assert events[2]["data"]["previous_attributes"] == {"first_name": "Ann", "name": "Ann"}


def test_a_delivery_that_cannot_be_dead_lettered_stays_queued_and_is_moved_later(
        api, org_id, pipeline, receiver, monkeypatch):
    from botocore.exceptions import EndpointConnectionError

    from contacts_core.sqs import sqs_client
    from tests.integration.conftest import REPO

    # Given a failing endpoint, and a delivery to it at its last attempt (one more receive
    # than the schedule has delays), as the event source mapping hands it over
    monkeypatch.setenv("WEBHOOK_RETRY_DELAYS", "0,0")
    hook = endpoint(api, org_id, receiver.url + "/down")
    pipeline.take_dead_letters()
    event = json.loads((REPO / "events" / "sqs_delivery.json").read_text())
    record = event["Records"][0]
    body = json.loads(record["body"]) | {"org_id": org_id, "endpoint_id": hook["id"]}
    record["body"] = json.dumps(body)
    record["attributes"]["ApproximateReceiveCount"] = "3"

    def unreachable(**_: object) -> None:
        raise EndpointConnectionError(endpoint_url="https://sqs.example.invalid")

    # When its attempt fails and SQS cannot take it on the dead-letter queue
    events = sqs_client().meta.events
    events.register("before-call.sqs.SendMessage", unreachable)
    try:
        failed = pipeline.invoke("DeliverWebhooksFunction", event)
    finally:
        events.unregister("before-call.sqs.SendMessage", unreachable)
    # Then the record is reported failed (it stays on its queue) and is nowhere else
    assert failed == {"batchItemFailures": [{"itemIdentifier": record["messageId"]}]}
    assert pipeline.take_dead_letters() == []
    # And its next receive tries once more and moves it to the dead-letter queue, once
    record["attributes"]["ApproximateReceiveCount"] = "4"
    assert pipeline.invoke("DeliverWebhooksFunction", event) == {"batchItemFailures": []}
    assert pipeline.take_dead_letters() == [body]
    assert len(receiver.on("/down")) == 2
