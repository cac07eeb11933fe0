"""The emitter sends a stream batch's deliveries together, and SQS failing at any point of
that loses, repeats or reorders nothing (SPEC §6: per contact, commit order; I6).

The batches are the org's real records from DynamoDB Local's stream, as the event source
mapping gives them to ``EmitWebhooksFunction``; the delivery queue is moto's FIFO queue,
whose deduplication drops what a retry sends again. Faults are injected into the SQS
client: the call that holds a chosen delivery either raises, or has SQS refuse that one
entry while taking the other entries of the call.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from contacts_core.contacts.store import ContactStore
from contacts_core.dynamodb import dynamodb_client
from contacts_core.sqs import sqs_client
from contacts_core.webhooks.events import webhook_events
from tests.integration.conftest import _Context, function_code
from tests.support.streams import read_stream

pytestmark = pytest.mark.usefixtures("sqs")

# Three contacts created, then A, B, A and C updated: 7 records. Endpoint "all" wants every
# event, "updates" only contact.updated: 3 + 4 × 2 = 11 deliveries.
WRITES = ("create A", "create B", "create C", "update A", "update B", "update A",
          "update C")
DELIVERIES = 11


def _stream_arn() -> str:
    table = boto3.client("dynamodb").describe_table(TableName=os.environ["CONTACTS_TABLE"])
    return str(table["Table"]["LatestStreamArn"])


def _records(org_id: str) -> list[dict[str, Any]]:
    """The org's Contacts stream records, in commit order, as Lambda hands them over
    (``ApproximateCreationDateTime`` in epoch seconds, not the datetime boto3 makes of it)."""
    arn = _stream_arn()
    return [r | {"eventSourceARN": arn, "dynamodb": r["dynamodb"] | {
                "ApproximateCreationDateTime":
                    r["dynamodb"]["ApproximateCreationDateTime"].timestamp()}}
            for r in read_stream() if r["dynamodb"]["Keys"]["org_id"]["S"] == org_id]


def _write_history(call: Any) -> list[str]:
    """Two endpoints, then :data:`WRITES`; the ids of contacts A, B, C."""
    for events in (["*"], ["contact.updated"]):
        created = call("POST", "/v1/webhook-endpoints",
                       {"url": "https://hooks.example.com/h", "events": events})
        assert created.status == 201, created.body
    ids: dict[str, str] = {}
    for n, write in enumerate(WRITES):
        verb, name = write.split()
        if verb == "create":
            ids[name] = call.create({"email": f"{name.lower()}@example.com"})["id"]
        else:
            assert call("PATCH", f"/v1/contacts/{ids[name]}", {"first_name": f"N{n}"}
                        ).status == 200
    return list(ids.values())


def _emit(api: Any, records: list[dict[str, Any]]) -> list[str]:
    """Run the emitter on ``records``; the sequence numbers it reports failed."""
    module = api.handler_module(function_code("EmitWebhooksFunction"))
    result = module.handler({"Records": records}, _Context())
    return [failure["itemIdentifier"] for failure in result["batchItemFailures"]]


def _drain(org_id: str) -> list[dict[str, Any]]:
    """The org's deliveries in the delivery queue, taken out of it (FIFO order per group)."""
    sqs, url = sqs_client(), os.environ["DELIVERY_QUEUE_URL"]
    found: list[dict[str, Any]] = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                          AttributeNames=["MessageGroupId"]
                                          ).get("Messages", []):
        for message in messages:
            body = json.loads(message["Body"])
            if body["org_id"] == org_id:
                found.append(body | {"group": message["Attributes"]["MessageGroupId"]})
        sqs.delete_message_batch(QueueUrl=url, Entries=[
            {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(messages)])
    return found


@pytest.fixture
def batch_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[list[dict[str, Any]]]]:
    """The entries of every ``SendMessageBatch`` call made while the test runs."""
    calls: list[list[dict[str, Any]]] = []
    client, real = sqs_client(), sqs_client().send_message_batch

    def send(**params: Any) -> Any:
        calls.append(params["Entries"])
        return real(**params)

    monkeypatch.setattr(client, "send_message_batch", send)
    yield calls


def _fail_once_at(monkeypatch: pytest.MonkeyPatch, position: int, how: str) -> None:
    """The first call holding delivery ``position`` (its entry ``Id``) fails: ``raise``
    (the call errs) or ``refuse`` (SQS takes the call's other entries, not that one)."""
    client, real = sqs_client(), sqs_client().send_message_batch
    tripped: list[bool] = []

    def send(**params: Any) -> Any:
        entries = params["Entries"]
        if tripped or str(position) not in [e["Id"] for e in entries]:
            return real(**params)
        tripped.append(True)
        if how == "raise":
            raise ClientError({"Error": {"Code": "InternalError", "Message": "injected"}},
                              "SendMessageBatch")
        others = [e for e in entries if e["Id"] != str(position)]
        response = real(**params | {"Entries": others}) if others else {"Successful": []}
        return response | {"Failed": [{"Id": str(position), "SenderFault": False,
                                       "Code": "InternalError", "Message": "injected"}]}

    monkeypatch.setattr(client, "send_message_batch", send)


def _per_group(deliveries: list[dict[str, Any]]) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = {}
    for delivery in deliveries:
        groups.setdefault(delivery["group"], []).append(
            delivery["event"]["data"]["object"]["version"])
    return groups


