"""The local SQS event source mapping polls as Lambda's does (SPEC §6: "A dead endpoint
never delays other endpoints or other events"): several pollers take batches concurrently,
so an invocation that hangs (a delivery to an endpoint that accepts the connection and
never answers) holds up only its own message group, while a FIFO message group is never in
two invocations at once and keeps its order, retries included; and the function has a
worker for each poller, whatever the stack's workers per function (``--concurrency``). The
real poller and runner against a moto server run as the local stack runs it, with a
stand-in function (in the local stack's worker processes where workers matter)."""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from moto.sqs.models import Queue

from devstack.aws import local_client
from devstack.event_sources import (
    DEFAULT_SQS_CONCURRENCY,
    LOCAL_SQS_MAX_POLLERS,
    EventSourceRunner,
    Mapping,
    SqsPoller,
    function_concurrency,
    mappings,
)
from devstack.queues import queue_definitions
from devstack.routes import TEMPLATE
from devstack.stack import StackConfig, worker_limits
from devstack.tables import load_template
from devstack.workers import WorkerPool, WorkerSpec
from tests.support.sockets import SocketEndpoint

POLL_INTERVAL_S = 0.02


@pytest.fixture(scope="module")
def endpoint(separate_moto: str) -> str:
    """The module's own moto server."""
    return separate_moto


@pytest.fixture(scope="module")
def delivery_queue() -> dict[str, Any]:
    """The template's WebhookDeliveryQueue properties."""
    declared = queue_definitions(load_template(TEMPLATE))["WebhookDeliveryQueue"]
    assert declared["FifoQueue"] is True
    return declared


@pytest.fixture
def queue_url(endpoint: str, delivery_queue: dict[str, Any]) -> str:
    """A fresh queue shaped like the template's WebhookDeliveryQueue (FIFO, its visibility
    timeout), so no test sees another's messages."""
    return str(local_client("sqs", endpoint).create_queue(
        QueueName=f"deliveries-{uuid.uuid4().hex[:12]}.fifo",
        Attributes={"FifoQueue": "true",
                    "VisibilityTimeout": str(delivery_queue["VisibilityTimeout"])})["QueueUrl"])


@pytest.fixture(scope="module")
def deliveries() -> Mapping:
    """The template's mapping of the delivery queue to DeliverWebhooksFunction."""
    (mapping,) = [m for m in mappings(TEMPLATE) if m.source == "WebhookDeliveryQueue"]
    assert mapping.function_id == "DeliverWebhooksFunction" and mapping.batch_size == 1
    return mapping


class Function:
    """A stand-in function: records the message bodies of each invocation as it starts and
    as it ends, and every time a message group was in two invocations at once. An
    invocation holding a body of ``hold`` waits until :meth:`release`; ``script(records)``
    answers (default: every message done)."""

    def __init__(self, hold: tuple[str, ...] = (),
                 script: Callable[[list[dict[str, Any]]], dict[str, Any] | None] | None = None
                 ) -> None:
        self.started: list[str] = []
        self.finished: list[str] = []
        self.overlaps: list[str] = []  # groups found already in flight
        self.most_at_once = 0
        self.script = script or (lambda records: None)
        self._held = {body: threading.Event() for body in hold}
        self._groups: dict[str, int] = {}
        self._running = 0
        self._lock = threading.Lock()

    def invoke(self, function_id: str, event: dict[str, Any]) -> dict[str, Any] | None:
        assert function_id == "DeliverWebhooksFunction"
        records = event["Records"]
        bodies = [r["body"] for r in records]
        groups = {r["attributes"]["MessageGroupId"] for r in records}
        with self._lock:
            self.overlaps += [g for g in groups if self._groups.get(g)]
            for group in groups:
                self._groups[group] = self._groups.get(group, 0) + 1
            self.started += bodies
            self._running += 1
            self.most_at_once = max(self.most_at_once, self._running)
        try:
            for body in bodies:
                if body in self._held:
                    assert self._held[body].wait(30), f"{body} was never released"
            return self.script(records)
        finally:
            with self._lock:
                for group in groups:
                    self._groups[group] -= 1
                self._running -= 1
                self.finished += bodies

    def release(self, body: str) -> None:
        self._held[body].set()

    def release_all(self) -> None:
        for held in self._held.values():
            held.set()


