"""DynamoDB Streams → one SQS delivery per (event, subscribed endpoint), in commit order.

Partial batch responses (``ReportBatchItemFailures``): once a record fails, the records
after it in the batch are failed too without being processed, so nothing overtakes it;
Lambda retries from the first failure and SQS deduplication drops anything already sent.
Log lines about a record carry its ``org_id`` and its stream ``eventID`` as correlation id.

The batch loop is written out here rather than taken from Powertools' batch utility: for
a stream read in order it is a few lines, and that utility imports asyncio, Powertools'
event data classes and (when pydantic is loaded first) its parser models — about a
hundred milliseconds of every cold start of this function (issue 11).
"""

from typing import Any

from contacts_core.observability import logger, observed, record_context
from contacts_core.webhooks.fanout import EarlierRecordFailed, Fanout


def record_org(record: dict[str, Any]) -> str | None:
    """The org a stream record is about (every table's key holds ``org_id``)."""
    return ((record.get("dynamodb") or {}).get("Keys") or {}).get("org_id", {}).get("S")


def _emit(fanout: Fanout, record: dict[str, Any]) -> bool:
    """Emit one record's deliveries; False when it failed (and is to be retried)."""
    with record_context(record_org(record), record.get("eventID")):
        before = fanout.emitted
        try:
            fanout.emit(record)
        except EarlierRecordFailed:
            return False
        except Exception:
            logger.exception("stream record failed; the mapping retries it")
            return False
        logger.info("stream record emitted", event_name=record.get("eventName"),
                    deliveries=fanout.emitted - before)
        return True


@observed
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """``{"batchItemFailures": [{"itemIdentifier": sequence number}, …]}``: the records
    that failed, each named by its stream sequence number. A batch whose records all fail
    is reported record by record, not raised: the mapping retries from the first one
    either way.

    Raises:
        ValueError: the event holds no ``Records`` list (not a stream batch).
    """
    records = event.get("Records")
    if not records or not isinstance(records, list):
        raise ValueError("not a DynamoDB Streams batch: no Records")
    fanout = Fanout()
    failed = [record for record in records if not _emit(fanout, record)]
    return {"batchItemFailures": [{"itemIdentifier": record["dynamodb"]["SequenceNumber"]}
                                  for record in failed]}
