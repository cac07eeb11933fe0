"""``Idempotency-Key`` on POST, PATCH and DELETE (SPEC §9.4), on Powertools' idempotency
utility with its DynamoDB persistence layer (the ``Idempotency`` table, TTL on
``expiration``).

- Scope: the org and the key. One record per ``(org, key)`` for every endpoint (a shared
  ``key_prefix``), so a key first used on another endpoint is a reuse too.
- Kept 24 h (``IDEMPOTENCY_TTL_SECONDS``); after that the key may be used again.
- A repeat with the same method, path, query and body (JSON compared as parsed, so
  member order and spacing do not matter) gets the first response again, with
  ``Idempotent-Replayed: true``; a repeat with anything else → 422
  ``idempotency_key_reused``; a repeat while the first is still running → 409
  ``idempotency_in_progress`` (``Retry-After: 1``).
- Like Stripe, only requests that ran are kept: a 400/413 (invalid input, the request did
  nothing), a retryable 409 (``concurrent_modification``, or an audience name held by an
  audience being deleted: nothing was written) and a 5xx
  are not recorded, so the client can fix the request or retry it under the same key.
  Rate-limited requests (429) never reach this module. A large response (a bulk result)
  is recorded with its body compressed (:func:`packed`); one whose record would still be
  over :data:`MAX_RECORDED_BYTES` (:func:`recorded_size`: bodies of random, incompressible
  text) does not fit one DynamoDB item: it is answered, not recorded, and a retry runs
  again (bulk upsert and delete are idempotent by themselves, batch get only reads).
- A request that crashed mid-way (timeout, out of memory) holds its key until its Lambda
  time would have run out (Powertools' in-progress expiry), then the key runs again.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from contacts_core.dynamodb import dynamodb_client
from contacts_core.errors import IdempotencyInProgress, IdempotencyKeyReused, ValidationFailed

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency import (
        DynamoDBPersistenceLayer,
        IdempotencyConfig,
    )
    from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord

    from contacts_core.http.handler import ApiRequest

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
METHODS = frozenset({"POST", "PATCH", "DELETE"})
MAX_KEY_LENGTH = 255  # Stripe's limit; a UUID v4 (36) or a ULID (26) fits easily
# Visible ASCII, no space and no comma: HTTP joins a header sent twice into one value with
# commas (RFC 9110 §5.3, as API Gateway's payload 2.0 does), so "k1,k2" is two keys sent at
# once, which names no one request: refused rather than taken as a third key.
KEY_CHARACTERS = r"[\x21-\x2b\x2d-\x7e]"
KEY_FORMAT = re.compile(rf"{KEY_CHARACTERS}{{1,{MAX_KEY_LENGTH}}}")
KEY_RULE = f"1 to {MAX_KEY_LENGTH} visible ASCII characters other than a comma"
_NOT_KEPT = frozenset({400, 413})  # refused before doing anything (plus every 5xx)


def _retryable(response: Rendered) -> bool:
    """True for a 409 problem marked ``"retryable": true`` (``concurrent_modification``:
    other requests kept changing the same records; ``audience_name_conflict`` with an
    audience being deleted; nothing was written either way). Like Stripe's
    conflicts with a concurrent request, it is not kept: the retry the answer asks for runs
    under the same key instead of replaying the conflict for 24 hours."""
    if response["statusCode"] != 409:
        return False
    try:
        return json.loads(response.get("body") or "{}").get("retryable") is True
    except (ValueError, AttributeError):
        return False
# A record is one DynamoDB item (≤ 400 KB, DynamoDB Developer Guide "Service quotas"): a
# response whose record would be larger (a big bulk result) is answered but not recorded;
# a retry runs again. The rest of the item (key, hashes, expiry) is far under the margin.
MAX_RECORDED_BYTES = 350_000


def recorded_size(response: Rendered) -> int:
    """Bytes of ``response`` as the record stores it: Powertools keeps ``json.dumps`` of it
    (ASCII, sorted keys), so the body, a JSON string inside that JSON, counts with every
    ``"`` and ``\\`` escaped again and every non-ASCII character as ``\\uXXXX`` — a body of
    quotes or emoji takes two to three times its own size."""
    return len(json.dumps(response, sort_keys=True))
# Bodies from this size on are recorded compressed: a bulk result of 1000 contacts
# (≈ 1 MB, repetitive JSON) becomes a tenth of that; small answers stay readable.
PACKED_FROM_BYTES = 32_000
_PACKED_BODY = "body_zlib"  # the record's member for a compressed body (base64 of zlib)


def packed(response: Rendered) -> Rendered:
    """``response`` as recorded: a body of :data:`PACKED_FROM_BYTES` or more is replaced by
    ``body_zlib``, the base64 of its zlib-compressed UTF-8 (RFC 1950; ASCII, so the record's
    JSON escapes nothing in it). Smaller responses are returned as they are."""
    body = response.get("body")
    if not isinstance(body, str) or len(body) < PACKED_FROM_BYTES:
        return response
    squeezed = base64.b64encode(zlib.compress(body.encode(), 6)).decode("ascii")
    return {**{k: v for k, v in response.items() if k != "body"}, _PACKED_BODY: squeezed}


def unpacked(recorded: Rendered) -> Rendered:
    """The response ``recorded`` was made from by :func:`packed` (itself when not packed)."""
    if _PACKED_BODY not in recorded:
        return recorded
    body = zlib.decompress(base64.b64decode(recorded[_PACKED_BODY])).decode()
    return {**{k: v for k, v in recorded.items() if k != _PACKED_BODY}, "body": body}


_PREFIX = "contacts-api"  # one key space for every function
DAY_SECONDS = 24 * 3600

Rendered = dict[str, Any]  # a Lambda proxy response: statusCode, headers, body


@dataclass(frozen=True)
class Seal:
    """How a response that shows a secret is recorded: ``seal(response, org_id)`` is what
    the record keeps (the secret encrypted), ``unseal(recorded, org_id)`` the replay. A
    handler whose answer carries a secret passes one, so records never hold it in clear."""

    seal: Callable[[Rendered, str], Rendered]
    unseal: Callable[[Rendered, str], Rendered]


class _NotKept(Exception):
    """Carries a response that must not be recorded; Powertools then deletes the
    in-progress record, freeing the key."""

    def __init__(self, response: Rendered) -> None:
        super().__init__(response["statusCode"])
        self.response = response


def idempotency_key(request: ApiRequest) -> str | None:
    """The request's ``Idempotency-Key``, or None when absent (or on GET).

    Raises:
        ValidationFailed: on ``Idempotency-Key`` when empty, longer than
            :data:`MAX_KEY_LENGTH`, not visible ASCII, or holding a comma (the header
            sent twice, joined) (400).
    """
    if request.method not in METHODS:
        return None
    key = request.header(HEADER)
    if key is None:
        return None
    if not KEY_FORMAT.fullmatch(key):
        raise ValidationFailed.single(HEADER, f"expected one key of {KEY_RULE}, such as a "
                                      "UUID (a header sent twice arrives joined by a comma)")
    return key


def _fingerprint(request: ApiRequest) -> dict[str, Any]:
    """What must match for a repeat to be the same request: method, path, query, body.

    The body is compared as canonical JSON text (sorted members, no whitespace), so a
    repeat that only reorders members or spaces is the same request; a body that is not
    JSON, or nested too deep to parse (which the handler then refuses with 400), is
    compared as sent. Text, not the parsed value, reaches Powertools' hashing, so no
    nesting can make the hashing recurse too deep (a 500 before the handler could answer).
    """
    event = request.event
    text = event.get("body") or ""
    if event.get("isBase64Encoded"):
        with contextlib.suppress(binascii.Error, UnicodeDecodeError):  # else: as sent
            text = base64.b64decode(text, validate=True).decode()
    body: str | None = text if text.strip() else None
    if body is not None:
        with contextlib.suppress(ValueError, RecursionError):  # else: as sent
            body = json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"))
    return {"method": request.method, "path": event["rawPath"],
            "query": event["rawQueryString"], "body": body}


def _replayed(response: Any, idempotent_data: DataRecord) -> Any:
    """Powertools' response hook: mark a stored response as a replay."""
    return {**response, "headers": {**response.get("headers", {}), REPLAYED_HEADER: "true"}}


