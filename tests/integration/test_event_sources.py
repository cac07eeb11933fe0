"""The local stream event source mapping behaves as Lambda's does (issue 4 outcome 5):
batch size, order per shard, filter criteria, partial batch failures, bisect on function
error, bounded retries and the on-failure destination — against DynamoDB Local's stream."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from contacts_core.contacts.models import ContactItem
from contacts_core.dynamodb import serialize
from contacts_core.ids import now
from devstack.aws import local_client
from devstack.event_sources import FunctionError, Mapping, StreamPoller, mappings

TEMPLATE = Path(__file__).parents[2] / "template.yaml"


@pytest.fixture
def contacts_mapping() -> Mapping:
    found = [m for m in mappings(TEMPLATE) if m.source == "ContactsTable"]
    assert found and found[0].function_id == "EmitWebhooksFunction"
    return replace(found[0], starting_position="LATEST", batch_size=4, max_retries=2)


class Recorder:
    """A stand-in function: records batches (by contact id) and answers per ``script``."""

    def __init__(self, script=None) -> None:
        self.batches: list[list[str]] = []
        self.failures: list[dict] = []
        self.script = script or (lambda batch, n: None)

    def invoke(self, function_id, event):
        ids = [r["dynamodb"]["Keys"]["contact_id"]["S"] for r in event["Records"]]
        self.batches.append(ids)
        return self.script(event["Records"], len(self.batches))

    def send_failure(self, queue, record):
        self.failures.append({"queue": queue, **record})


def write(dynamodb: str, org_id: str, n: int, prefix: str = "con_") -> list[str]:
    """Put ``n`` well-formed contact items (other tests scan the same table)."""
    client = local_client("dynamodb", dynamodb)
    ids = [f"{prefix}{org_id}_{i:02d}" for i in range(n)]
    for contact_id in ids:
        item = ContactItem(org_id=org_id, contact_id=contact_id, version=1, created_at=now(),
                           updated_at=now(), name_key=f"#{contact_id}")
        client.put_item(TableName="ContactsTable", Item=serialize(item.model_dump()))
    return ids


def start(mapping, dynamodb, recorder) -> StreamPoller:
    poller = StreamPoller(mapping, dynamodb, recorder.invoke, recorder.send_failure)
    poller.poll()
    return poller


def drain(poller: StreamPoller) -> None:
    while poller.poll():
        pass


def test_batches_follow_batch_size_order_and_filters(dynamodb, org_id, contacts_mapping):
    recorder = Recorder()
    poller = start(contacts_mapping, dynamodb, recorder)
    ids = write(dynamodb, org_id, 10)
    write(dynamodb, org_id, 2, prefix="guard_")  # filtered out by FilterCriteria
    drain(poller)
    delivered = [cid for batch in recorder.batches for cid in batch]
    assert delivered == ids
    assert all(len(batch) <= 4 for batch in recorder.batches)


def test_partial_failure_retries_from_the_failed_record(dynamodb, org_id, contacts_mapping):
    def fail_third_once(records, n):
        if n == 1:
            return {"batchItemFailures": [{"itemIdentifier":
                                           records[2]["dynamodb"]["SequenceNumber"]}]}
        return None

    recorder = Recorder(fail_third_once)
    poller = start(contacts_mapping, dynamodb, recorder)
    ids = write(dynamodb, org_id, 4)
    drain(poller)
    assert recorder.batches[:2] == [ids, ids[2:]]
    assert not recorder.failures


def test_function_error_bisects_until_the_poison_record_is_isolated(
        dynamodb, org_id, contacts_mapping):
    poison = f"con_{org_id}_01"

    def explode_on_poison(records, n):
        if any(r["dynamodb"]["Keys"]["contact_id"]["S"] == poison for r in records):
            raise FunctionError("poison")

    recorder = Recorder(explode_on_poison)
    poller = start(contacts_mapping, dynamodb, recorder)
    ids = write(dynamodb, org_id, 4)
    drain(poller)
    succeeded = [b for b in recorder.batches if poison not in b]
    assert sorted(c for b in succeeded for c in b) == sorted(set(ids) - {poison})
    assert [poison] in recorder.batches
    (failure,) = recorder.failures
    assert failure["queue"] == "StreamFailureQueue"
    assert failure["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert failure["DDBStreamBatchInfo"]["batchSize"] == 1


def test_after_the_last_retry_the_batch_goes_to_the_on_failure_destination(
        dynamodb, org_id, contacts_mapping):
    def always_fail(records, n):
        return {"batchItemFailures": [{"itemIdentifier": r["dynamodb"]["SequenceNumber"]}
                                      for r in records]}

    recorder = Recorder(always_fail)
    poller = start(replace(contacts_mapping, bisect=False), dynamodb, recorder)
    write(dynamodb, org_id, 3)
    drain(poller)
    assert len(recorder.batches) == 3  # first try + MaximumRetryAttempts (2)
    (failure,) = recorder.failures
    assert failure["DDBStreamBatchInfo"]["batchSize"] == 3
    later = write(dynamodb, org_id, 1, prefix="con_later_")
    recorder.script = lambda records, n: None
    drain(poller)
    assert recorder.batches[-1] == later  # the mapping moved on


def test_the_audience_delete_mapping_sees_only_audiences_flagged_deleting(dynamodb, org_id):
    # Given the template's mapping that finishes audience deletes, on the real stream
    (mapping,) = [m for m in mappings(TEMPLATE) if m.function_id == "FinishAudienceDeleteFunction"]
    seen: list[tuple[str, str, bool]] = []

    def record(function_id, event):
        for r in event["Records"]:
            image = r["dynamodb"]["NewImage"]
            seen.append((r["eventName"], image["audience_id"]["S"],
                         image.get("deleting", {}).get("BOOL", False)))

    poller = StreamPoller(replace(mapping, starting_position="LATEST"), dynamodb, record,
                          lambda queue, failure: None)
    poller.poll()
    # When an audience and its name guard are written, renamed, flagged, changed, deleted
    client = local_client("dynamodb", dynamodb)
    table = "AudiencesTable"
    key = {"org_id": {"S": org_id}, "audience_id": {"S": f"aud_{org_id}"}}
    audience = key | {"name": {"S": "A"}, "contact_count": {"N": "1"},
                      "created_at": {"S": now()}, "updated_at": {"S": now()}}
    client.put_item(TableName=table, Item=audience)
    client.put_item(TableName=table, Item={"org_id": {"S": org_id}, "audience_id": {
        "S": "name#a"}, "guard_for": {"S": f"aud_{org_id}"}, "deleting": {"BOOL": True}})
    client.update_item(TableName=table, Key=key, UpdateExpression="SET #n = :v",
                       ExpressionAttributeNames={"#n": "name"},
                       ExpressionAttributeValues={":v": {"S": "B"}})
    for update, values in (("SET deleting = :v", {":v": {"BOOL": True}}),
                           ("ADD contact_count :v", {":v": {"N": "-1"}})):
        client.update_item(TableName=table, Key=key, UpdateExpression=update,
                           ExpressionAttributeValues=values)
    client.delete_item(TableName=table, Key=key)
    drain(poller)
    # Then the function got the two MODIFY records of the flagged audience, nothing else
    assert seen == [("MODIFY", f"aud_{org_id}", True)] * 2
