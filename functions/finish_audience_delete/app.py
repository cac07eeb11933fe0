"""AudiencesTable stream (MODIFY records of audiences flagged ``deleting``) → finish deleting
them: members out with exact counts, then the audience and its name guard.

Every transaction of a run changes the audience, and that stream record triggers this
function again, so a run cut short (timeout, crash, throttling) is resumed by the stream;
records of one batch about the same audience are handled once. A run that fails is
reported as a partial batch failure and retried by the mapping (bounded, then the
on-failure queue), and so is a record there is no time left to start on; an audience that
is already gone makes a run a single ``GetItem``. Log lines about a record carry its
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

from contacts_core.audiences.operations import finish_audience_delete
from contacts_core.observability import logger, observed, record_context

SPARE_MILLIS = 20_000  # stop starting transactions this close to the function's timeout

processor = BatchProcessor(event_type=EventType.DynamoDBStreams,
                           raise_on_entire_batch_failure=False)


class NoTimeLeft(Exception):
    """Too close to the timeout to start; the mapping retries the record."""


@observed
def handler(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
    remaining = getattr(context, "get_remaining_time_in_millis", None)

    def keep_going() -> bool:
        return remaining is None or remaining() > SPARE_MILLIS

    handled: set[tuple[str, str]] = set()

    def record_handler(record: DynamoDBRecord) -> None:
        keys = record.raw_event["dynamodb"]["Keys"]
        with record_context(keys["org_id"]["S"], record.event_id):
            finish((keys["org_id"]["S"], keys["audience_id"]["S"]))

    def finish(audience: tuple[str, str]) -> None:
        if audience in handled:
            return  # finished, or stopped after a change whose record comes later
        if not keep_going():
            raise NoTimeLeft(audience[1])
        handled.add(audience)
        if finish_audience_delete(*audience, keep_going=keep_going):
            logger.info("audience delete finished", audience_id=audience[1])
        else:
            logger.info("audience delete continues with its next stream record",
                        audience_id=audience[1])

    return process_partial_response(event=event, record_handler=record_handler,
                                    processor=processor, context=context)
