"""DynamoDB plumbing shared by every aggregate's data-access module: the client, item
(de)serialisation, expressions, retries with backoff, batch reads, transactions and paged
queries. The data-access modules (``contacts.store``, ``audiences.store``,
``webhooks.store``, ``auth``) are the only ones that call DynamoDB.

Limits from the DynamoDB Developer Guide: ``BatchGetItem`` reads at most 100 keys a call,
``TransactWriteItems`` holds at most 100 actions and 4 MB.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from botocore.config import Config
from botocore.exceptions import ClientError

from contacts_core.attribute_values import from_attribute_value, to_attribute_value
from contacts_core.aws import aws_client
from contacts_core.errors import ConcurrentModification, ServiceUnavailable


class VersionConflict(ConcurrentModification):
    """The contact changed (or vanished) between our read and our conditional write.

    Operations re-read and retry; when the retry budget runs out it reaches the client as
    409 ``concurrent_modification`` (retryable), never as a 500.
    """


class Contention(ConcurrentModification):
    """DynamoDB cancelled a transaction because another one touched the same items;
    retried like :class:`VersionConflict`."""


# Error codes of a write that mean "another transaction holds these items, try again".
# Throttling is not among them: botocore's standard retry mode has already backed off,
# and the request answers 503 ``service_unavailable`` (contacts_core.aws.service_unavailable)
# rather than 409, which says the records changed.
_RETRYABLE_CODES = {"TransactionConflictException", "TransactionInProgressException"}


def retryable(err: ClientError) -> bool:
    """True when DynamoDB answered "busy with another transaction on these items, try
    again" rather than rejecting the request itself."""
    return err.response["Error"]["Code"] in _RETRYABLE_CODES


@cache
def dynamodb_client() -> Any:
    """The process-wide DynamoDB client (reused across warm invocations).

    Endpoint and credentials follow botocore's configuration, so the local stack and the
    tests point it at DynamoDB Local with ``AWS_ENDPOINT_URL_DYNAMODB``. A non-empty
    ``DYNAMODB_ENDPOINT_URL`` (a template variable, empty on AWS) wins: ``sam local`` can
    override template variables only, and ``.dev/env.json`` sets it.
    """
    return aws_client("dynamodb", "DYNAMODB_ENDPOINT_URL",
                      Config(max_pool_connections=32, retries={"mode": "standard"}))


def serialize(item: dict[str, Any]) -> dict[str, Any]:
    """Plain dict → DynamoDB attribute values (``None`` and empty sets are left out, as
    DynamoDB has no empty set; :func:`~contacts_core.attribute_values.to_attribute_value`)."""
    return {k: to_attribute_value(v) for k, v in item.items() if v is not None and v != set()}


def deserialize(item: dict[str, Any]) -> dict[str, Any]:
    """DynamoDB attribute values → plain dict with ``int``/``float`` numbers
    (:func:`~contacts_core.attribute_values.from_attribute_value`)."""
    return {k: from_attribute_value(v) for k, v in item.items()}


def backoff(attempt: int) -> None:
    """Sleep a jittered exponential backoff: uniform in [0, min(1 s, 20 ms × 2^attempt))."""
    time.sleep(min(1.0, 0.02 * 2**attempt) * random.random())


MAX_ATTEMPTS = 8  # tries of an operation that keeps losing races before it gives up


def with_retries[T](attempt: Callable[[], T],
                    retry_on: tuple[type[Exception], ...] = (ConcurrentModification,)) -> T:
    """Run ``attempt`` (which re-reads what it decides on) until it stops raising one of
    ``retry_on``, sleeping :func:`backoff` between tries.

    Raises:
        ConcurrentModification: still losing races after ``MAX_ATTEMPTS`` tries (409,
            retryable); any other error of ``attempt`` as it is.
    """
    for n in range(MAX_ATTEMPTS):
        try:
            return attempt()
        except retry_on as err:
            if n == MAX_ATTEMPTS - 1:
                raise ConcurrentModification() from err
            backoff(n)
    raise AssertionError("unreachable")