def test_a_batch_goes_out_in_a_few_calls_never_two_of_one_group_in_one(
        api, org_id, call, batch_calls):
    # Given the org's 7 records (11 deliveries) and, after them, 23 new contacts
    _write_history(call)
    for n in range(23):
        call.create({"phone": f"+2782123{n:04d}"})
    records = _records(org_id)
    assert len(records) == 30
    # When the emitter gets them as one batch
    assert _emit(api, records) == []
    # Then 34 deliveries went out in 5 calls (not one call per record): a call ends at 10
    # entries, or before a second entry of one group (contact A's update after its create)
    assert [len(entries) for entries in batch_calls] == [3, 4, 10, 10, 7]
    assert all(len({e["MessageGroupId"] for e in entries}) == len(entries)
               for entries in batch_calls)
    queued = _drain(org_id)
    assert len(queued) == DELIVERIES + 23
    assert all(versions == sorted(versions) for versions in _per_group(queued).values())


@pytest.mark.parametrize("how", ["refuse", "raise"])
@pytest.mark.parametrize("position", range(DELIVERIES))
def test_sqs_failing_at_any_delivery_loses_repeats_and_reorders_nothing(
        api, org_id, call, monkeypatch, position: int, how: str):
    # Given the org's 7 records, 11 deliveries, and what one clean run would queue
    _write_history(call)
    records = _records(org_id)
    assert len(records) == len(WRITES)
    # When SQS fails once at one delivery, and Lambda retries from the first record the
    # emitter reported failed, as the event source mapping does
    _fail_once_at(monkeypatch, position, how)
    failed = _emit(api, records)
    sequences = [r["dynamodb"]["SequenceNumber"] for r in records]
    # Then the failed records are one record and every record after it
    assert failed, "a failure must be reported"
    first = sequences.index(failed[0])
    assert failed == sequences[first:]
    assert _emit(api, records[first:]) == []
    # And the queue holds every delivery exactly once, each group in commit order
    queued = _drain(org_id)
    keys = [(d["event"]["id"], d["endpoint_id"]) for d in queued]
    assert len(keys) == len(set(keys)) == DELIVERIES
    groups = _per_group(queued)
    assert all(versions == sorted(versions) for versions in groups.values()), groups
    assert sum(len(v) for v in groups.values()) == DELIVERIES


def _delete_three_and_merge_one(call: Any) -> tuple[list[str], str, str]:
    """An endpoint wanting every event; contacts A–C deleted and D merged into T:
    ``([A, B, C], D, T)``."""
    created = call("POST", "/v1/webhook-endpoints",
                   {"url": "https://hooks.example.com/h", "events": ["*"]})
    assert created.status == 201, created.body
    deleted = [call.create({"phone": f"+2782123{n:04d}"})["id"] for n in range(3)]
    source = call.create({"email": "d@example.com"})["id"]
    target = call.create({"email": "t@example.com"})["id"]
    for contact_id in deleted:
        assert call("DELETE", f"/v1/contacts/{contact_id}").status == 204
    merged = call("POST", f"/v1/contacts/{target}/merge", {"source_id": source})
    assert merged.status == 200, merged.body
    return deleted, source, target


def test_a_batch_of_removals_reads_the_merge_records_once(api, org_id, call, log):
    # Given a batch with three deleted contacts and one merged into another
    deleted, source, target = _delete_three_and_merge_one(call)
    records = _records(org_id)
    assert sum(r["eventName"] == "REMOVE" for r in records) == 4
    # When the emitter gets it
    failed, calls = log.during(lambda: _emit(api, records))
    # Then it asked whether they were merged in one BatchGetItem (not a GetItem each) …
    assert failed == []
    assert calls == ["BatchGetItem", "Query"], calls  # merge records, then the endpoints
    # … and the deleted ones are contact.deleted, the merged one a contact.merged only
    events = [(d["event"]["type"], d["event"]["data"]["object"].get("id"))
              for d in _drain(org_id)]
    assert sorted(c for t, c in events if t == "contact.deleted") == sorted(deleted)
    assert ("contact.merged", target) in events
    assert ("contact.deleted", source) not in events


def test_a_failed_merge_record_read_fails_the_batch_from_the_first_removal(
        api, org_id, call, monkeypatch):
    # Given the same batch, and the merge records' read failing once
    _delete_three_and_merge_one(call)
    records = _records(org_id)
    client = dynamodb_client()
    real, tripped = client.batch_get_item, []

    def batch_get_item(**params: Any) -> Any:
        if not tripped:
            tripped.append(True)
            raise ClientError({"Error": {"Code": "InternalServerError", "Message": "injected"}},
                              "BatchGetItem")
        return real(**params)

    monkeypatch.setattr(client, "batch_get_item", batch_get_item)
    # When the emitter gets it, then the retry from its first failure
    failed = _emit(api, records)
    sequences = [r["dynamodb"]["SequenceNumber"] for r in records]
    first_removal = next(n for n, r in enumerate(records) if r["eventName"] == "REMOVE")
    # Then the records before the first removal went out, it and every later one failed …
    assert failed == sequences[first_removal:]
    assert _emit(api, records[first_removal:]) == []
    # … and the queue holds every delivery once: what one clean run queues
    queued = _drain(org_id)
    keys = [(d["event"]["id"], d["endpoint_id"]) for d in queued]
    assert len(keys) == len(set(keys))
    assert len(keys) == sum(len(webhook_events(r, ContactStore().merged_into))
                            for r in records)
