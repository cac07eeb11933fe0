"""SQS (FIFO) → signed POST to the endpoint; failures are postponed by the retry schedule
and dead-lettered after its last attempt (partial batch response, Powertools).

Log lines about a delivery carry its ``org_id`` and the event id (the ``webhook-id`` the
endpoint sees) as correlation id; each outcome is counted (delivered, retried,
dead-lettered, dropped).
"""

from typing import Any

from aws_lambda_powertools.utilities.batch import SqsFifoPartialProcessor, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from contacts_core.observability import Metric, count, logger, observed, record_context
from contacts_core.webhooks.delivery import (
    DeliveryFailed,
    Outcome,
    delay_after,
    deliver,
)
from contacts_core.webhooks.models import Delivery
from contacts_core.webhooks.queue import dead_letter, postpone

processor = SqsFifoPartialProcessor(skip_group_on_error=True)
# Report a batch whose records all failed as partial failures instead of raising (the
# FIFO processor's constructor does not take BatchProcessor's flag for this).
processor.raise_on_entire_batch_failure = False


def record_handler(record: SQSRecord) -> None:
    delivery = Delivery.model_validate_json(record.body)
    with record_context(delivery.org_id, delivery.event.id):
        attempt = int(record.attributes.approximate_receive_count)
        try:
            outcome = deliver(delivery)
        except DeliveryFailed as err:
            delay = delay_after(attempt)
            logger.warning("delivery failed", event_id=delivery.event.id, attempt=attempt,
                           endpoint_id=delivery.endpoint_id, reason=str(err), retry_in=delay,
                           dead_lettered=delay is None)
            if delay is None:  # moved to the dead-letter queue, so this record is done
                dead_letter(record.body, record.attributes.message_group_id or "",
                            record.attributes.message_deduplication_id or "")
                count(Metric.WEBHOOKS_DEAD_LETTERED)
                return
            count(Metric.WEBHOOKS_RETRIED)
            postpone(record.receipt_handle, delay)
            raise
        count(Metric.WEBHOOKS_DELIVERED if outcome is Outcome.DELIVERED
              else Metric.WEBHOOKS_DROPPED)
        logger.info("delivery done", event_id=delivery.event.id,
                    endpoint_id=delivery.endpoint_id, attempt=attempt, outcome=str(outcome))


@observed
def handler(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=record_handler,
                                    processor=processor, context=context)
