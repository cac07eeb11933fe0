"""Turn stream records into deliveries: one per (event, subscribed endpoint), in order."""

from __future__ import annotations

from typing import Any

from contacts_core.contacts.store import ContactStore
from contacts_core.webhooks.events import object_key, webhook_events
from contacts_core.webhooks.models import EndpointItem
from contacts_core.webhooks.queue import Delivery, enqueue
from contacts_core.webhooks.store import EndpointStore


class EarlierRecordFailed(Exception):
    """A record before this one in the batch failed; this one waits for the retry."""


class Fanout:
    """Per invocation: endpoints are read once per org; after a failure every later record
    fails unprocessed, so events are emitted in commit order (SPEC §6)."""

    def __init__(self, store: EndpointStore | None = None,
                 contacts: ContactStore | None = None) -> None:
        self.store = store or EndpointStore()
        self.contacts = contacts or ContactStore(self.store.client)
        self._endpoints: dict[str, list[EndpointItem]] = {}
        self._failed = False
        self.emitted = 0

    def endpoints(self, org_id: str) -> list[EndpointItem]:
        """The org's endpoints (cached for this batch)."""
        if org_id not in self._endpoints:
            self._endpoints[org_id] = self.store.all_for(org_id)
        return self._endpoints[org_id]

    def emit(self, record: dict[str, Any]) -> None:
        """Enqueue the record's events, in order, for every endpoint that wants each.

        The deliveries of one record go out together (≤ 10 per ``SendMessageBatch``, in
        order); a retry of the record sends the same event ids again, which SQS drops as
        duplicates within its deduplication window.
        Raises:
            EarlierRecordFailed: an earlier record of this batch failed.
            Exception: whatever reading endpoints or SQS raised (the record is retried).
        """
        if self._failed:
            raise EarlierRecordFailed()
        try:
            events = webhook_events(record, self.contacts.merged_into)
            if not events:
                return
            endpoints = self.endpoints(events[0].organization_id)
            deliveries = [(Delivery(org_id=event.organization_id, endpoint_id=e.endpoint_id,
                                    event=event), object_key(event))
                          for event in events for e in endpoints if e.wants(event.type)]
            enqueue(deliveries)
            self.emitted += len(deliveries)
        except Exception:
            self._failed = True
            raise
