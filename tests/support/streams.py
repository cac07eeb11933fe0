"""Read the Contacts table's stream from DynamoDB Local and replay it to check I1 over time.

Reading: ``dynamodbstreams`` at the same endpoint, every shard from ``TRIM_HORIZON`` until
a read returns nothing (an open shard) or the shard ends; records are ordered by
``SequenceNumber`` (an integer; per key DynamoDB keeps write order, and DynamoDB Local
numbers the records of all tables from one counter, so the order is also the commit order).

Replay: per contact key, the images are applied in that order, and after each record the
set of live contacts is checked for two contacts holding one phone or email.

What a *moment* is: a transaction commits all its items at once, but its stream records
are consecutive records, one per item. So after the first record of a transaction that
moves a phone from X to Y (a bulk upsert does that), the replay may see Y holding it while
X's record, one record later, has not released it yet. That is not a moment anyone could
observe. The replay therefore tolerates a duplicate only when the record that resolves it
follows within ``window`` records *and*, when the test recorded the committed transactions
(``together``, key pairs written by one ``TransactWriteItems``, see :func:`transaction_pairs`),
the record that introduced it and the one that resolved it belong to one transaction.
Anything else – a duplicate that outlives that span – is a violation. Timestamps cannot
group records: ``ApproximateCreationDateTime`` on DynamoDB Local is rounded to the minute.

The replay also checks continuity: each record's OLD image equals the NEW image the
previous record of that key left (no lost or reordered records per key).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import boto3

from contacts_core.contacts.models import IDENTITY_FIELDS
from tests.support.hooks import Call

Key = tuple[str, str]  # (org_id, contact_id)


def read_stream(table: str | None = None) -> list[dict[str, Any]]:
    """Every record of ``table``'s stream (default: the Contacts table), in sequence order."""
    table = table or os.environ["CONTACTS_TABLE"]
    ddb = boto3.client("dynamodb")
    streams = boto3.client("dynamodbstreams",
                           endpoint_url=os.environ["AWS_ENDPOINT_URL_DYNAMODB"])
    arn = ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    shards: list[dict[str, Any]] = []
    params: dict[str, Any] = {"StreamArn": arn}
    while True:
        description = streams.describe_stream(**params)["StreamDescription"]
        shards += description["Shards"]
        if not description.get("LastEvaluatedShardId"):
            break
        params["ExclusiveStartShardId"] = description["LastEvaluatedShardId"]
    records: list[dict[str, Any]] = []
    for shard in shards:
        iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"],
                                              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        while iterator:
            response = streams.get_records(ShardIterator=iterator, Limit=1000)
            records += response["Records"]
            if not response["Records"]:
                break  # an open shard has nothing more for now
            iterator = response.get("NextShardIterator")
    return sorted(records, key=lambda r: int(r["dynamodb"]["SequenceNumber"]))


def _key(record: dict[str, Any]) -> Key:
    keys = record["dynamodb"]["Keys"]
    return keys["org_id"]["S"], keys["contact_id"]["S"]


def _identities(image: dict[str, Any] | None) -> dict[str, str]:
    if not image:
        return {}
    return {f: image[f]["S"] for f in IDENTITY_FIELDS if f in image}


def transaction_pairs(calls: Iterable[Call], contacts_table: str | None = None
                      ) -> set[frozenset[Key]]:
    """Pairs of contacts written by one ``TransactWriteItems`` among ``calls``."""
    table = contacts_table or os.environ["CONTACTS_TABLE"]
    pairs: set[frozenset[Key]] = set()
    for call in calls:
        if call.op != "TransactWriteItems":
            continue
        keys: list[Key] = []
        for action in call.params["TransactItems"]:
            (body,) = action.values()
            if body["TableName"] != table:
                continue
            item = body.get("Item") or body["Key"]
            keys.append((item["org_id"]["S"], item["contact_id"]["S"]))
        pairs |= {frozenset((a, b)) for a in keys for b in keys if a != b}
    return pairs


@dataclass
class Replay:
    """Outcome of :func:`replay`."""

    records: int = 0
    transient: int = 0  # duplicates resolved within one transaction's records
    violations: list[str] = field(default_factory=list)


def replay(records: list[dict[str, Any]], org_id: str, *, window: int = 100,
           together: set[frozenset[Key]] | None = None) -> Replay:
    """Apply ``org_id``'s records in order; report duplicates that outlive a transaction,
    lost or reordered records, and a contact's ``updated_at`` going back."""
    outcome = Replay()
    live: dict[Key, dict[str, str]] = {}
    images: dict[Key, dict[str, Any] | None] = {}
    holders: dict[tuple[str, str], set[Key]] = {}
    # duplicate (field, value) → (record index that introduced it, key that introduced it,
    # the holders then)
    open_dupes: dict[tuple[str, str], tuple[int, Key, list[str]]] = {}
    mine = [r for r in records if _key(r)[0] == org_id]
    for index, record in enumerate(mine):
        outcome.records += 1
        key = _key(record)
        old, new = record["dynamodb"].get("OldImage"), record["dynamodb"].get("NewImage")
        if key in images and images[key] != old:
            outcome.violations.append(f"record {index} of {key[1]}: OLD image is not the "
                                      "previous NEW image (lost or reordered record)")
        stamps = [(image or {}).get("updated_at", {}).get("S") for image in (old, new)]
        if None not in stamps and stamps[1] < stamps[0]:
            outcome.violations.append(f"record {index} of {key[1]}: updated_at went back "
                                      f"({stamps[0]} → {stamps[1]}) as the version went up")
        images[key] = new
        for pair in live.get(key, {}).items():
            holders.get(pair, set()).discard(key)
        live.pop(key, None)
        if new:
            live[key] = _identities(new)
            for pair in live[key].items():
                holders.setdefault(pair, set()).add(key)
        for pair in list(open_dupes):
            if len(holders.get(pair, ())) <= 1:
                started, introducer, who = open_dupes.pop(pair)
                linked = together is None or frozenset((introducer, key)) in together
                if index - started < window and linked:
                    outcome.transient += 1
                else:
                    outcome.violations.append(
                        f"{pair[0]} {pair[1]} was held by {who} from record {started} "
                        f"to {index} ({'not one transaction' if not linked else 'too long'})")
        for pair in _identities(new).items():
            if len(holders[pair]) > 1 and pair not in open_dupes:
                open_dupes[pair] = (index, key, sorted(k[1] for k in holders[pair]))
    for pair, (started, _, who) in open_dupes.items():
        outcome.violations.append(f"{pair[0]} {pair[1]} held by {who} from record {started} on")
    return outcome
