"""API keys: ``ck_`` + 43 URL-safe random characters, stored only as SHA-256 hex (SPEC §4).

Each key also has a public id, ``key_`` + the first 16 hex digits of its hash, shown when
it is minted and by :func:`list_api_keys`, and used to revoke it (:func:`revoke_api_key`):
the id names a key without being able to authenticate. ``ApiKeys`` has two indexes for
this: ``org-index`` (``org_id``, ``created_at``) and ``key-id-index`` (``key_id``).
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from typing import Any

from contacts_core.dynamodb import deserialize, dynamodb_client, serialize
from contacts_core.ids import now

KEY_PREFIX = "ck_"
# An org id is the tenant prefix of every key the org writes (identity guards are
# ``<org_id>#<field>#<value>``, rate buckets, name guards): ``#`` or any other separator in
# it would let one org's keys spell another's ("acme#external_id" + "email#a@b.c" is
# "acme" + "external_id#email#a@b.c"), so it is letters, digits, ``_`` and ``-`` only.
ORG_ID_FORMAT = re.compile(r"[A-Za-z0-9_-]{1,64}")
KEY_ID_PREFIX = "key_"
ORG_INDEX = "org-index"
KEY_ID_INDEX = "key-id-index"


def hash_api_key(key: str) -> str:
    """SHA-256 hex digest of the full key string; the only form ever stored."""
    return hashlib.sha256(key.encode()).hexdigest()


def key_id_for(key_hash: str) -> str:
    """The public id of the key whose SHA-256 hex is ``key_hash`` (``key_`` + 16 hex)."""
    return KEY_ID_PREFIX + key_hash[:16]


def mint_api_key(org_id: str, name: str = "default", store: ApiKeyStore | None = None) -> str:
    """Create a key for ``org_id`` and return it — the only time it is visible.

    ``secrets.token_urlsafe(32)`` gives 43 characters (256 bits) after the ``ck_`` prefix.
    Its id is ``key_id_for(hash_api_key(key))``.

    Raises:
        ValueError: ``org_id`` is not 1–64 letters, digits, ``_`` or ``-``
            (:data:`ORG_ID_FORMAT`).
    """
    if not ORG_ID_FORMAT.fullmatch(org_id or ""):
        raise ValueError(f"org id {org_id!r} must be 1 to 64 letters, digits, '_' or '-'")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    key_hash = hash_api_key(key)
    (store or ApiKeyStore()).put({
        "key_hash": key_hash, "key_id": key_id_for(key_hash), "org_id": org_id, "name": name,
        "created_at": now(), "revoked": False,
    })
    return key


def list_api_keys(org_id: str, store: ApiKeyStore | None = None) -> list[dict[str, Any]]:
    """Every key of ``org_id``, oldest first: ``key_id``, ``name``, ``created_at``,
    ``revoked`` and ``revoked_at`` (never the hash)."""
    public = ("key_id", "name", "created_at", "revoked", "revoked_at")
    return [{k: record[k] for k in public if k in record}
            | {"key_id": record.get("key_id") or key_id_for(record["key_hash"])}
            for record in (store or ApiKeyStore()).for_org(org_id)]


def revoke_api_key(key_id: str, store: ApiKeyStore | None = None) -> dict[str, Any] | None:
    """Revoke the key with this public id; the authorizer refuses it from then on.

    Returns its public record (``revoked: True``), or None when no key has this id.
    Revoking twice keeps the first ``revoked_at``.
    """
    db = store or ApiKeyStore()
    key_hash = db.hash_of(key_id)
    if key_hash is None:
        return None
    record = db.revoke(key_hash)
    public = ("org_id", "name", "created_at", "revoked", "revoked_at")
    out: dict[str, Any] = {"key_id": key_id}
    out.update((k, record[k]) for k in public if k in record)
    return out


def org_for_authorization(header: str | None, store: ApiKeyStore | None = None) -> str | None:
    """The org of a ``Bearer ck_…`` header, or None when missing, malformed, unknown,
    revoked, or of an org id outside :data:`ORG_ID_FORMAT`."""
    if not header:
        return None
    scheme, _, key = header.strip().partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key.startswith(KEY_PREFIX) or len(key) < 35:
        return None
    record = (store or ApiKeyStore()).get(hash_api_key(key))
    if not record or record.get("revoked"):
        return None
    org_id = str(record["org_id"])
    # a key written by other means than mint_api_key with an org id that could spell
    # another org's keys (see ORG_ID_FORMAT) opens nothing
    return org_id if ORG_ID_FORMAT.fullmatch(org_id) else None


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

    def for_org(self, org_id: str) -> list[dict[str, Any]]:
        """Every record of ``org_id``, oldest first (``Query`` on ``org-index``, all pages)."""
        params: dict[str, Any] = {
            "TableName": self.table, "IndexName": ORG_INDEX,
            "KeyConditionExpression": "org_id = :org",
            "ExpressionAttributeValues": {":org": {"S": org_id}}}
        records: list[dict[str, Any]] = []
        while True:
            page = self.client.query(**params)
            records += [deserialize(item) for item in page.get("Items", [])]
            if "LastEvaluatedKey" not in page:
                return records
            params["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def hash_of(self, key_id: str) -> str | None:
        """The hash of the key with public id ``key_id``, or None (``key-id-index``).

        Keys minted before ids were stored have none in the index; for them the id's hex
        digits are looked up as a prefix of the hash (a ``Scan``: rare, and small tables).
        """
        if not key_id.startswith(KEY_ID_PREFIX) or len(key_id) != len(KEY_ID_PREFIX) + 16:
            return None
        page = self.client.query(
            TableName=self.table, IndexName=KEY_ID_INDEX,
            KeyConditionExpression="key_id = :id",
            ExpressionAttributeValues={":id": {"S": key_id}})
        if page.get("Items"):
            return str(page["Items"][0]["key_hash"]["S"])
        params: dict[str, Any] = {
            "TableName": self.table, "ProjectionExpression": "key_hash",
            "FilterExpression": "begins_with(key_hash, :prefix)",
            "ExpressionAttributeValues": {":prefix": {"S": key_id[len(KEY_ID_PREFIX):]}}}
        while True:
            scanned = self.client.scan(**params)
            if scanned.get("Items"):
                return str(scanned["Items"][0]["key_hash"]["S"])
            if "LastEvaluatedKey" not in scanned:
                return None
            params["ExclusiveStartKey"] = scanned["LastEvaluatedKey"]

    def revoke(self, key_hash: str) -> dict[str, Any]:
        """Mark ``key_hash`` revoked (``revoked_at`` set once); returns the new record."""
        response = self.client.update_item(
            TableName=self.table, Key={"key_hash": {"S": key_hash}},
            UpdateExpression="SET revoked = :yes, revoked_at = if_not_exists(revoked_at, :at)",
            ConditionExpression="attribute_exists(key_hash)",
            ExpressionAttributeValues={":yes": {"BOOL": True}, ":at": {"S": now()}},
            ReturnValues="ALL_NEW")
        return deserialize(response["Attributes"])