@contextmanager
def polling(poller: SqsPoller, function: Function) -> Iterator[None]:
    """The poller run by the local stack's runner; on exit every held invocation is
    released before the runner stops."""
    runner = EventSourceRunner([poller], interval=POLL_INTERVAL_S).start()
    try:
        yield
    finally:
        function.release_all()
        runner.stop()


def eventually(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def send(queue_url: str, endpoint: str, group: str, *bodies: str) -> None:
    """Queue deliveries of one group (an endpoint and a contact), in this order."""
    sqs = local_client("sqs", endpoint)
    for body in bodies:
        sqs.send_message(QueueUrl=queue_url, MessageBody=body, MessageGroupId=group,
                         MessageDeduplicationId=body)


def in_queue(queue_url: str, endpoint: str) -> int:
    """Messages not deleted yet (visible or in flight)."""
    attributes = local_client("sqs", endpoint).get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])
    return sum(int(v) for v in attributes["Attributes"].values())


def test_a_delivery_that_hangs_does_not_hold_up_another_endpoints_delivery(
        endpoint, queue_url, deliveries):
    # Given the delivery mapping polled as the local stack polls it, and a function whose
    # delivery to endpoint A hangs (A accepts the connection and never answers)
    function = Function(hold=("to A",))
    poller = SqsPoller(deliveries, queue_url, endpoint, function.invoke)
    with polling(poller, function):
        # When a delivery to A is queued and taken, then one to B is queued
        send(queue_url, endpoint, "ep_a.con_1", "to A")
        eventually(lambda: function.started == ["to A"])
        send(queue_url, endpoint, "ep_b.con_1", "to B")
        # Then B's is delivered and deleted while A's still hangs
        eventually(lambda: "to B" in function.finished)
        eventually(lambda: in_queue(queue_url, endpoint) == 1)  # A's, in flight
        assert function.finished == ["to B"]
        # And A's is deleted once its invocation returns
        function.release("to A")
        eventually(lambda: in_queue(queue_url, endpoint) == 0)
    assert function.finished == ["to B", "to A"] and function.overlaps == []


def test_a_groups_next_message_waits_until_the_one_in_flight_is_done(
        endpoint, queue_url, deliveries):
    # Given the delivery mapping's pollers and a function that hangs on A's first delivery
    function = Function(hold=("A1",))
    poller = SqsPoller(deliveries, queue_url, endpoint, function.invoke)
    assert poller.concurrency > 1
    with polling(poller, function):
        # When two deliveries of one group (endpoint A, one contact) and one to B are queued
        send(queue_url, endpoint, "ep_a.con_1", "A1")
        eventually(lambda: function.started == ["A1"])
        send(queue_url, endpoint, "ep_a.con_1", "A2")
        send(queue_url, endpoint, "ep_b.con_1", "B1")
        # Then B1 is delivered meanwhile, but A2 is not taken while A1 is in flight
        eventually(lambda: "B1" in function.finished)
        time.sleep(25 * POLL_INTERVAL_S)  # every idle poller polls many times
        assert function.started == ["A1", "B1"]
        # When A1's invocation returns, then A2 follows it
        function.release("A1")
        eventually(lambda: in_queue(queue_url, endpoint) == 0)
    assert function.started == ["A1", "B1", "A2"]
    assert function.finished == ["B1", "A1", "A2"]
    assert function.overlaps == []


