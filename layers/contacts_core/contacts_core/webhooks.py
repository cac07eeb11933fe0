"""Webhook endpoint operations and the URL rules that keep deliveries off internal networks.

On AWS an endpoint URL must be ``https`` and its host must not be — or resolve to — a
private, loopback, link-local, reserved or multicast address (SSRF protection; checked at
registration and again before every delivery). The local stack sets
``ALLOW_LOOPBACK_WEBHOOKS=true`` so ``http://127.0.0.1:…`` receivers work on a laptop.
"""

from __future__ import annotations

import base64
import ipaddress
import os
import secrets
import socket
from urllib.parse import urlsplit

from ulid import ULID

from .errors import NotFound, ValidationFailed
from .ids import iso_timestamp, now
from .webhook_models import (
    EndpointCreate,
    EndpointItem,
    EndpointPage,
    EndpointPatch,
    WebhookEndpoint,
    WebhookEndpointCreated,
)
from .webhook_store import EndpointStore

ENDPOINT_PREFIX = "whe_"
SECRET_PREFIX = "whsec_"
MAX_ENDPOINTS = 20


class EndpointNotFound(NotFound):
    """No webhook endpoint with that id in the caller's org."""

    resource = "Webhook endpoint"


def allow_loopback() -> bool:
    """True in the local stack (``ALLOW_LOOPBACK_WEBHOOKS=true``), False on AWS."""
    return os.environ.get("ALLOW_LOOPBACK_WEBHOOKS", "false").lower() == "true"


def _forbidden(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return (address.is_private or address.is_loopback or address.is_link_local
            or address.is_reserved or address.is_multicast or address.is_unspecified)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(url: str, loopback_ok: bool | None = None) -> None:
    """Validate an endpoint URL for registration.

    Raises:
        ValidationFailed: on ``url`` — not absolute http(s); http anywhere but loopback in
            the local stack; loopback, private or link-local targets on AWS.
    """
    loopback_ok = allow_loopback() if loopback_ok is None else loopback_ok
    parts = urlsplit(url)
    host = parts.hostname
    if parts.scheme not in ("http", "https") or not host:
        raise ValidationFailed.single("url", "must be an absolute https:// URL")
    if parts.username or parts.password:
        raise ValidationFailed.single("url", "must not carry credentials")
    if loopback_ok and _is_loopback(host):
        return
    if parts.scheme != "https":
        raise ValidationFailed.single("url", "must use https")
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if host == "localhost" or (literal is not None and _forbidden(literal)):
        raise ValidationFailed.single(
            "url", "must not point at a private, loopback or link-local address")


def resolves_safely(host: str, loopback_ok: bool | None = None) -> bool:
    """True when every address ``host`` resolves to may be called (delivery-time check
    against DNS names that point inside the network)."""
    loopback_ok = allow_loopback() if loopback_ok is None else loopback_ok
    if loopback_ok and _is_loopback(host):
        return True
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return all(not _forbidden(ipaddress.ip_address(info[4][0])) for info in infos)


def new_secret() -> str:
    """``whsec_`` + base64 of 32 random bytes (the Standard Webhooks secret format)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def create_endpoint(org_id: str, body: EndpointCreate,
                    store: EndpointStore | None = None) -> WebhookEndpointCreated:
    """Register an endpoint; the answer is the only place its secret is ever shown.

    Raises:
        ValidationFailed: bad ``url``, or the org already has 20 endpoints.
    """
    db = store or EndpointStore()
    check_url(body.url)
    if len(db.all_for(org_id)) >= MAX_ENDPOINTS:
        raise ValidationFailed.single("url", f"at most {MAX_ENDPOINTS} endpoints per org")
    ulid = ULID()
    created = iso_timestamp(ulid.datetime)
    item = EndpointItem(org_id=org_id, endpoint_id=f"{ENDPOINT_PREFIX}{ulid}", url=body.url,
                        events=list(dict.fromkeys(body.events)), secret=new_secret(),
                        enabled=body.enabled, description=body.description,
                        created_at=created, updated_at=created)
    db.put(item)
    return WebhookEndpointCreated(**WebhookEndpoint.from_item(item).model_dump(),
                                  secret=item.secret)


def get_endpoint(org_id: str, endpoint_id: str,
                 store: EndpointStore | None = None) -> WebhookEndpoint:
    """One endpoint, without its secret. Raises EndpointNotFound."""
    item = (store or EndpointStore()).get(org_id, endpoint_id)
    if item is None:
        raise EndpointNotFound(endpoint_id)
    return WebhookEndpoint.from_item(item)


def list_endpoints(org_id: str, store: EndpointStore | None = None) -> EndpointPage:
    """Every endpoint of the org (at most 20), oldest first."""
    return EndpointPage(data=[WebhookEndpoint.from_item(i)
                              for i in (store or EndpointStore()).all_for(org_id)])


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
    item = (store or EndpointStore()).update(org_id, endpoint_id, values | {"updated_at": now()},
                                             clear)
    if item is None:
        raise EndpointNotFound(endpoint_id)
    return WebhookEndpoint.from_item(item)


def delete_endpoint(org_id: str, endpoint_id: str, store: EndpointStore | None = None) -> None:
    """Delete; queued deliveries to it are dropped. Raises EndpointNotFound."""
    if not (store or EndpointStore()).delete(org_id, endpoint_id):
        raise EndpointNotFound(endpoint_id)
