"""ImportQueue (FIFO, group per org) → an import job run from its checkpoint; before
Lambda's time limit it queues its own continuation (partial batch response, Powertools).

A run that raises leaves its message to come back in a minute (the job continues from its
last checkpoint); a crash or timeout, after the queue's visibility timeout.
"""

from typing import Any

from aws_lambda_powertools.utilities.batch import SqsFifoPartialProcessor, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from contacts_core.imports.operations import run_import_message
from contacts_core.imports.queue import postpone
from contacts_core.observability import logger, observed

RETRY_AFTER_SECONDS = 60
processor = SqsFifoPartialProcessor()
processor.raise_on_entire_batch_failure = False


@observed
def handler(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
    def record_handler(record: SQSRecord) -> None:
        try:
            run_import_message(record.body, int(record.attributes.approximate_receive_count),
                               lambda: context.get_remaining_time_in_millis() / 1000)
        except Exception:
            logger.exception("import run failed; it continues from its checkpoint")
            postpone(record.receipt_handle, RETRY_AFTER_SECONDS)
            raise

    return process_partial_response(event=event, record_handler=record_handler,
                                    processor=processor, context=context)
