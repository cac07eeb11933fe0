"""Webhook endpoint operations (SPEC §5 webhook endpoints).

Endpoint URLs follow :mod:`contacts_core.webhooks.urls` (SSRF protection): checked here at
registration and on every change, and again at delivery after the one DNS lookup.
"""

from __future__ import annotations

import base64
import json
import secrets
from typing import Any

from ulid import ULID

from contacts_core.errors import NotFound, ValidationFailed
from contacts_core.http.cursor import decode_cursor, encode_cursor
from contacts_core.http.paging import PageQuery
from contacts_core.ids import is_resource_id, iso_timestamp, now
from contacts_core.keys import decrypt_webhook_secret, encrypt_webhook_secret
from contacts_core.webhooks.models import (
    EndpointCreate,
    EndpointItem,
    EndpointPage,
    EndpointPatch,
    WebhookEndpoint,
    WebhookEndpointCreated,
)
from contacts_core.webhooks.store import EndpointStore
from contacts_core.webhooks.urls import UnsafeTarget, parse_url

ENDPOINT_PREFIX = "whe_"
SECRET_PREFIX = "whsec_"
MAX_ENDPOINTS = 20


class EndpointNotFound(NotFound):
    """No webhook endpoint with that id in the caller's org."""

    resource = "Webhook endpoint"


def check_url(url: str, loopback_ok: bool | None = None) -> None:
    """Validate an endpoint URL for registration (rules: :mod:`contacts_core.webhooks.urls`).

    Raises:
        ValidationFailed: on ``url`` — not printable ASCII without whitespace, not https
            (http only to loopback in the local stack), credentials, ``localhost``, an
            address in a non-canonical notation or one that is not globally routable.
    """
    try:
        parse_url(url, loopback_ok)
    except UnsafeTarget as err:
        raise ValidationFailed.single("url", str(err)) from err


def new_secret() -> str:
    """``whsec_`` + base64 of 32 random bytes (the Standard Webhooks secret format)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _full() -> ValidationFailed:
    return ValidationFailed.single("url", f"at most {MAX_ENDPOINTS} endpoints per org")


def create_endpoint(org_id: str, body: EndpointCreate,
                    store: EndpointStore | None = None) -> WebhookEndpointCreated:
    """Register an endpoint; the answer is the only place its secret is ever shown. The
    stored item holds the secret only as KMS ciphertext (``WEBHOOK_SECRETS_KEY``, context
    ``{org_id, endpoint_id}``).

    The limit of :data:`MAX_ENDPOINTS` holds under concurrent creates: the endpoint is
    stored, then the org's endpoints are counted (a consistent read); a create that finds
    more than the limit deletes its own endpoint and is refused. Of creates racing for the
    last places none can stay over the limit — the last one to count sees every endpoint
    stored before it — though two racing for one place may both be refused.

    Raises:
        ValidationFailed: bad ``url``, or the org already has 20 endpoints (400).
        contacts_core.keys.KeyUnavailable: KMS refused to encrypt (nothing is stored).
    """
    db = store or EndpointStore()
    check_url(body.url)
    if db.count(org_id, MAX_ENDPOINTS) >= MAX_ENDPOINTS:
        raise _full()
    ulid = ULID()
    created = iso_timestamp(ulid.datetime)
    endpoint_id, secret = f"{ENDPOINT_PREFIX}{ulid}", new_secret()
    item = EndpointItem(org_id=org_id, endpoint_id=endpoint_id, url=body.url,
                        events=body.events,
                        secret_ciphertext=encrypt_webhook_secret(secret, org_id, endpoint_id),
                        enabled=body.enabled, description=body.description,
                        created_at=created, updated_at=created)
    db.put(item)
    if db.count(org_id, MAX_ENDPOINTS + 1) > MAX_ENDPOINTS:
        db.delete(org_id, endpoint_id)
        raise _full()
    return WebhookEndpointCreated(**WebhookEndpoint.from_item(item).model_dump(), secret=secret)


def get_endpoint(org_id: str, endpoint_id: str,
                 store: EndpointStore | None = None) -> WebhookEndpoint:
    """One endpoint, without its secret. Raises EndpointNotFound."""
    known = is_resource_id(endpoint_id, ENDPOINT_PREFIX)
    item = (store or EndpointStore()).get(org_id, endpoint_id) if known else None
    if item is None:
        raise EndpointNotFound(endpoint_id)
    return WebhookEndpoint.from_item(item)


def list_endpoints(org_id: str, query: PageQuery,
                   store: EndpointStore | None = None) -> EndpointPage:
    """One page of the org's endpoints (it has at most 20), oldest first (SPEC §4
    pagination: ``limit`` 1–100, default 20, and a signed ``cursor``).

    Raises:
        ValidationFailed: ``cursor`` is not one this list signed for this org.
    """
    signed = {"list": "webhook-endpoints"}
    start = decode_cursor(query.cursor, org_id, signed) if query.cursor else None
    items, last = (store or EndpointStore()).page(org_id, query.limit, start)
    return EndpointPage(data=[WebhookEndpoint.from_item(i) for i in items],
                        next_cursor=encode_cursor(org_id, signed, last) if last else None)


def update_endpoint(org_id: str, endpoint_id: str, body: EndpointPatch,
                    store: EndpointStore | None = None) -> WebhookEndpoint:
    """Change url, events, description or enabled. Raises ValidationFailed, EndpointNotFound."""
    given = body.model_fields_set
    if not given:
        raise ValidationFailed.single("body", "No valid fields to update")
    if body.url is not None:
        check_url(body.url)
    values = {k: getattr(body, k) for k in given if getattr(body, k) is not None}
    clear = {k for k in given if getattr(body, k) is None}
    if body.enabled:
        clear.add("disabled_reason")
    if not is_resource_id(endpoint_id, ENDPOINT_PREFIX):
        raise EndpointNotFound(endpoint_id)
    item = (store or EndpointStore()).update(org_id, endpoint_id, values | {"updated_at": now()},
                                             clear)
    if item is None:
        raise EndpointNotFound(endpoint_id)
    return WebhookEndpoint.from_item(item)


def delete_endpoint(org_id: str, endpoint_id: str, store: EndpointStore | None = None) -> None:
    """Delete; queued deliveries to it are dropped. Raises EndpointNotFound."""
    if (not is_resource_id(endpoint_id, ENDPOINT_PREFIX)
            or not (store or EndpointStore()).delete(org_id, endpoint_id)):
        raise EndpointNotFound(endpoint_id)


def _with_body(response: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    return {**response, "body": json.dumps(body)}


def seal_created_secret(response: dict[str, Any], org_id: str) -> dict[str, Any]:
    """The creation answer as an ``Idempotency-Key`` record keeps it: ``secret`` replaced
    by ``secret_ciphertext`` (KMS, the endpoint's encryption context), never in clear."""
    body = json.loads(response["body"])
    secret = body.pop("secret")
    body["secret_ciphertext"] = encrypt_webhook_secret(secret, org_id, body["id"])
    return _with_body(response, body)


def unseal_created_secret(recorded: dict[str, Any], org_id: str) -> dict[str, Any]:
    """The recorded creation answer with its ``secret`` decrypted again (a replay).

    Raises:
        KeyUnavailable: KMS refused to decrypt (answered 500; the key stays recorded).
    """
    body = json.loads(recorded["body"])
    ciphertext = body.pop("secret_ciphertext")
    body["secret"] = decrypt_webhook_secret(ciphertext, org_id, body["id"])
    return _with_body(recorded, body)
