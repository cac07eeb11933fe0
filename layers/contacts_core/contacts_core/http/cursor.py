"""Opaque, signed pagination cursors.

A cursor is ``base64url(JSON) "." base64url(HMAC-SHA256)`` over the org, the query it
belongs to and the DynamoDB key to resume after, so a tampered cursor, or one minted for
another org or another query, is rejected with 400 instead of leaking or skipping data.
The query is bound by its SHA-256 (of its canonical JSON), so a cursor's length does not
grow with the query's: any query a listing accepts (50 tags, a long search) gets a cursor
the same listing accepts back. Cursors that carry the query itself (issued before this
binding) keep working.

Keys come from the cursor key ring in Secrets Manager (:func:`contacts_core.keys.cursor_keys`,
read on first use): new cursors are signed with its current key and checked against every
key of the ring, so cursors issued before a key rotation keep paging until the rotation
after next; a cursor signed with a key no longer in the ring answers 400 like a tampered one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from typing import Any

from contacts_core.errors import ValidationFailed
from contacts_core.keys import KeyRing, cursor_keys


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    """The bytes :func:`_b64` encoded as ``text``; only that spelling of them (RFC 4648 §3.5:
    a decoder may ignore padding, unused trailing bits and characters outside the
    alphabet, so ``c=``, a last character with other unused bits, or ``a!b`` would
    otherwise read as the same cursor).

    Raises:
        ValueError: ``text`` is not what :func:`_b64` makes of any bytes.
    """
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64(data) != text:
        raise ValueError("not canonical base64url")
    return data


def _sign(secret: bytes, payload: bytes) -> bytes:
    return hmac.new(secret, payload, hashlib.sha256).digest()


def _digest(query: dict[str, Any]) -> str:
    """SHA-256 of ``query``'s canonical JSON (sorted keys, no spaces), base64url."""
    canonical = json.dumps(query, separators=(",", ":"), sort_keys=True).encode()
    return _b64(hashlib.sha256(canonical).digest())


def encode_cursor(org_id: str, query: dict[str, Any], key: dict[str, str],
                  keys: KeyRing | None = None) -> str:
    """Sign ``key`` (where the next page starts) for ``org_id`` and this ``query`` with the
    current key of ``keys`` (default: the ring in Secrets Manager).

    Raises:
        contacts_core.keys.KeyUnavailable: the key ring cannot be read.
    """
    ring = keys or cursor_keys()
    payload = json.dumps({"o": org_id, "q": _digest(query), "k": key}, separators=(",", ":"),
                         sort_keys=True, ensure_ascii=False).encode()
    return f"{_b64(payload)}.{_b64(_sign(ring.signing, payload))}"


def decode_cursor(cursor: str, org_id: str, query: dict[str, Any],
                  keys: KeyRing | None = None) -> dict[str, str]:
    """The resume key inside ``cursor``, whose signature must match one key of ``keys``
    (default: the ring in Secrets Manager).

    Raises:
        ValidationFailed: on ``cursor`` when it is malformed, its signature matches no key
            of the ring, or it was issued for another org or other query parameters.
        contacts_core.keys.KeyUnavailable: the key ring cannot be read.
    """
    invalid = ValidationFailed.single(
        "cursor", "invalid cursor: pass next_cursor unchanged, with the same query parameters")
    try:
        body, signature = cursor.split(".", 1)
        payload, mac = _unb64(body), _unb64(signature)
        ring = keys or cursor_keys()
        if not any(hmac.compare_digest(mac, _sign(secret, payload))
                   for secret in ring.verifying):
            raise invalid
        decoded = json.loads(payload)
    except (ValueError, binascii.Error) as err:
        raise invalid from err
    if decoded.get("o") != org_id or decoded.get("q") not in (_digest(query), query):
        raise invalid
    key = decoded.get("k")
    if not isinstance(key, dict) or not all(isinstance(v, str) for v in key.values()):
        raise invalid
    return key
