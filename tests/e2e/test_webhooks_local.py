"""Webhooks through the real local stack (``python -m devstack``), over HTTP.

A receiver on 127.0.0.1 is registered with the API like any endpoint; contact changes
travel DynamoDB Local streams -> EmitWebhooksFunction -> SQS (moto) ->
DeliverWebhooksFunction -> signed POSTs, all driven by the template's event source
mappings inside the stack. Signatures are checked with the ``standardwebhooks``
reference library (SPEC §6, §8).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator

import pytest

from devstack.event_sources import DEFAULT_SQS_CONCURRENCY
from devstack.receiver import Received, Respond, WebhookReceiver, verify
from tests.support.sockets import SocketEndpoint

pytestmark = pytest.mark.e2e

WAIT_S = 30.0


class TimedReceiver(WebhookReceiver):
    """A :class:`WebhookReceiver` that also notes when each request arrived."""

    def __init__(self, respond: Respond | None = None) -> None:
        self.arrived: list[float] = []
        self._times = threading.Lock()
        super().__init__(port=0, respond=respond, on_request=self._note)

    def _note(self, _record: Received) -> None:
        with self._times:
            self.arrived.append(time.monotonic())

    def wait_for(self, until: Callable[[list[Received]], bool],
                 timeout: float = WAIT_S) -> list[Received]:
        """The requests received so far, once ``until(requests)`` holds (fails on timeout)."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                received = list(self.received)
            if until(received):
                return received
            if time.monotonic() > deadline:
                pytest.fail(f"receiver got {len(received)} request(s) in {timeout:.0f} s: "
                            f"{[(r.status, r.headers.get('webhook-id')) for r in received]}")
            time.sleep(0.1)


@pytest.fixture
def org(stack):
    """A client for a fresh org (its own endpoints and contacts)."""
    return stack.client(stack.mint_key(f"org_{uuid.uuid4().hex[:10]}"))


def start_receiver(respond: Respond | None = None) -> Iterator[TimedReceiver]:
    receiver = TimedReceiver(respond).start()
    try:
        yield receiver
    finally:
        receiver.stop()


@pytest.fixture
def receiver() -> Iterator[TimedReceiver]:
    """A receiver on a free 127.0.0.1 port that answers 200."""
    yield from start_receiver()


@pytest.fixture
def flaky_receiver() -> Iterator[TimedReceiver]:
    """A receiver that answers 500 to its first request and 200 afterwards."""
    yield from start_receiver(lambda path, event, nth: 500 if nth == 0 else 200)


@pytest.fixture
def silent_endpoint() -> Iterator[SocketEndpoint]:
    endpoint = SocketEndpoint(silent=True)
    try:
        yield endpoint
    finally:
        endpoint.close()


def settle(org, receiver: TimedReceiver, secret: str, count: int) -> None:
    """Wait until nothing more is on its way for the first ``count`` deliveries, without
    guessing a delay: a marker contact is created after them, and once its
    ``contact.created`` has arrived every earlier stream record has been emitted (one
    ordered stream) and delivered or retried; then exactly ``count`` + 1 requests came."""
    marker = org.post("/v1/contacts", json={"email": f"marker-{uuid.uuid4().hex[:8]}@example.com"})
    assert marker.status_code == 201, marker.text
    marker_id = marker.json()["id"]

    def marker_arrived(got: list[Received]) -> bool:
        return any(r.status == 200 and verify(r, secret)["data"]["object"].get("id") == marker_id
                   for r in got)

    received = receiver.wait_for(marker_arrived)
    assert len(received) == count + 1, [r.headers.get("webhook-id") for r in received]


def register(org, receiver: WebhookReceiver, events: list[str]) -> dict:
    """Register ``receiver`` as an endpoint of ``org``; returns the create response."""
    response = org.post("/v1/webhook-endpoints", json={"url": receiver.url + "/",
                                                       "events": events})
    assert response.status_code == 201, response.text
    endpoint = response.json()
    assert endpoint["secret"].startswith("whsec_")
    return endpoint


