"""SQS access for webhook deliveries (FIFO ``DELIVERY_QUEUE_URL``).

One message per (event, endpoint). ``MessageGroupId`` = endpoint + object, so deliveries
about one contact reach one endpoint in commit order while a dead endpoint blocks only
its own groups; ``MessageDeduplicationId`` = SHA-256 of event id + endpoint, so a stream
retry within SQS's 5-minute deduplication window sends nothing twice.

Deliveries go out in order, packed into ``SendMessageBatch`` calls of at most 10 entries
and 256 KiB of bodies (SQS's limits for a batch; 256 KiB is the smallest
``MaximumMessageSize`` a queue may have had, so any queue takes it), and **never two
entries of one message group in one call**: SQS reports each entry of a batch on its own,
so if one entry failed a later entry of its group could still be enqueued ahead of its
retry. With one entry per group per call, an entry refused by SQS has nothing of its
group after it in the call, and the calls after a failure are not made.

A message body is the JSON of :class:`contacts_core.webhooks.models.Delivery`, the model the
deliverer validates it with; it is written here from plain values, so the stream emitter
builds no pydantic model (issue 11, cold start).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

from contacts_core.sqs import sqs_client

MAX_BATCH_ENTRIES = 10  # SendMessageBatch
MAX_BATCH_BYTES = 262_144  # sum of the bodies of one SendMessageBatch (see the module doc)


class OutgoingDelivery(NamedTuple):
    """One delivery to queue: which endpoint, the full event (a ``WebhookEvent`` payload,
    :func:`contacts_core.webhooks.events.webhook_events`), and ``key``, the object the event
    is about (:func:`contacts_core.webhooks.events.object_key`), whose order is kept."""

    org_id: str
    endpoint_id: str
    event: dict[str, Any]
    key: str

    def body(self) -> str:
        """The message body: the JSON of a ``Delivery`` (compact, UTF-8 as it is)."""
        return json.dumps({"org_id": self.org_id, "endpoint_id": self.endpoint_id,
                           "event": self.event}, separators=(",", ":"), ensure_ascii=False)


class NotQueued(Exception):
    """SQS did not take every delivery: those before ``first`` (an index into the list
    given to :func:`enqueue`) are queued, that one and every later one are not known to be.
    """

    def __init__(self, first: int, reason: str) -> None:
        super().__init__(f"delivery {first} and later not queued: {reason}")
        self.first = first


def _entry(n: int, delivery: OutgoingDelivery) -> dict[str, str]:
    dedupe = hashlib.sha256(f"{delivery.event['id']}|{delivery.endpoint_id}".encode())
    return {"Id": str(n), "MessageBody": delivery.body(),
            "MessageGroupId": f"{delivery.endpoint_id}.{delivery.key}"[:128],
            "MessageDeduplicationId": dedupe.hexdigest()}


def _calls(entries: list[dict[str, str]]) -> Iterator[tuple[int, list[dict[str, str]]]]:
    """``(index of the first entry, entries)`` of each call, in order (see the module doc)."""
    start, size, groups = 0, 0, set[str]()
    for n, entry in enumerate(entries):
        body = len(entry["MessageBody"].encode())
        if n > start and (n - start == MAX_BATCH_ENTRIES or size + body > MAX_BATCH_BYTES
                          or entry["MessageGroupId"] in groups):
            yield start, entries[start:n]
            start, size, groups = n, 0, set()
        size += body
        groups.add(entry["MessageGroupId"])
    if start < len(entries):
        yield start, entries[start:]


def enqueue(deliveries: Sequence[OutgoingDelivery], queue_url: str | None = None) -> None:
    """Send each delivery, in order, in as few calls as the module doc's packing allows
    (one call for up to 10 deliveries of different groups).

    Raises:
        NotQueued: SQS refused an entry, or a call failed (a client error, throttling,
            the network): ``first`` is the first delivery not known to be queued; no call
            was made after it.
    """
    url = queue_url or os.environ["DELIVERY_QUEUE_URL"]
    entries = [_entry(n, delivery) for n, delivery in enumerate(deliveries)]
    for start, batch in _calls(entries):
        try:
            response = sqs_client().send_message_batch(QueueUrl=url, Entries=batch)
        except Exception as error:
            raise NotQueued(start, repr(error)) from error
        if response.get("Failed"):
            first = min(int(failed["Id"]) for failed in response["Failed"])
            raise NotQueued(first, f"SQS refused deliveries: {response['Failed']}")


def postpone(receipt_handle: str, seconds: int, queue_url: str | None = None) -> None:
    """Hide a failed delivery for ``seconds`` before its next attempt (max 12 h, SQS)."""
    sqs_client().change_message_visibility(
        QueueUrl=queue_url or os.environ["DELIVERY_QUEUE_URL"], ReceiptHandle=receipt_handle,
        VisibilityTimeout=max(0, min(seconds, 43200)))


def dead_letter(body: str, group_id: str, deduplication_id: str,
                queue_url: str | None = None) -> None:
    """Put a delivery whose last scheduled attempt failed on the dead-letter queue (FIFO
    ``DEAD_LETTER_QUEUE_URL``), with its group and deduplication id; the caller then lets
    it go from the delivery queue. The deliverer does this itself, not SQS's redrive after
    a fixed ``maxReceiveCount``, so a delivery gets exactly the attempts of the retry
    schedule (``WEBHOOK_RETRY_DELAYS``), however long the template parameter makes it.

    Raises:
        botocore.exceptions.ClientError (or a connection error): not dead-lettered; the
            delivery stays on its queue and is tried again.
    """
    sqs_client().send_message(
        QueueUrl=queue_url or os.environ["DEAD_LETTER_QUEUE_URL"], MessageBody=body,
        MessageGroupId=group_id, MessageDeduplicationId=deduplication_id)
