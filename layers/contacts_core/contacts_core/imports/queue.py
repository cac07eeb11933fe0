"""SQS access for import jobs (FIFO ``IMPORT_QUEUE_URL``).

A message ``{"org_id", "import_id"}`` asks for the job to be run from its checkpoint.
``MessageGroupId`` is the org, so SQS hands out one message of an org at a time: an org's
imports never run concurrently (two files upserting the same people would otherwise race
for the same identities and their file order would mean nothing). The
``MessageDeduplicationId`` is the job and the point it is asked to run from, so a repeated
send (a retried upload event) within SQS's 5-minute window is dropped.
"""

from __future__ import annotations

import json
import os

from contacts_core.sqs import sqs_client


def enqueue_run(org_id: str, import_id: str, position: str, queue_url: str | None = None) -> None:
    """Ask for ``import_id`` to run (``position``: ``start`` or the next chunk number)."""
    sqs_client().send_message(
        QueueUrl=queue_url or os.environ["IMPORT_QUEUE_URL"],
        MessageBody=json.dumps({"org_id": org_id, "import_id": import_id}),
        MessageGroupId=org_id, MessageDeduplicationId=f"{import_id}.{position}")


def postpone(receipt_handle: str, seconds: int, queue_url: str | None = None) -> None:
    """Make a message that failed come back after ``seconds`` instead of the queue's
    visibility timeout (16 minutes)."""
    sqs_client().change_message_visibility(
        QueueUrl=queue_url or os.environ["IMPORT_QUEUE_URL"], ReceiptHandle=receipt_handle,
        VisibilityTimeout=seconds)