@cache
def _store(table: str, ttl_seconds: int) -> tuple[IdempotencyConfig, DynamoDBPersistenceLayer]:
    """Config and persistence layer, once per container (Powertools configures a
    persistence layer only once). Imported here: only writes with a key pay for it."""
    from aws_lambda_powertools.utilities.idempotency import (
        DynamoDBPersistenceLayer,
        IdempotencyConfig,
    )

    config = IdempotencyConfig(
        event_key_jmespath="[org_id, key]", payload_validation_jmespath="request",
        raise_on_no_idempotency_key=True, expires_after_seconds=ttl_seconds,
        hash_function="sha256", response_hook=_replayed)
    return config, DynamoDBPersistenceLayer(table_name=table, boto3_client=dynamodb_client())


def respond_once(request: ApiRequest, context: Any, respond: Callable[[], Rendered],
                 seal: Seal | None = None) -> Rendered:
    """``respond()``, or the response recorded for this request's ``Idempotency-Key``.

    Without a key (or on GET) it just calls ``respond()``. With ``seal``, a 2xx response
    is recorded sealed and unsealed on replay (the first caller gets it as it was).

    Raises:
        ValidationFailed: malformed ``Idempotency-Key`` (400).
        IdempotencyKeyReused: the key was used for another request (422).
        IdempotencyInProgress: the first request with the key is still running (409).
    """
    key = idempotency_key(request)
    if key is None:
        return respond()
    from aws_lambda_powertools.utilities.idempotency import idempotent_function
    from aws_lambda_powertools.utilities.idempotency.exceptions import (
        IdempotencyAlreadyInProgressError,
        IdempotencyValidationError,
    )

    config, persistence = _store(os.environ["IDEMPOTENCY_TABLE"],
                                 int(os.environ.get("IDEMPOTENCY_TTL_SECONDS", DAY_SECONDS)))
    if hasattr(context, "get_remaining_time_in_millis"):
        config.register_lambda_context(context)

    fresh: list[Rendered] = []  # the response as it is when this call ran the request

    @idempotent_function(data_keyword_argument="call", config=config,
                         persistence_store=persistence, key_prefix=_PREFIX)
    def run(call: dict[str, Any]) -> Rendered:
        response = respond()
        if response["statusCode"] >= 500 or response["statusCode"] in _NOT_KEPT or \
                _retryable(response):
            raise _NotKept(response)
        recorded = packed(seal.seal(response, request.org_id)
                          if seal is not None and response["statusCode"] < 300 else response)
        if recorded_size(recorded) > MAX_RECORDED_BYTES:
            raise _NotKept(response)
        fresh.append(response)
        return recorded

    try:
        result: Rendered = run(call={"org_id": request.org_id, "key": key,
                                     "request": _fingerprint(request)})
    except _NotKept as not_kept:
        return not_kept.response
    except IdempotencyValidationError as err:
        raise IdempotencyKeyReused() from err
    except IdempotencyAlreadyInProgressError as err:
        raise IdempotencyInProgress() from err
    if fresh:
        return fresh[0]
    result = unpacked(result)
    if seal is not None and result["statusCode"] < 300:
        return seal.unseal(result, request.org_id)
    return result