def test_a_group_stays_in_one_invocation_even_when_receives_are_served_at_once(
        endpoint, queue_url, deliveries, monkeypatch):
    # Given a moto server slow to find the groups in flight, so that two ReceiveMessage
    # requests served at once would both find a group free (moto checks without a lock)
    in_flight = Queue.pending_message_groups.fget
    assert in_flight is not None

    def slowly(queue: Queue) -> set[str]:
        found = in_flight(queue)
        time.sleep(0.05)
        return found

    monkeypatch.setattr(Queue, "pending_message_groups", property(slowly))
    # And the delivery mapping's pollers, with a function that takes a moment
    function = Function(script=lambda records: time.sleep(0.02))
    poller = SqsPoller(deliveries, queue_url, endpoint, function.invoke)
    # When six deliveries of one group are queued
    bodies = [f"A{i}" for i in range(6)]
    send(queue_url, endpoint, "ep_a.con_1", *bodies)
    with polling(poller, function):
        eventually(lambda: in_queue(queue_url, endpoint) == 0, timeout=20)
    # Then they were delivered one at a time, in order
    assert function.overlaps == [] and function.most_at_once == 1
    assert function.started == bodies


def test_under_load_each_group_is_delivered_one_at_a_time_in_order_retries_included(
        endpoint, queue_url, deliveries):
    # Given the delivery mapping's pollers and a function that takes a few milliseconds per
    # delivery and fails G1's third one once, postponing it by 1 s as deliver_webhooks does
    sqs = local_client("sqs", endpoint)
    groups = [f"ep_{n}.con_1" for n in range(4)]
    sent = {g: [f"G{n}-{i:02d}" for i in range(10)] for n, g in enumerate(groups)}
    failing = sent[groups[1]][2]
    failed_once: list[str] = []

    def deliver(records: list[dict[str, Any]]) -> dict[str, Any] | None:
        time.sleep(random.uniform(0.001, 0.01))
        (record,) = records
        if record["body"] == failing and not failed_once:
            failed_once.append(record["body"])
            sqs.change_message_visibility(QueueUrl=queue_url,
                                          ReceiptHandle=record["receiptHandle"],
                                          VisibilityTimeout=1)
            return {"batchItemFailures": [{"itemIdentifier": record["messageId"]}]}
        return None

    function = Function(script=deliver)
    poller = SqsPoller(deliveries, queue_url, endpoint, function.invoke)
    # When ten deliveries per group are queued, the groups interleaved
    for i in range(10):
        for group in groups:
            send(queue_url, endpoint, group, sent[group][i])
    with polling(poller, function):
        eventually(lambda: in_queue(queue_url, endpoint) == 0, timeout=20)
    # Then every group was in one invocation at a time, in the order it was sent, the failed
    # delivery retried before the next of its group; and groups were delivered concurrently
    assert function.overlaps == []
    for n, group in enumerate(groups):
        attempts = [b for b in function.started if b.startswith(f"G{n}-")]
        expected = sent[group][:3] + sent[group][2:] if n == 1 else sent[group]
        assert attempts == expected, group
    assert failed_once == [failing]
    assert function.most_at_once > 1


def test_pollers_follow_the_scaling_config_else_five(
        endpoint, queue_url, deliveries, tmp_path: Path):
    # Given a template whose SQS mapping sets ScalingConfig.MaximumConcurrency
    template = tmp_path / "template.yaml"
    template.write_text("""\
Resources:
  Jobs:
    Type: AWS::SQS::Queue
  Worker:
    Type: AWS::Serverless::Function
    Properties:
      Handler: app.handler
      Events:
        Jobs:
          Type: SQS
          Properties:
            Queue: !GetAtt Jobs.Arn
            BatchSize: 1
            ScalingConfig:
              MaximumConcurrency: 3
""")
    # When its mappings are read
    (scaled,) = mappings(template)
    # Then it has 3 pollers
    assert scaled.max_concurrency == 3
    assert SqsPoller(scaled, queue_url, endpoint, lambda f, e: None).concurrency == 3
    # And a mapping without it (the template's deliveries) has Lambda's first 5
    assert deliveries.max_concurrency is None and DEFAULT_SQS_CONCURRENCY == 5
    assert SqsPoller(deliveries, queue_url, endpoint, lambda f, e: None).concurrency == 5
    assert SqsPoller(replace(deliveries, max_concurrency=8), queue_url, endpoint,
                     lambda f, e: None).concurrency == 8
    # And MaximumConcurrency also caps the scale-out, which otherwise stops at the local cap
    assert scaled.max_pollers == 3
    assert deliveries.max_pollers == LOCAL_SQS_MAX_POLLERS > DEFAULT_SQS_CONCURRENCY


