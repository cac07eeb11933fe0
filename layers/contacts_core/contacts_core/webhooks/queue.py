"""SQS access for webhook deliveries (FIFO ``DELIVERY_QUEUE_URL``).

One message per (event, endpoint). ``MessageGroupId`` = endpoint + object, so deliveries
about one contact reach one endpoint in commit order while a dead endpoint blocks only
its own groups; ``MessageDeduplicationId`` = SHA-256 of event id + endpoint, so a stream
retry within SQS's 5-minute deduplication window sends nothing twice.
"""

from __future__ import annotations

import hashlib
import os

from contacts_core.base_model import Model
from contacts_core.sqs import sqs_client
from contacts_core.webhooks.models import WebhookEvent


class Delivery(Model):
    """The body of a delivery message: which endpoint, and the full event."""

    org_id: str
    endpoint_id: str
    event: WebhookEvent


def enqueue(deliveries: list[tuple[Delivery, str]], queue_url: str | None = None) -> None:
    """Send each ``(delivery, ordering key)``, ≤ 10 per ``SendMessageBatch``.

    Raises:
        RuntimeError: SQS refused some entries (the stream record will be retried).
    """
    url = queue_url or os.environ["DELIVERY_QUEUE_URL"]
    for start in range(0, len(deliveries), 10):
        entries = []
        for n, (delivery, key) in enumerate(deliveries[start:start + 10]):
            dedupe = hashlib.sha256(f"{delivery.event.id}|{delivery.endpoint_id}".encode())
            entries.append({"Id": str(n), "MessageBody": delivery.model_dump_json(),
                            "MessageGroupId": f"{delivery.endpoint_id}.{key}"[:128],
                            "MessageDeduplicationId": dedupe.hexdigest()})
        response = sqs_client().send_message_batch(QueueUrl=url, Entries=entries)
        if response.get("Failed"):
            raise RuntimeError(f"SQS refused deliveries: {response['Failed']}")


def postpone(receipt_handle: str, seconds: int, queue_url: str | None = None) -> None:
    """Hide a failed delivery for ``seconds`` before its next attempt (max 12 h, SQS)."""
    sqs_client().change_message_visibility(
        QueueUrl=queue_url or os.environ["DELIVERY_QUEUE_URL"], ReceiptHandle=receipt_handle,
        VisibilityTimeout=max(0, min(seconds, 43200)))
