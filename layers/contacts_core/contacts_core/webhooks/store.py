"""DynamoDB access for webhook endpoints (WebhookEndpoints table, ``ENDPOINTS_TABLE``).

The endpoint model is imported by the reads that return it, not with the module: the
stream emitter reads :class:`Subscriber` rows only and builds no pydantic model (issue 11,
cold start).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, NamedTuple

from botocore.exceptions import ClientError

from contacts_core.dynamodb import (
    _Expression,
    deserialize,
    dynamodb_client,
    read_page,
    serialize,
)

if TYPE_CHECKING:
    from contacts_core.webhooks.models import EndpointItem


class Subscriber(NamedTuple):
    """An endpoint as the stream emitter needs it: its id and what it gets."""

    endpoint_id: str
    enabled: bool
    events: tuple[str, ...]  # event types, or "*": every type, present and future

    def wants(self, event_type: str) -> bool:
        """True when enabled and subscribed to ``event_type``."""
        return self.enabled and ("*" in self.events or event_type in self.events)


def _endpoint(raw: dict[str, Any]) -> EndpointItem:
    from contacts_core.webhooks.models import EndpointItem

    return EndpointItem(**deserialize(raw))


class EndpointStore:
    """Endpoints by ``(org_id, endpoint_id)``."""

    def __init__(self, client: Any | None = None) -> None:
        self.client = client or dynamodb_client()
        self.table = os.environ["ENDPOINTS_TABLE"]

    def _key(self, org_id: str, endpoint_id: str) -> dict[str, Any]:
        return {"org_id": {"S": org_id}, "endpoint_id": {"S": endpoint_id}}

    def put(self, item: EndpointItem) -> None:
        """Store a new endpoint."""
        self.client.put_item(TableName=self.table, Item=serialize(item.model_dump()),
                             ConditionExpression="attribute_not_exists(endpoint_id)")

    def get(self, org_id: str, endpoint_id: str) -> EndpointItem | None:
        """One consistent ``GetItem``."""
        raw = self.client.get_item(TableName=self.table, Key=self._key(org_id, endpoint_id),
                                   ConsistentRead=True).get("Item")
        return _endpoint(raw) if raw else None

    def count(self, org_id: str, up_to: int) -> int:
        """How many endpoints the org has, counting no further than ``up_to`` (one
        consistent, keys-only ``Query`` page)."""
        response = self.client.query(
            TableName=self.table, KeyConditionExpression="org_id = :o", ConsistentRead=True,
            ExpressionAttributeValues={":o": {"S": org_id}}, Limit=up_to,
            ProjectionExpression="endpoint_id")
        return len(response["Items"])

    def subscribers(self, org_id: str) -> list[Subscriber]:
        """Every endpoint of the org, oldest first, as :class:`Subscriber` (a ``Query`` of
        the attributes it needs; an endpoint written without ``enabled`` is enabled)."""
        found: list[Subscriber] = []
        paginator = self.client.get_paginator("query")
        for page in paginator.paginate(TableName=self.table, KeyConditionExpression="org_id = :o",
                                       ExpressionAttributeValues={":o": {"S": org_id}},
                                       ProjectionExpression="#i, #e, #v",
                                       ExpressionAttributeNames={
                                           "#i": "endpoint_id", "#e": "enabled", "#v": "events"}):
            found += [Subscriber(str(item["endpoint_id"]), bool(item.get("enabled", True)),
                                 tuple(item.get("events") or ()))
                      for item in map(deserialize, page["Items"])]
        return found

    def page(self, org_id: str, limit: int, start_key: dict[str, str] | None
             ) -> tuple[list[EndpointItem], dict[str, str] | None]:
        """Up to ``limit`` endpoints of the org after ``start_key``, oldest first (ids are
        ULIDs), and the key to resume after (None on the last page)."""
        params: dict[str, Any] = {
            "TableName": self.table, "ConsistentRead": True, "Limit": limit + 1,
            "KeyConditionExpression": "org_id = :o",
            "ExpressionAttributeValues": {":o": {"S": org_id}}}
        raw, last = read_page(self.client, params, limit, start_key, ("org_id", "endpoint_id"))
        return [_endpoint(r) for r in raw], last

    def update(self, org_id: str, endpoint_id: str, values: dict[str, Any],
               clear: set[str]) -> EndpointItem | None:
        """Set ``values`` and remove ``clear`` if the endpoint exists; the new item or None."""
        expr = _Expression()
        clause = "SET " + ", ".join(f"{expr.name(k)} = {expr.value(v)}"
                                    for k, v in values.items())
        if clear:
            clause += " REMOVE " + ", ".join(expr.name(k) for k in clear)
        try:
            response = self.client.update_item(
                TableName=self.table, Key=self._key(org_id, endpoint_id),
                UpdateExpression=clause,
                ConditionExpression=f"attribute_exists({expr.name('endpoint_id')})",
                ExpressionAttributeNames=expr.names, ExpressionAttributeValues=expr.values,
                ReturnValues="ALL_NEW")
        except ClientError as err:
            if err.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return None
            raise
        return _endpoint(response["Attributes"])

    def delete(self, org_id: str, endpoint_id: str) -> bool:
        """Delete; False when there was nothing to delete."""
        response = self.client.delete_item(TableName=self.table,
                                           Key=self._key(org_id, endpoint_id),
                                           ReturnValues="ALL_OLD")
        return "Attributes" in response
