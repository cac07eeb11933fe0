"""The contacts' records besides a contact's own fields, for the readers that need no
contact model: the stream emitter reads merge records and bookkeeping attributes without
importing pydantic (issue 11, cold start). The writes are :class:`ContactStore`'s.

* Guards, in the ContactIdentities table (``IDENTITIES_TABLE``): ``identity`` =
  ``{org_id}#{field}#{value}`` (:func:`guard_key`) → the ``contact_id`` holding the value.
* Merge records, in the same table: ``{org_id}#merged#{source_id}`` → the target's
  ``contact_id``, written in the merge's transaction and kept :data:`MERGE_RECORD_TTL_S`.
* Bookkeeping attributes of a contact item, never in the API: ``added_at#{audience_id}``
  (when it joined that audience) and ``last_merged_id`` (the source of its latest merge).
"""

from __future__ import annotations

import os
from typing import Any

from contacts_core.dynamodb import batch_get, dynamodb_client

ADDED_AT_PREFIX = "added_at#"  # contact attribute: when it joined that audience
MERGED_FROM = "last_merged_id"  # contact attribute: the source of its latest merge
MERGED_KEY = "merged"  # the "field" of a merge record's key
# How long a merge record is kept (DynamoDB TTL on ``expires_at``): far beyond the 24 h a
# stream record lives (the emitter asks it whether a REMOVE was a merge) and long enough for
# any retry of the merge to be answered 200; guards never carry ``expires_at``.
MERGE_RECORD_TTL_S = 30 * 24 * 3600


def guard_key(org_id: str, field: str, value: str) -> str:
    """The ``identity`` key of a guard (``field`` one of phone, email, external_id) or,
    with ``field`` :data:`MERGED_KEY`, of a merge record: ``{org_id}#{field}#{value}``."""
    return f"{org_id}#{field}#{value}"


class MergeRecords:
    """Reads of merge records (consistent: a merge's transaction wrote them)."""

    def __init__(self, client: Any | None = None) -> None:
        self.client = client or dynamodb_client()
        self.table = os.environ["IDENTITIES_TABLE"]

    def merged_into(self, org_id: str, contact_id: str) -> str | None:
        """The contact that ``contact_id`` was merged into, or None when it was not merged
        (one consistent ``GetItem``; :meth:`merges_of` for many)."""
        item = self.client.get_item(
            TableName=self.table, ConsistentRead=True,
            Key={"identity": {"S": guard_key(org_id, MERGED_KEY, contact_id)}}).get("Item")
        return item["contact_id"]["S"] if item else None

    def merges_of(self, contacts: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """``{(org_id, contact_id): the contact it was merged into}`` for those of
        ``contacts`` that were merged away; the others are absent. 100 keys per
        ``BatchGetItem`` (the stream emitter asks once per batch, not once per removed
        contact).

        Raises:
            ServiceUnavailable: keys stayed unprocessed (throttled).
        """
        pair_of = {guard_key(org_id, MERGED_KEY, contact_id): (org_id, contact_id)
                   for org_id, contact_id in contacts}
        raw = batch_get(self.client, self.table, [{"identity": {"S": key}} for key in pair_of])
        return {pair_of[r["identity"]["S"]]: r["contact_id"]["S"] for r in raw}
