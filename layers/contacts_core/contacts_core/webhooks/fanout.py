"""Turn a batch of stream records into deliveries: one per (event, subscribed endpoint),
in commit order, sent together (:func:`contacts_core.webhooks.queue.enqueue`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from contacts_core.contacts.records import MergeRecords
from contacts_core.webhooks.events import object_key, webhook_events
from contacts_core.webhooks.queue import NotQueued, OutgoingDelivery, enqueue
from contacts_core.webhooks.store import EndpointStore, Subscriber


class EarlierRecordFailed(Exception):
    """A record before this one in the batch failed; this one waits for the retry."""


class Fanout:
    """Per invocation: :meth:`send` emits a whole batch of records, then :meth:`outcome`
    tells each record's fate, in the batch's order (SPEC §6: per contact, commit order).

    The deliveries of every record go out in the records' order, packed into as few
    ``SendMessageBatch`` calls as SQS allows, instead of one call (or more) per record: a
    batch of 100 records for one endpoint is ~10 calls, not 100. The first record whose
    events could not be made (reading endpoints or a merge record failed) or whose
    deliveries SQS did not take fails, and so does every record after it, unprocessed or
    not: the mapping retries from the first failure, and SQS drops the deliveries already
    queued as duplicates (same ``MessageDeduplicationId``) within its 5-minute window.
    Endpoints are read once per org. No pydantic model is built (issue 11, cold start).
    """

    def __init__(self, store: EndpointStore | None = None,
                 merges: MergeRecords | None = None) -> None:
        self.store = store or EndpointStore()
        self.merges = merges or MergeRecords(self.store.client)
        self._endpoints: dict[str, list[Subscriber]] = {}
        self._records: Sequence[dict[str, Any]] = ()
        self._next = 0
        self._counts: list[int] = []
        self._failed_at: int | None = None
        self._failure: Exception | None = None
        self._merges: dict[tuple[str, str], str] = {}
        self._merges_failure: Exception | None = None

    def endpoints(self, org_id: str) -> list[Subscriber]:
        """The org's endpoints (cached for this batch)."""
        if org_id not in self._endpoints:
            self._endpoints[org_id] = self.store.subscribers(org_id)
        return self._endpoints[org_id]

    def deliveries(self, record: dict[str, Any]) -> list[OutgoingDelivery]:
        """The delivery of every event of ``record`` to every endpoint that wants it, in
        order.

        Raises:
            Exception: whatever reading endpoints or the merge record raised.
        """
        events = webhook_events(record, self._merged_into)
        if not events:
            return []
        endpoints = self.endpoints(events[0]["organization_id"])
        return [OutgoingDelivery(event["organization_id"], e.endpoint_id, event, object_key(event))
                for event in events for e in endpoints if e.wants(event["type"])]

    def _read_merges(self, records: Sequence[dict[str, Any]]) -> None:
        """Read at once whether each contact the batch removes was merged away (one
        ``BatchGetItem`` per 100, not a ``GetItem`` per REMOVE: a bulk delete streams
        batches of removals). A failed read fails the first record that needed it, as
        reading record by record would."""
        removed = [(keys["org_id"]["S"], keys["contact_id"]["S"]) for keys in (
            (r.get("dynamodb") or {}).get("Keys") or {} for r in records
            if r.get("eventName") == "REMOVE") if "org_id" in keys and "contact_id" in keys]
        try:
            self._merges = self.merges.merges_of(removed) if removed else {}
        except Exception as error:
            self._merges_failure = error

    def _merged_into(self, org_id: str, contact_id: str) -> str | None:
        if self._merges_failure is not None:
            raise self._merges_failure
        return self._merges.get((org_id, contact_id))

    def send(self, records: Sequence[dict[str, Any]]) -> None:
        """Make and send the deliveries of ``records`` (a stream batch, in order); never
        raises: a failure is kept for :meth:`outcome`."""
        self._records = records
        self._read_merges(records)
        planned: list[OutgoingDelivery] = []
        owners: list[int] = []
        for index, record in enumerate(records):
            try:
                made = self.deliveries(record)
            except Exception as error:
                self._fail(index, error)
                break
            planned += made
            owners += [index] * len(made)
            self._counts.append(len(made))
        try:
            enqueue(planned)
        except NotQueued as refused:
            self._fail(owners[refused.first], refused)

    def _fail(self, index: int, error: Exception) -> None:
        if self._failed_at is None or index < self._failed_at:
            self._failed_at, self._failure = index, error

    def outcome(self, record: dict[str, Any]) -> int:
        """How many deliveries ``record`` queued: the records given to :meth:`send` are
        asked about in their order (the same objects, as Powertools' batch processor
        passes them).

        Raises:
            EarlierRecordFailed: a record before it in the batch failed.
            Exception: what made this record fail (the mapping retries it).
        """
        index = next(n for n in range(self._next, len(self._records))
                     if self._records[n] is record)
        self._next = index + 1
        if self._failed_at is not None and index >= self._failed_at:
            if index > self._failed_at:
                raise EarlierRecordFailed()
            assert self._failure is not None
            raise self._failure
        return self._counts[index]
