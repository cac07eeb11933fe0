"""API keys: ``ck_`` + 43 URL-safe random characters, stored only as SHA-256 hex (SPEC §4)."""

from __future__ import annotations

import hashlib
import os
import secrets
from typing import Any

from contacts_core.dynamodb import deserialize, dynamodb_client, serialize
from contacts_core.ids import now

KEY_PREFIX = "ck_"


def hash_api_key(key: str) -> str:
    """SHA-256 hex digest of the full key string; the only form ever stored."""
    return hashlib.sha256(key.encode()).hexdigest()


def mint_api_key(org_id: str, name: str = "default", store: ApiKeyStore | None = None) -> str:
    """Create a key for ``org_id`` and return it — the only time it is visible.

    ``secrets.token_urlsafe(32)`` gives 43 characters (256 bits) after the ``ck_`` prefix.
    """
    if not org_id:
        raise ValueError("org_id is required")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    (store or ApiKeyStore()).put({
        "key_hash": hash_api_key(key), "org_id": org_id, "name": name,
        "created_at": now(), "revoked": False,
    })
    return key


def org_for_authorization(header: str | None, store: ApiKeyStore | None = None) -> str | None:
    """The org of a ``Bearer ck_…`` header, or None when missing, malformed, unknown or revoked."""
    if not header:
        return None
    scheme, _, key = header.strip().partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key.startswith(KEY_PREFIX) or len(key) < 35:
        return None
    record = (store or ApiKeyStore()).get(hash_api_key(key))
    if not record or record.get("revoked"):
        return None
    return str(record["org_id"])


class ApiKeyStore:
    """API keys by SHA-256 hash (``ApiKeys`` table, PK ``key_hash``)."""

    def __init__(self, client: Any | None = None, table: str | None = None) -> None:
        self.client = client or dynamodb_client()
        self.table = table or os.environ["API_KEYS_TABLE"]

    def put(self, record: dict[str, Any]) -> None:
        """Store a new key record; refuses to overwrite an existing hash."""
        self.client.put_item(TableName=self.table, Item=serialize(record),
                             ConditionExpression="attribute_not_exists(key_hash)")

    def get(self, key_hash: str) -> dict[str, Any] | None:
        """The record for ``key_hash`` or None (one ``GetItem``)."""
        response = self.client.get_item(TableName=self.table, Key={"key_hash": {"S": key_hash}})
        raw = response.get("Item")
        return deserialize(raw) if raw else None
