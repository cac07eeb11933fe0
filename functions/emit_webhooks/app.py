"""DynamoDB Streams → one SQS delivery per (event, subscribed endpoint), in commit order.

The batch's deliveries are made and sent first, together (:class:`Fanout`: as few
``SendMessageBatch`` calls as SQS allows); then Powertools' batch processor asks each
record for its outcome and builds the partial batch response: once a record failed, the
records after it fail too, so nothing overtakes it; Lambda retries from the first failure
and SQS deduplication drops anything already sent. Log lines about a record carry its
``org_id`` and its stream ``eventID`` as correlation id.
"""

from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord

from contacts_core.observability import logger, observed, record_context
from contacts_core.webhooks.fanout import EarlierRecordFailed, Fanout

# A batch whose records all fail is reported record by record, not raised: the mapping
# retries from the first one either way.
processor = BatchProcessor(event_type=EventType.DynamoDBStreams,
                           raise_on_entire_batch_failure=False)


def record_org(record: dict[str, Any]) -> str | None:
    """The org a stream record is about (every table's key holds ``org_id``)."""
    return ((record.get("dynamodb") or {}).get("Keys") or {}).get("org_id", {}).get("S")


@observed
def handler(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
    fanout = Fanout()
    fanout.send(event.get("Records") or [])

    def record_handler(record: DynamoDBRecord) -> None:
        with record_context(record_org(record.raw_event), record.event_id):
            try:
                deliveries = fanout.outcome(record.raw_event)
            except EarlierRecordFailed:
                raise
            except Exception:
                logger.exception("stream record failed; the mapping retries it")
                raise
            logger.info("stream record emitted", event_name=record.raw_event.get("eventName"),
                        deliveries=deliveries)

    return process_partial_response(event=event, record_handler=record_handler,
                                    processor=processor, context=context)