@dataclass
class ReadCost:
    """Reads one piece of work made: DynamoDB ``round_trips`` and ``read_units`` (RCU, from
    ``ConsumedCapacity`` when the call asked for it with ``ReturnConsumedCapacity``)."""

    round_trips: int = 0
    read_units: float = 0.0

    def record(self, response: dict[str, Any]) -> None:
        """Add one call's response."""
        self.round_trips += 1
        consumed = response.get("ConsumedCapacity")
        for part in consumed if isinstance(consumed, list) else [consumed] if consumed else []:
            self.read_units += float(part.get("CapacityUnits", 0))


def batch_get(client: Any, table: str, keys: list[dict[str, Any]],
              cost: ReadCost | None = None) -> list[dict[str, Any]]:
    """Strongly consistent ``BatchGetItem`` of any number of keys of one table.

    Keys go 100 per call (the BatchGetItem limit); ``UnprocessedKeys`` are retried with
    jittered exponential backoff, as AWS recommends. Returns the raw items found. With
    ``cost``, each call asks for and adds its consumed capacity.
    Raises:
        ServiceUnavailable: keys stayed unprocessed after 8 attempts (throttled; 503).
    """
    found: list[dict[str, Any]] = []
    for start in range(0, len(keys), 100):
        pending: list[dict[str, Any]] | None = keys[start:start + 100]
        for attempt in range(8):
            response = client.batch_get_item(
                RequestItems={table: {"Keys": pending, "ConsistentRead": True}},
                **({"ReturnConsumedCapacity": "TOTAL"} if cost else {}))
            if cost:
                cost.record(response)
            found += response["Responses"].get(table, [])
            pending = response.get("UnprocessedKeys", {}).get(table, {}).get("Keys")
            if not pending:
                break
            backoff(attempt)
        else:
            raise ServiceUnavailable()
    return found


def cancellation_reasons(err: ClientError) -> list[str] | None:
    """Codes of a cancelled ``TransactWriteItems``, one per action (None if not a cancel)."""
    if err.response["Error"]["Code"] != "TransactionCanceledException":
        return None
    reasons: list[dict[str, Any]] = err.response.get(  # type: ignore[assignment]
        "CancellationReasons", [])
    return [r.get("Code", "None") for r in reasons]


def transact(client: Any, actions: list[dict[str, Any]]) -> list[str] | None:
    """Run one ``TransactWriteItems`` (≤ 100 actions); None on success, else the
    per-action cancellation codes (``ConditionalCheckFailed``, ``TransactionConflict``…).

    Raises:
        Contention: another transaction on the same items was in progress.
    """
    try:
        client.transact_write_items(TransactItems=actions)
    except ClientError as err:
        if retryable(err):
            raise Contention(str(err)) from err
        codes = cancellation_reasons(err)
        if codes is None:
            raise
        return codes
    return None


class _Expression:
    """Collects placeholders for one DynamoDB update/condition expression."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.values: dict[str, Any] = {}

    def name(self, *path: str) -> str:
        parts = []
        for part in path:
            placeholder = f"#n{len(self.names)}"
            self.names[placeholder] = part
            parts.append(placeholder)
        return ".".join(parts)

    def value(self, value: Any) -> str:
        placeholder = f":v{len(self.values)}"
        self.values[placeholder] = to_attribute_value(value)
        return placeholder


def read_page(client: Any, params: dict[str, Any], limit: int,
               start_key: dict[str, str] | None, key_fields: tuple[str, ...]
               ) -> tuple[list[dict[str, Any]], dict[str, str] | None]:
    """Query (``params`` with ``Limit`` set) until ``limit`` items pass the filter or the
    range ends. Returns the raw items and the resume key: the last returned item's
    ``key_fields`` (table and index keys), None exactly when nothing follows."""
    items: list[dict[str, Any]] = []
    esk = {k: {"S": v} for k, v in start_key.items()} if start_key else None
    while len(items) <= limit:
        if esk:
            params["ExclusiveStartKey"] = esk
        response = client.query(**params)
        items += response["Items"]
        esk = response.get("LastEvaluatedKey")
        if not esk:
            break
    if len(items) <= limit:
        return items, None
    page = items[:limit]
    return page, {k: page[-1][k]["S"] for k in key_fields}
