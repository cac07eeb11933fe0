"""Deliver one webhook: sign it (Standard Webhooks), POST it, and say what happened.

* 2xx → delivered. 410 Gone → the endpoint is disabled and the delivery dropped.
* Anything else (status, no complete answer within 10 s, connection error, refused URL or
  address) →
  :class:`DeliveryFailed`; the caller postpones the message by the next delay of
  ``WEBHOOK_RETRY_DELAYS`` and dead-lettered after the last attempt.
* A disabled endpoint's deliveries already queued fail their attempts without a request:
  delivered if it is enabled again before their last attempt, else dead-lettered (I6:
  delivered or dead-lettered, never silently dropped). A deleted endpoint's are dropped.

Where it connects (SSRF, :mod:`contacts_core.webhooks.urls`): the URL is checked again, its
host is resolved once, every address is checked, and the POST goes to those checked
addresses (in resolver order, the next one only when a connection cannot be made) — urllib3
never resolves the name itself. TLS verifies the certificate for, and SNI and ``Host`` name,
the URL's host.

Headers (https://www.standardwebhooks.com): ``webhook-id`` (the event id, the same on every
retry), ``webhook-timestamp`` (Unix seconds of this attempt), ``webhook-signature``
(``v1,<base64 HMAC-SHA256 of id.timestamp.body>`` with the endpoint's ``whsec_`` key, kept
as KMS ciphertext and decrypted once per warm container, :mod:`contacts_core.keys`).
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import StrEnum

import urllib3
from standardwebhooks import Webhook

from contacts_core.ids import now
from contacts_core.keys import KeyUnavailable, decrypt_webhook_secret
from contacts_core.webhooks.models import Delivery, EndpointItem
from contacts_core.webhooks.store import EndpointStore
from contacts_core.webhooks.urls import Address, UnsafeTarget, WebhookTarget, parse_url, resolve

TIMEOUT_SECONDS = 10.0  # SPEC §6
DEFAULT_DELAYS = "60,300,900,1800,3600"
_http = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(total=TIMEOUT_SECONDS))


class Outcome(StrEnum):
    """What became of a delivery that did not fail."""

    DELIVERED = "delivered"
    DROPPED = "dropped"  # endpoint deleted
    DISABLED = "disabled"  # the endpoint answered 410 and is now disabled


class DeliveryFailed(Exception):
    """This attempt failed; the delivery is to be retried later (or dead-lettered)."""


def retry_delays() -> list[int]:
    """Seconds before each retry, from ``WEBHOOK_RETRY_DELAYS`` (template parameter)."""
    raw = os.environ.get("WEBHOOK_RETRY_DELAYS", DEFAULT_DELAYS)
    return [int(part) for part in raw.split(",") if part.strip()]


def delay_after(attempt: int) -> int | None:
    """Seconds to hide a delivery whose ``attempt``-th try (1-based) failed before the next
    one, or None when that was its last (one more than there are delays): dead-letter it."""
    delays = retry_delays()
    return delays[attempt - 1] if attempt <= len(delays) else None


def signing_secret(endpoint: EndpointItem) -> str:
    """The endpoint's ``whsec_`` secret: its KMS ciphertext decrypted (cached per warm
    container), or the clear ``secret`` of an item stored before secrets were encrypted.

    Raises:
        DeliveryFailed: KMS refused (retried later) or the item holds no secret.
    """
    if endpoint.secret_ciphertext:
        try:
            return decrypt_webhook_secret(endpoint.secret_ciphertext, endpoint.org_id,
                                          endpoint.endpoint_id)
        except KeyUnavailable as err:
            raise DeliveryFailed(str(err)) from err
    if endpoint.secret:
        return endpoint.secret
    raise DeliveryFailed("endpoint has no signing secret")


def signed_headers(endpoint: EndpointItem, delivery: Delivery, body: str,
                   at: datetime | None = None) -> dict[str, str]:
    """The Standard Webhooks headers for ``body`` sent to ``endpoint``.

    Raises:
        DeliveryFailed: the signing secret cannot be decrypted (see :func:`signing_secret`).
    """
    moment = at or datetime.now(UTC)
    signature = Webhook(signing_secret(endpoint)).sign(delivery.event.id, moment, body)
    return {"webhook-id": delivery.event.id,
            "webhook-timestamp": str(int(moment.timestamp())),
            "webhook-signature": signature,
            "content-type": "application/json",
            "user-agent": "contacts-api-webhooks/1"}


class _Expired(Exception):
    """The attempt's wall-clock deadline passed (raised by the ``SIGALRM`` handler)."""


@contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """Raise :class:`_Expired` in the block once ``seconds`` have passed, whatever it is
    blocked on: urllib3's timeouts bound each socket operation, so an endpoint that sends
    its status line, headers or body a byte at a time would otherwise hold an attempt (and
    the function, up to its own timeout) for as long as it likes. A real-time interval
    timer (``setitimer``), which only the main thread can take (as the Lambda runtime runs
    the handler); elsewhere (a test's or a poller's thread) only urllib3's apply.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum: int, frame: object) -> None:
        raise _Expired()

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _post(target: WebhookTarget, addresses: list[Address], body: bytes,
          headers: dict[str, str]) -> int:
    """POST to the first of ``addresses`` that accepts a connection (never to another);
    the response's status. At most :data:`TIMEOUT_SECONDS` in all (:func:`_deadline`); the
    response body is never read (only the status counts) and the connection is closed.

    Raises:
        DeliveryFailed: no connection, a timeout, or an HTTP error.
    """
    tls = {"server_hostname": target.host, "assert_hostname": target.host}
    try:
        with _deadline(TIMEOUT_SECONDS):
            for index, address in enumerate(addresses):
                pool = _http.connection_from_host(
                    str(address), target.port, target.scheme,
                    pool_kwargs=tls if target.scheme == "https" and target.address is None
                    else None)
                try:
                    response = pool.urlopen("POST", target.target, body=body, headers=headers,
                                            redirect=False, retries=False,
                                            preload_content=False)
                except urllib3.exceptions.ConnectTimeoutError as err:  # NewConnectionError too
                    if index + 1 == len(addresses):
                        raise DeliveryFailed(f"{type(err).__name__}: {err}") from err
                    continue
                except urllib3.exceptions.HTTPError as err:
                    raise DeliveryFailed(f"{type(err).__name__}: {err}") from err
                status = response.status
                response.close()  # unread body: the connection is not reused
                return status
    except _Expired as err:
        _http.clear()  # the connection the timer interrupted is not to be reused
        raise DeliveryFailed(f"no complete answer within {TIMEOUT_SECONDS:g} s") from err
    raise DeliveryFailed("no address to connect to")


def deliver(delivery: Delivery, store: EndpointStore | None = None) -> Outcome:
    """Make one delivery attempt.

    Raises:
        DeliveryFailed: non-2xx other than 410, timeout, connection error, unsafe address,
            endpoint disabled.
    """
    db = store or EndpointStore()
    endpoint = db.get(delivery.org_id, delivery.endpoint_id)
    if endpoint is None:
        return Outcome.DROPPED
    if not endpoint.enabled:  # kept on the retry schedule: re-enabled in time, or dead-lettered
        raise DeliveryFailed(f"endpoint disabled ({endpoint.disabled_reason or 'by its owner'})")
    try:
        target = parse_url(endpoint.url)
        addresses = resolve(target)
    except UnsafeTarget as err:
        raise DeliveryFailed(f"refused: {err}") from err
    body = delivery.event.model_dump_json()
    headers = signed_headers(endpoint, delivery, body) | {"host": target.host_header}
    status = _post(target, addresses, body.encode(), headers)
    if 200 <= status < 300:
        return Outcome.DELIVERED
    if status == 410:
        db.update(delivery.org_id, delivery.endpoint_id,
                  {"enabled": False, "disabled_reason": f"410 Gone at {now()}",
                   "updated_at": now()}, set())
        return Outcome.DISABLED
    raise DeliveryFailed(f"HTTP {status}")
