"""Opaque, signed pagination cursors.

A cursor is ``base64url(JSON) "." base64url(HMAC-SHA256)`` over the org, the query it
belongs to and the DynamoDB key to resume after. The key is ``CURSOR_SECRET`` (a template
parameter), so a tampered cursor, or one minted for another org or another query, is
rejected with 400 instead of leaking or skipping data.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
from typing import Any

from contacts_core.errors import ValidationFailed


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(payload: bytes) -> bytes:
    secret = os.environ["CURSOR_SECRET"].encode()
    return hmac.new(secret, payload, hashlib.sha256).digest()


def encode_cursor(org_id: str, query: dict[str, Any], key: dict[str, str]) -> str:
    """Sign ``key`` (where the next page starts) for ``org_id`` and this ``query``."""
    payload = json.dumps({"o": org_id, "q": query, "k": key}, separators=(",", ":"),
                         sort_keys=True).encode()
    return f"{_b64(payload)}.{_b64(_sign(payload))}"


def decode_cursor(cursor: str, org_id: str, query: dict[str, Any]) -> dict[str, str]:
    """The resume key inside ``cursor``.

    Raises:
        ValidationFailed: on ``cursor`` when it is malformed, its signature does not
            match, or it was issued for another org or other query parameters.
    """
    invalid = ValidationFailed.single(
        "cursor", "invalid cursor: pass next_cursor unchanged, with the same query parameters")
    try:
        body, signature = cursor.split(".", 1)
        payload = _unb64(body)
        if not hmac.compare_digest(_unb64(signature), _sign(payload)):
            raise invalid
        decoded = json.loads(payload)
    except (ValueError, binascii.Error) as err:
        raise invalid from err
    if decoded.get("o") != org_id or decoded.get("q") != query:
        raise invalid
    key = decoded.get("k")
    if not isinstance(key, dict) or not all(isinstance(v, str) for v in key.values()):
        raise invalid
    return key