def test_a_function_gets_a_worker_per_poller_of_its_mappings_beyond_the_stacks_limit(
        tmp_path: Path):
    # Given a template with a function fed by two SQS mappings (one scaled to 3, one with
    # Lambda's default) and a stream, and another fed by a stream only
    template = tmp_path / "template.yaml"
    template.write_text("""\
Resources:
  Jobs:
    Type: AWS::SQS::Queue
  Retries:
    Type: AWS::SQS::Queue
  Things:
    Type: AWS::DynamoDB::Table
  Worker:
    Type: AWS::Serverless::Function
    Properties:
      Handler: app.handler
      Events:
        Jobs:
          Type: SQS
          Properties: {Queue: !GetAtt Jobs.Arn, ScalingConfig: {MaximumConcurrency: 3}}
        Retries:
          Type: SQS
          Properties: {Queue: !GetAtt Retries.Arn}
        Changes:
          Type: DynamoDB
          Properties: {Stream: !GetAtt Things.StreamArn, StartingPosition: LATEST}
  Emitter:
    Type: AWS::Serverless::Function
    Properties:
      Handler: app.handler
      Events:
        Changes:
          Type: DynamoDB
          Properties: {Stream: !GetAtt Things.StreamArn, StartingPosition: LATEST}
""")
    found = mappings(template)
    # When the stack's workers per function (--concurrency) are fewer than its invocations
    # Then the function may run as many as its event sources run at once (3 + 5 + 1), and
    # the stream-only function keeps the stack's limit
    assert function_concurrency(found) == {"Worker": 9, "Emitter": 1}
    assert worker_limits(found, 4) == {"Worker": 9}
    assert worker_limits(found, 9) == {}  # --concurrency is already enough
    assert worker_limits(found, 12) == {}  # and never lowered
    # And in the template, each function fed by SQS gets a worker per poller (the delivery
    # function: its 5), more than the stack's default workers
    ours = mappings(TEMPLATE)
    limits = worker_limits(ours, StackConfig().max_concurrency)
    assert set(limits) == {m.function_id for m in ours if m.kind == "SQS"}
    assert limits["DeliverWebhooksFunction"] == DEFAULT_SQS_CONCURRENCY


DELIVER = """\
import json
import socket
from urllib.parse import urlsplit


def handler(event, context):
    for record in event["Records"]:
        url = urlsplit(json.loads(record["body"])["url"])
        with socket.create_connection((url.hostname, url.port), timeout=30) as connection:
            connection.sendall(b"POST / HTTP/1.1\\r\\nHost: x\\r\\nContent-Length: 0\\r\\n\\r\\n")
            try:
                connection.recv(1024)  # the response's first bytes, or the close
            except ConnectionResetError:
                pass  # closed before reading the request
"""


