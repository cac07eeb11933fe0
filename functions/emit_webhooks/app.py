"""DynamoDB Streams → one SQS delivery per (event, subscribed endpoint), in commit order.

Partial batch responses (Powertools): once a record fails, the records after it in the
batch are failed too without being processed, so nothing overtakes it; Lambda retries
from the first failure and SQS deduplication drops anything already sent.
"""

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord

from contacts_core.webhooks.fanout import Fanout

logger = Logger()
# A batch whose records all fail is reported record by record, not raised: the mapping
# retries from the first one either way.
processor = BatchProcessor(event_type=EventType.DynamoDBStreams,
                           raise_on_entire_batch_failure=False)


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
    fanout = Fanout()

    def record_handler(record: DynamoDBRecord) -> None:
        fanout.emit(record.raw_event)

    return process_partial_response(event=event, record_handler=record_handler,
                                    processor=processor, context=context)
