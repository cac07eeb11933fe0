"""DynamoDB access for import jobs (``IMPORTS_TABLE``: PK ``org_id``, SK ``import_id``).

Every change of a job after its creation is one ``UpdateItem`` conditional on the job's
``rev`` as read (optimistic concurrency): a runner that lost its turn (a redelivered
message, a zombie past its visibility timeout) cannot move a checkpoint someone else
moved, and learns it from the False it gets back.
"""

from __future__ import annotations

import os
from typing import Any

from botocore.exceptions import ClientError

from contacts_core.dynamodb import _Expression, deserialize, dynamodb_client, read_page, serialize
from contacts_core.ids import is_resource_id
from contacts_core.imports.models import IMPORT_PREFIX, ImportItem


def _key(org_id: str, import_id: str) -> dict[str, Any]:
    return {"org_id": {"S": org_id}, "import_id": {"S": import_id}}


def _condition_failed(err: ClientError) -> bool:
    return bool(err.response["Error"]["Code"] == "ConditionalCheckFailedException")


class ImportStore:
    """Import jobs of every org."""

    def __init__(self, client: Any | None = None) -> None:
        self.client = client or dynamodb_client()
        self.table = os.environ["IMPORTS_TABLE"]

    def create(self, item: ImportItem) -> None:
        """Store a new job (``PutItem``, the id must be new)."""
        self.client.put_item(TableName=self.table, Item=serialize(item.model_dump()),
                             ConditionExpression="attribute_not_exists(import_id)")

    def get(self, org_id: str, import_id: str) -> ImportItem | None:
        """One strongly consistent ``GetItem``; None when absent (or not an ``imp_`` id)."""
        if not is_resource_id(import_id, IMPORT_PREFIX):
            return None
        raw = self.client.get_item(TableName=self.table, Key=_key(org_id, import_id),
                                   ConsistentRead=True).get("Item")
        return ImportItem(**deserialize(raw)) if raw else None

    def page(self, org_id: str, limit: int, start_key: dict[str, str] | None
             ) -> tuple[list[ImportItem], dict[str, str] | None]:
        """Jobs of the org, newest first (ids are ULIDs), and the key to resume after."""
        params: dict[str, Any] = {
            "TableName": self.table, "ConsistentRead": True, "Limit": limit + 1,
            "ScanIndexForward": False, "KeyConditionExpression": "org_id = :o",
            "ExpressionAttributeValues": {":o": {"S": org_id}}}
        raw, last = read_page(self.client, params, limit, start_key, ("org_id", "import_id"))
        return [ImportItem(**deserialize(r)) for r in raw], last

    def replace(self, before: ImportItem, after: ImportItem) -> bool:
        """Write the fields that differ from ``before`` to ``after`` (``rev`` + 1), if the
        stored job is still at ``before.rev``. Returns False when it is not (or is gone).
        ``after`` gets the new ``rev``."""
        old, new = before.model_dump(), after.model_dump()
        after.rev = before.rev + 1
        new["rev"] = after.rev
        expr = _Expression()
        sets = [f"{expr.name(k)} = {expr.value(v)}" for k, v in new.items()
                if v is not None and v != old.get(k) and k not in ("org_id", "import_id")]
        removes = [expr.name(k) for k, v in new.items() if v is None and old.get(k) is not None]
        update = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        condition = f"{expr.name('rev')} = {expr.value(before.rev)}"
        try:
            self.client.update_item(
                TableName=self.table, Key=_key(before.org_id, before.import_id),
                UpdateExpression=update, ConditionExpression=condition,
                ExpressionAttributeNames=expr.names,
                ExpressionAttributeValues=expr.values)
        except ClientError as err:
            if _condition_failed(err):
                after.rev = before.rev
                return False
            raise
        return True
