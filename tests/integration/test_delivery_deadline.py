"""A delivery attempt takes at most its timeout in all (SPEC §6: 10 s), however slowly the
endpoint answers, and never reads the response body: only the status counts.

The endpoint is a raw socket server on 127.0.0.1 that answers a byte at a time; the
attempt's timeout is cut to 1 s here (urllib3's per-read timeout stays 10 s, so only the
attempt's own deadline can stop it).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from contacts_core.webhooks import delivery as delivery_module
from contacts_core.webhooks.delivery import DeliveryFailed, Outcome, deliver
from contacts_core.webhooks.models import Delivery, EventData, WebhookEvent

HEADERS = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n"


class SlowEndpoint:
    """Accepts connections; each answer is written by ``answer(connection)``."""

    def __init__(self, answer: Callable[[socket.socket, threading.Event], None]) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.answer, self.stopped = answer, threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.server.settimeout(0.2)
        while not self.stopped.is_set():
            try:
                connection, _ = self.server.accept()
            except TimeoutError:
                continue
            with connection:
                connection.recv(65536)  # the request (small)
                with contextlib.suppress(OSError):  # the client gave up
                    self.answer(connection, self.stopped)

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join()
        self.server.close()


def drip(data: bytes):
    def answer(connection: socket.socket, stopped: threading.Event) -> None:
        for n in range(len(data)):
            if stopped.wait(0.2):
                return
            connection.sendall(data[n:n + 1])
    return answer


def slow_body(connection: socket.socket, stopped: threading.Event) -> None:
    connection.sendall(HEADERS % 40)
    drip(b"y" * 40)(connection, stopped)


def flood(connection: socket.socket, stopped: threading.Event) -> None:
    size = 200 * 1024 * 1024
    connection.sendall(HEADERS % size)
    chunk = b"x" * 65536
    for _ in range(size // len(chunk)):
        if stopped.is_set():
            return
        connection.sendall(chunk)


@pytest.fixture
def endpoint_for(api, org_id, monkeypatch) -> Iterator:
    """``endpoint_for(answer)`` → a Delivery to a SlowEndpoint answering that way."""
    monkeypatch.setenv("ALLOW_LOOPBACK_WEBHOOKS", "true")
    monkeypatch.setattr(delivery_module, "TIMEOUT_SECONDS", 1.0)
    servers: list[SlowEndpoint] = []

    def make(answer) -> Delivery:
        server = SlowEndpoint(answer)
        servers.append(server)
        hook = api.request("POST", "/v1/webhook-endpoints", org_id=org_id, json_body={
            "url": f"http://127.0.0.1:{server.port}/", "events": ["*"]})
        assert hook.status == 201, hook.body
        event = WebhookEvent(id="evt_deadline_1", type="contact.created",
                             created_at="2026-05-22T10:30:00.000Z", organization_id=org_id,
                             data=EventData(object={"id": "con_1"}))
        return Delivery(org_id=org_id, endpoint_id=hook.body["id"], event=event)

    yield make
    for server in servers:
        server.stop()


def test_an_endpoint_answering_a_byte_at_a_time_fails_the_attempt_at_its_deadline(
        endpoint_for):
    # Given an endpoint that sends its status line and headers a byte every 0.2 s (~8 s)
    delivery = endpoint_for(drip(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
    # When the event is delivered (timeout 1 s)
    started = time.monotonic()
    with pytest.raises(DeliveryFailed, match="no complete answer within 1 s"):
        deliver(delivery)
    # Then the attempt failed (to be retried) at its deadline, not when the answer ended
    assert time.monotonic() - started < 2.5


@pytest.mark.parametrize("answer", [slow_body, flood],
                         ids=["body a byte at a time", "200 MB body"])
def test_a_2xx_is_delivered_on_its_status_without_reading_the_body(endpoint_for, answer):
    # Given an endpoint answering 200 at once, then a body sent slowly or a huge one
    delivery = endpoint_for(answer)
    # When the event is delivered, Then it is delivered at once: the body is never read
    started = time.monotonic()
    assert deliver(delivery) is Outcome.DELIVERED
    assert time.monotonic() - started < 2.5