def test_deliveries_to_a_dead_endpoint_beyond_every_poller_hold_up_no_other(
        endpoint, queue_url, deliveries, tmp_path: Path):
    # Given the delivery mapping polled as the local stack polls it, its function run in
    # worker processes with the stack's default limit (--concurrency 4) and the limits the
    # stack sets from template.yaml's mappings, raised by one for each poller the runner
    # adds (as the stack does); the function POSTs to each record's URL
    code = tmp_path / "deliver"
    code.mkdir()
    (code / "app.py").write_text(DELIVER)
    spec = WorkerSpec(function_name=deliveries.function_id, handler="app.handler",
                      sys_path=(str(code),), env={"PATH": "/usr/bin:/bin"}, timeout_s=30.0)
    default = StackConfig().max_concurrency
    assert default == 4 < deliveries.concurrency == DEFAULT_SQS_CONCURRENCY
    pool = WorkerPool(lambda line: None, default, worker_limits(mappings(TEMPLATE), default))
    running, most_at_once, lock = 0, 0, threading.Lock()

    def invoke(function_id: str, event: dict[str, Any]) -> dict[str, Any] | None:
        nonlocal running, most_at_once
        worker = pool.acquire(spec)
        with lock:
            running += 1
            most_at_once = max(most_at_once, running)
        try:
            response = worker.call(json.dumps(event), str(uuid.uuid4()))
            assert response["ok"], response
            return None
        finally:
            with lock:
                running -= 1
            pool.release(worker)

    def grow(function_id: str) -> None:
        pool.set_limit(function_id, pool.limit(function_id) + 1)

    dead, healthy = SocketEndpoint(silent=True), SocketEndpoint(silent=False)
    poller = SqsPoller(deliveries, queue_url, endpoint, invoke)
    runner = EventSourceRunner([poller], interval=POLL_INTERVAL_S, grow=grow).start()
    try:
        # When a delivery to a dead endpoint (one per contact) holds every first poller
        for n in range(DEFAULT_SQS_CONCURRENCY):
            send(queue_url, endpoint, f"ep_dead.con_{n}", json.dumps({"url": dead.url, "n": n}))
        eventually(lambda: len(dead.accepted) == DEFAULT_SQS_CONCURRENCY, timeout=20)
        # Then a delivery to a healthy endpoint queued next is still delivered meanwhile:
        # the mapping scaled out, as Lambda's does
        send(queue_url, endpoint, "ep_ok.con_0", json.dumps({"url": healthy.url}))
        eventually(lambda: len(healthy.accepted) == 1, timeout=20)
        eventually(lambda: in_queue(queue_url, endpoint) == DEFAULT_SQS_CONCURRENCY)
        # And so are three more to the dead endpoint: each gets a poller and a worker
        for n in range(3):
            send(queue_url, endpoint, f"ep_dead.con_x{n}", json.dumps({"url": dead.url, "x": n}))
        eventually(lambda: len(dead.accepted) == DEFAULT_SQS_CONCURRENCY + 3, timeout=20)
        assert most_at_once == DEFAULT_SQS_CONCURRENCY + 3
        assert poller.pollers <= deliveries.max_pollers
        assert len(pool.pids()) == most_at_once <= pool.limit(deliveries.function_id)
        # When the dead endpoint finally closes its connections, every delivery is done
        dead.close()
        eventually(lambda: in_queue(queue_url, endpoint) == 0, timeout=20)
    finally:
        dead.close()
        healthy.close()
        runner.request_stop()
        pool.close()
        runner.stop()


def test_short_invocations_never_scale_a_mapping_out(endpoint, queue_url, deliveries):
    # Given the delivery mapping and a function that answers at once
    grown: list[str] = []
    poller = SqsPoller(deliveries, queue_url, endpoint, lambda f, e: None)
    runner = EventSourceRunner([poller], interval=POLL_INTERVAL_S, grow=grown.append).start()
    try:
        # When a burst of deliveries of many groups comes
        for n in range(60):
            send(queue_url, endpoint, f"ep_ok.con_{n}", json.dumps({"n": n}))
        eventually(lambda: in_queue(queue_url, endpoint) == 0, timeout=30)
        # Then it was handled by the first pollers alone
        assert grown == [] and poller.pollers == DEFAULT_SQS_CONCURRENCY
    finally:
        runner.stop()