def test_contact_changes_are_delivered_signed_in_order(stack, org, receiver):
    # Given the receiver registered for every event
    endpoint = register(org, receiver, ["*"])
    # When a contact is created, updated and deleted over HTTP
    created = org.post("/v1/contacts", json={"email": "sam@example.com", "first_name": "Sam"})
    assert created.status_code == 201, created.text
    contact_id = created.json()["id"]
    updated = org.patch(f"/v1/contacts/{contact_id}", json={"first_name": "Samuel"})
    assert updated.status_code == 200, updated.text
    assert org.delete(f"/v1/contacts/{contact_id}").status_code == 204
    # Then three signed webhooks arrive, in commit order
    received = receiver.wait_for(lambda got: len(got) >= 3)
    events = [verify(r, endpoint["secret"]) for r in received]
    assert [e["type"] for e in events] == ["contact.created", "contact.updated",
                                           "contact.deleted"]
    assert [r.headers["webhook-id"] for r in received] == [e["id"] for e in events]
    assert all(e["id"].startswith("evt_") for e in events)
    assert len({e["id"] for e in events}) == 3
    assert {e["data"]["object"]["id"] for e in events} == {contact_id}
    assert len({e["organization_id"] for e in events}) == 1
    # the display name followed first_name (SPEC §9.3)
    assert events[1]["data"]["previous_attributes"] == {"first_name": "Sam", "name": "Sam"}
    assert all(r.status == 200 and r.path == "/" for r in received)
    settle(org, receiver, endpoint["secret"], 3)  # no duplicates, no extra events


def test_failed_delivery_is_retried_with_the_same_webhook_id(stack, org, flaky_receiver):
    # Given an endpoint that fails its first request
    endpoint = register(org, flaky_receiver, ["contact.created"])
    # When a contact is created
    created = org.post("/v1/contacts", json={"email": "priya@example.com", "name": "Priya"})
    assert created.status_code == 201, created.text
    # Then the delivery comes back after the first local retry delay and succeeds
    first_delay = stack.webhook_retry_delays[0]
    received = flaky_receiver.wait_for(lambda got: any(r.status == 200 for r in got),
                                       timeout=WAIT_S + first_delay)
    first, second = received[:2]
    assert (first.status, second.status) == (500, 200)
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == first.event["id"]
    assert first.body == second.body
    assert verify(first, endpoint["secret"]) == verify(second, endpoint["secret"])
    assert verify(second, endpoint["secret"])["data"]["object"]["id"] == created.json()["id"]
    gap = flaky_receiver.arrived[1] - flaky_receiver.arrived[0]
    assert first_delay - 0.5 <= gap < WAIT_S, gap
    settle(org, flaky_receiver, endpoint["secret"], 2)  # a delivered webhook is not sent again


def test_an_endpoint_that_never_answers_does_not_delay_another_endpoint(
        stack, org, receiver, silent_endpoint):
    # Given an endpoint that accepts connections and never answers, and a receiver, both
    # registered for contact.created
    dead = org.post("/v1/webhook-endpoints", json={"url": silent_endpoint.url,
                                                   "events": ["contact.created"]})
    assert dead.status_code == 201, dead.text
    try:
        endpoint = register(org, receiver, ["contact.created"])
        # When more contacts are created than the delivery mapping has pollers at first
        # (each contact's delivery to the dead endpoint is a message group of its own)
        ids = []
        for n in range(DEFAULT_SQS_CONCURRENCY + 3):
            created = org.post("/v1/contacts", json={"email": f"c{n}@example.com"})
            assert created.status_code == 201, created.text
            ids.append(created.json()["id"])
        # Then the receiver gets every event while the dead endpoint's deliveries still
        # wait for their 10 s timeout (SPEC §6: a dead endpoint never delays the others):
        # the mapping scales out as Lambda's does
        received = receiver.wait_for(lambda got: len(got) >= len(ids))
        assert sorted(verify(r, endpoint["secret"])["data"]["object"]["id"]
                      for r in received) == sorted(ids)
        assert silent_endpoint.accepted, "the dead endpoint was never called"
        assert max(receiver.arrived) < min(silent_endpoint.accepted) + 10, (
            receiver.arrived, silent_endpoint.accepted)
    finally:  # its retries are dropped, not left to the next tests' pollers
        assert org.delete(f"/v1/webhook-endpoints/{dead.json()['id']}").status_code == 204
