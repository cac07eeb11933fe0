"""Local event sources: DynamoDB Streams and SQS pollers with Lambda's event source
mapping semantics, and S3 bucket notifications with Lambda's asynchronous invocation.

The mappings are read from template.yaml (``Events`` of ``Type: DynamoDB`` / ``SQS``):
batch size, starting position, filter criteria, ``ReportBatchItemFailures``,
``BisectBatchOnFunctionError``, ``MaximumRetryAttempts``, ``MaximumRecordAgeInSeconds``
and the on-failure destination; and ``Type: S3`` events: the bucket, its event names and
the ``S3Key`` filter rules (prefix, suffix), with the function's
``EventInvokeConfig.MaximumRetryAttempts`` (default 2). Functions are invoked through
``invoke(function_id, event) -> response`` (raising :class:`FunctionError` on a function
error), so the local stack plugs in its worker processes and tests may call handlers
in-process.

Streams: shards are read in order (parents first); a batch is retried from the first
failed record (partial batch response) or, on a function error, split in halves when
bisecting; after the last retry, or for records older than the maximum age, the batch's
description goes to the on-failure SQS queue and reading moves on — as Lambda does.
SQS: messages reported as failed (or all, on a function error) stay in the queue and come
back after their visibility timeout; the others are deleted; redrive is the queue's own.
Like Lambda's SQS pollers, several pollers take batches concurrently, so one slow
invocation holds up only its own batch; on a FIFO queue a message group stays with one
batch until that batch is done (see :class:`SqsPoller`). A mapping starts with
:data:`DEFAULT_SQS_CONCURRENCY` pollers (or its ``ScalingConfig.MaximumConcurrency``, which
also caps them) and, like Lambda, scales out while every poller is busy: one more each
time all of them have held a batch for :data:`SCALE_AFTER_S`, up to
:data:`LOCAL_SQS_MAX_POLLERS` (:class:`EventSourceRunner`), so endpoints that never answer
hold up only their own deliveries, however many there are. The function must be able to
run that many invocations at once: :func:`function_concurrency` says how many each
function's event sources start with, for the local stack's worker limits, and the runner
asks for one more worker (its ``grow`` callback) with each poller it adds.
S3: the bucket notifies an internal queue (moto's S3 sends its event JSON there, as S3
would invoke the function); each event is one asynchronous invocation, retried on a
function error after a short delay (AWS: about 1 then 2 minutes) up to the retry limit
(3 attempts in all by default), then dropped with a line in the log. The response is
ignored, as it is for any asynchronous invocation.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus, unquote_plus

from devstack.aws import local_client
from devstack.filters import FilterCriteria
from devstack.tables import load_template


class FunctionError(Exception):
    """The function raised (Lambda's ``FunctionError``); the batch failed as a whole."""


Invoke = Callable[[str, dict[str, Any]], dict[str, Any] | None]

# Pollers of an SQS mapping without ScalingConfig (Lambda starts with 5 and scales up; its
# MaximumConcurrency caps them, from 2 to 1000).
DEFAULT_SQS_CONCURRENCY = 5
# Lambda scales an SQS mapping without MaximumConcurrency up to 1,250 concurrent
# invocations (a FIFO queue: up to its number of active message groups); locally each one
# is a worker process (~60 MB), so the scale-out stops here.
LOCAL_SQS_MAX_POLLERS = 25
# A mapping whose pollers have all held a batch this long gets one more (Lambda adds
# pollers gradually too); short bursts of quick invocations never scale it.
SCALE_AFTER_S = 1.0


@dataclass
class Mapping:
    """One event source of template.yaml (an event source mapping, or an S3 notification)."""

    function_id: str
    kind: str  # "DynamoDB", "SQS" or "S3"
    source: str  # table, queue or bucket logical id
    batch_size: int
    starting_position: str = "TRIM_HORIZON"
    filters: FilterCriteria = field(default_factory=lambda: FilterCriteria(None))
    partial_batch: bool = False
    bisect: bool = False
    max_retries: int = -1  # -1: until the record expires, as on AWS
    max_record_age: int = -1
    on_failure: str | None = None  # queue logical id
    event_id: str = ""  # the event's name under the function's Events
    events: tuple[str, ...] = ()  # S3: event types, e.g. ("s3:ObjectCreated:*",)
    key_filter: tuple[tuple[str, str], ...] = ()  # S3: (("prefix", "uploads/"), ...)
    max_concurrency: int | None = None  # SQS: ScalingConfig.MaximumConcurrency

    @property
    def concurrency(self) -> int:
        """Invocations this event source runs at once when it starts: an SQS mapping's
        pollers (``ScalingConfig.MaximumConcurrency``, else :data:`DEFAULT_SQS_CONCURRENCY`);
        1 for a stream (its shards are read in order) or an S3 notification (one event at a
        time)."""
        if self.kind != "SQS":
            return 1
        return max(1, self.max_concurrency or DEFAULT_SQS_CONCURRENCY)

    @property
    def max_pollers(self) -> int:
        """Invocations this event source may scale out to: an SQS mapping's
        ``ScalingConfig.MaximumConcurrency``, else :data:`LOCAL_SQS_MAX_POLLERS`; otherwise
        :attr:`concurrency`."""
        if self.kind != "SQS":
            return self.concurrency
        return max(self.concurrency, self.max_concurrency or LOCAL_SQS_MAX_POLLERS)


def _logical_id(value: Any) -> str:
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return str(value["Fn::GetAtt"][0])
    if isinstance(value, dict) and "Ref" in value:
        return str(value["Ref"])
    return str(value).rsplit(":", 1)[-1]


def _s3_mapping(function_id: str, event_id: str, props: dict[str, Any],
                function: dict[str, Any]) -> Mapping:
    events = props["Events"]
    rules = ((props.get("Filter") or {}).get("S3Key") or {}).get("Rules") or []
    retries = (function.get("EventInvokeConfig") or {}).get("MaximumRetryAttempts", 2)
    return Mapping(function_id=function_id, kind="S3", source=_logical_id(props["Bucket"]),
                   batch_size=1, max_retries=int(retries), event_id=event_id,
                   events=tuple([events] if isinstance(events, str) else events),
                   key_filter=tuple((str(r["Name"]).lower(), str(r["Value"])) for r in rules))


def mappings(template_path: Path) -> list[Mapping]:
    """Every DynamoDB, SQS and S3 event source declared in the template."""
    template = load_template(template_path)
    found = []
    for function_id, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        for event_id, event in (resource["Properties"].get("Events") or {}).items():
            kind, props = event.get("Type"), event.get("Properties", {})
            if kind == "S3":
                found.append(_s3_mapping(function_id, event_id, props, resource["Properties"]))
                continue
            if kind not in ("DynamoDB", "SQS"):
                continue
            destination = props.get("DestinationConfig", {}).get("OnFailure", {})
            scaling = props.get("ScalingConfig") or {}
            found.append(Mapping(
                function_id=function_id, kind=kind,
                source=_logical_id(props["Stream"] if kind == "DynamoDB" else props["Queue"]),
                batch_size=int(props.get("BatchSize", 100 if kind == "DynamoDB" else 10)),
                starting_position=props.get("StartingPosition", "TRIM_HORIZON"),
                filters=FilterCriteria(props.get("FilterCriteria", {}).get("Filters")),
                partial_batch="ReportBatchItemFailures" in props.get("FunctionResponseTypes", []),
                bisect=bool(props.get("BisectBatchOnFunctionError", False)),
                max_retries=int(props.get("MaximumRetryAttempts", -1)),
                max_record_age=int(props.get("MaximumRecordAgeInSeconds", -1)),
                on_failure=_logical_id(destination["Destination"])
                if destination.get("Destination") else None, event_id=event_id,
                max_concurrency=int(scaling["MaximumConcurrency"])
                if kind == "SQS" and scaling.get("MaximumConcurrency") else None))
    return found


def function_concurrency(found: list[Mapping]) -> dict[str, int]:
    """``{function logical id: invocations its event sources run at once}``: the sum of
    :attr:`Mapping.concurrency` over each function's mappings in ``found`` (as read by
    :func:`mappings`); functions without one are left out."""
    totals: dict[str, int] = {}
    for mapping in found:
        totals[mapping.function_id] = totals.get(mapping.function_id, 0) + mapping.concurrency
    return totals


def _failed_ids(response: dict[str, Any] | None) -> list[str]:
    failures = (response or {}).get("batchItemFailures") or []
    return [str(f["itemIdentifier"]) for f in failures]


class StreamPoller:
    """Feeds one table's stream to one function, like a Lambda event source mapping."""

    def __init__(self, mapping: Mapping, endpoint_url: str, invoke: Invoke,
                 send_failure: Callable[[str, dict[str, Any]], None]) -> None:
        self.mapping, self.invoke, self.send_failure = mapping, invoke, send_failure
        self.streams = local_client("dynamodbstreams", endpoint_url)
        ddb = local_client("dynamodb", endpoint_url)
        self.stream_arn = ddb.describe_table(TableName=mapping.source)["Table"]["LatestStreamArn"]
        self.iterators: dict[str, str | None] = {}
        self.last_sequence: dict[str, str] = {}
        self.pinned: set[str] = set()
        self.finished: set[str] = set()
        self.pending: dict[str, list[dict[str, Any]]] = {}

    def _shards(self) -> list[dict[str, Any]]:
        shards = self.streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]
        ordered, known = [], {s["ShardId"] for s in shards["Shards"]}
        for shard in shards["Shards"]:  # parents before children
            parent = shard.get("ParentShardId")
            if parent in known and parent not in self.finished and parent not in self.iterators:
                continue
            ordered.append(shard)
        return ordered

    def poll(self) -> int:
        """Read every shard once and deliver what is there; returns records handled."""
        handled = 0
        for shard in self._shards():
            shard_id = shard["ShardId"]
            if shard_id in self.finished:
                continue
            if shard_id not in self.iterators:
                self.iterators[shard_id] = self._iterator(shard_id)
            buffer = self.pending.setdefault(shard_id, [])
            iterator = self.iterators[shard_id]
            while iterator and len(buffer) < self.mapping.batch_size:
                try:
                    response = self.streams.get_records(ShardIterator=iterator,
                                                        Limit=self.mapping.batch_size)
                except (self.streams.exceptions.TrimmedDataAccessException,
                        self.streams.exceptions.ExpiredIteratorException):
                    iterator = self._iterator(shard_id)
                    continue
                iterator = response.get("NextShardIterator")
                if response["Records"]:
                    self.last_sequence[shard_id] = response["Records"][-1]["dynamodb"][
                        "SequenceNumber"]
                records = [self._lambda_record(r) for r in response["Records"]]
                buffer += [r for r in records if self.mapping.filters.passes(r)]
                if not response["Records"]:
                    break
            self.iterators[shard_id] = iterator
            if iterator is None and not buffer:
                self.finished.add(shard_id)
            while buffer:
                batch = buffer[:self.mapping.batch_size]
                del buffer[:len(batch)]
                self._deliver(batch, shard_id, attempt=0)
                handled += len(batch)
        return handled

    def _iterator(self, shard_id: str) -> str:
        """A fresh iterator: after the last record read, else the starting position.

        ``LATEST`` is taken as "after the newest record now in the shard", found by reading
        from the trim horizon (DynamoDB Local's own LATEST iterators never advance).
        """
        if self.mapping.starting_position == "LATEST" and shard_id not in self.pinned:
            self._skip_existing(shard_id)
        self.pinned.add(shard_id)
        if shard_id in self.last_sequence:
            return self.streams.get_shard_iterator(
                StreamArn=self.stream_arn, ShardId=shard_id,
                ShardIteratorType="AFTER_SEQUENCE_NUMBER",
                SequenceNumber=self.last_sequence[shard_id])["ShardIterator"]
        return self.streams.get_shard_iterator(
            StreamArn=self.stream_arn, ShardId=shard_id,
            ShardIteratorType="TRIM_HORIZON")["ShardIterator"]

    def _skip_existing(self, shard_id: str) -> None:
        iterator: str | None = self.streams.get_shard_iterator(
            StreamArn=self.stream_arn, ShardId=shard_id,
            ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        while iterator:
            response = self.streams.get_records(ShardIterator=iterator, Limit=1000)
            if not response["Records"]:
                return
            self.last_sequence[shard_id] = response["Records"][-1]["dynamodb"]["SequenceNumber"]
            iterator = response.get("NextShardIterator")

    def _lambda_record(self, record: dict[str, Any]) -> dict[str, Any]:
        raw = json.loads(json.dumps(record, default=_json_default))
        # DynamoDB Local cuts ApproximateCreationDateTime to the minute (AWS: the second),
        # so a record could look up to 59 s older than its write. The write happened in
        # that minute and before this read: the earlier of the two is never early.
        stamp = raw.get("dynamodb", {}).get("ApproximateCreationDateTime")
        if isinstance(stamp, int | float) and stamp % 60 == 0:
            raw["dynamodb"]["ApproximateCreationDateTime"] = min(
                float(stamp) + 60, max(float(stamp), round(time.time(), 3)))
        raw["eventSourceARN"] = self.stream_arn
        raw.setdefault("eventSource", "aws:dynamodb")
        raw.setdefault("awsRegion", "us-east-1")
        return raw

    def _expired(self, record: dict[str, Any]) -> bool:
        if self.mapping.max_record_age < 0:
            return False
        created = float(record["dynamodb"]["ApproximateCreationDateTime"])
        return time.time() - created > self.mapping.max_record_age

    def _deliver(self, batch: list[dict[str, Any]], shard_id: str, attempt: int) -> None:
        while batch:
            fresh = [r for r in batch if not self._expired(r)]
            if len(fresh) < len(batch):
                self._give_up([r for r in batch if self._expired(r)], shard_id, "RecordAgeExceeded")
                batch = fresh
                continue
            try:
                response = self.invoke(self.mapping.function_id, {"Records": batch})
            except FunctionError:
                if self.mapping.bisect and len(batch) > 1:
                    half = len(batch) // 2
                    self._deliver(batch[:half], shard_id, attempt + 1)
                    self._deliver(batch[half:], shard_id, attempt + 1)
                    return
                failed_from = 0
            else:
                failed = set(_failed_ids(response)) if self.mapping.partial_batch else set()
                if not failed:
                    return
                sequence = [r["dynamodb"]["SequenceNumber"] for r in batch]
                failed_from = min(i for i, s in enumerate(sequence) if s in failed)
            batch = batch[failed_from:]
            attempt += 1
            if 0 <= self.mapping.max_retries < attempt:
                self._give_up(batch, shard_id, "RetryAttemptsExhausted")
                return
            time.sleep(min(2.0, 0.05 * 2**attempt))

    def _give_up(self, batch: list[dict[str, Any]], shard_id: str, reason: str) -> None:
        if not batch or not self.mapping.on_failure:
            return
        self.send_failure(self.mapping.on_failure, {
            "requestContext": {"condition": reason,
                               "functionArn": f"arn:aws:lambda:local:{self.mapping.function_id}"},
            "timestamp": datetime.now(UTC).isoformat(),
            "DDBStreamBatchInfo": {
                "shardId": shard_id, "streamArn": self.stream_arn, "batchSize": len(batch),
                "startSequenceNumber": batch[0]["dynamodb"]["SequenceNumber"],
                "endSequenceNumber": batch[-1]["dynamodb"]["SequenceNumber"]}})


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, bytes | bytearray):
        import base64
        return base64.b64encode(value).decode()
    if isinstance(value, set):
        return sorted(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


class SqsPoller:
    """Feeds one queue to one function, like Lambda's SQS event source mapping.

    :meth:`poll` may run in several threads at once (:attr:`concurrency` of them, see
    :class:`EventSourceRunner`): each takes its own batch, so a slow invocation (a delivery
    to an endpoint that never answers) holds up only its batch, as Lambda's pollers
    process batches concurrently. ``concurrency`` is the mapping's
    ``ScalingConfig.MaximumConcurrency``, else :data:`DEFAULT_SQS_CONCURRENCY`
    (:attr:`Mapping.concurrency`); ``invoke`` must be able to run that many invocations at
    once (the local stack gives the function at least that many workers, see
    :func:`devstack.stack.worker_limits`), or the extra pollers wait for a free one.

    FIFO order is SQS's own: moto, like SQS, returns no message of a group that has one in
    flight (received and neither deleted nor visible again), so a group's messages are
    never in two batches at once and come in order, a failed one first again. moto checks
    this without a lock, though: two ReceiveMessage requests served at once can both take
    a message of the same group. Receives are therefore made one at a time per poller
    (the invocations still run concurrently).

    :meth:`wait_for_work` lets the extra pollers sleep while no batch is being handled, so
    an idle mapping still makes one ReceiveMessage per interval, not one per poller.
    :meth:`saturated_for` tells the runner how long every poller has been busy (it then
    adds one, see :class:`EventSourceRunner`).
    """

    def __init__(self, mapping: Mapping, queue_url: str, endpoint_url: str,
                 invoke: Invoke) -> None:
        self.mapping, self.queue_url, self.invoke = mapping, queue_url, invoke
        self.sqs = local_client("sqs", endpoint_url)
        self.queue_arn = self.sqs.get_queue_attributes(
            QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.concurrency = mapping.concurrency
        self.pollers = 0  # threads polling it (set by the runner)
        self._receiving = threading.Lock()
        self._handling = 0  # batches being handled (invoked, then deleted)
        self._started: list[float] = []  # when each batch being handled was received
        self._work = threading.Condition()

    def wait_for_work(self, timeout: float) -> bool:
        """Block until a batch is being handled (True) or ``timeout`` seconds pass (False)."""
        with self._work:
            return self._work.wait_for(lambda: self._handling > 0, timeout)

    def saturated_for(self) -> float:
        """Seconds every one of its :attr:`pollers` has been handling a batch (0.0 while
        one of them is free)."""
        with self._work:
            if not self.pollers or self._handling < self.pollers:
                return 0.0
            return time.monotonic() - max(self._started)

    def poll(self, wait_seconds: int = 0) -> int:
        """Receive one batch and invoke the function with it; returns messages handled.

        Thread-safe: concurrent calls process different batches (different message groups
        on a FIFO queue).
        """
        with self._receiving:  # moto's FIFO group check is not atomic across requests
            response = self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=min(self.mapping.batch_size, 10),
                AttributeNames=["All"], MessageAttributeNames=["All"],
                WaitTimeSeconds=wait_seconds)
        messages = response.get("Messages", [])
        if not messages:
            return 0
        started = time.monotonic()
        with self._work:
            self._handling += 1
            self._started.append(started)
            self._work.notify_all()
        try:
            return self._handle(messages)
        finally:
            with self._work:
                self._handling -= 1
                self._started.remove(started)

    def _handle(self, messages: list[dict[str, Any]]) -> int:
        records = [{
            "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
            "attributes": m.get("Attributes", {}), "messageAttributes": m.get(
                "MessageAttributes", {}), "md5OfBody": m["MD5OfBody"], "eventSource": "aws:sqs",
            "eventSourceARN": self.queue_arn, "awsRegion": "us-east-1"} for m in messages]
        try:
            result = self.invoke(self.mapping.function_id, {"Records": records})
        except FunctionError:
            return len(records)
        failed = set(_failed_ids(result)) if self.mapping.partial_batch else set()
        done = [r for r in records if r["messageId"] not in failed]
        for start in range(0, len(done), 10):
            self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=[
                {"Id": str(i), "ReceiptHandle": r["receiptHandle"]}
                for i, r in enumerate(done[start:start + 10])])
        return len(records)


class S3EventPoller:
    """Delivers one bucket's notifications to one function, as S3 invokes Lambda
    (asynchronously, retried on a function error, then dropped).

    On creation it makes an internal queue (``devstack-s3-<function>-<event>``) and adds a
    notification to the bucket for the mapping's events and key filter that sends there
    (replacing its own earlier one; other notifications of the bucket are kept). moto's
    ``s3:TestEvent`` messages are skipped; every other event is one invocation with the
    event as S3 sends it: ``{"Records": [one record]}``, the object key URL-encoded as S3
    does (``uploads/a+b.csv`` for ``uploads/a b.csv``). moto's records lack
    ``userIdentity``, ``requestParameters``, ``responseElements`` and the ``sequencer``.

    After a function error the event comes back ``retry_delays[n]`` seconds later (the
    last delay repeats) until ``1 + mapping.max_retries`` attempts have failed; then it is
    dropped and ``log`` says so. Anything but a :class:`FunctionError` propagates and
    leaves the event in flight: it comes back after :attr:`IN_FLIGHT_S`, as an attempt.
    """

    IN_FLIGHT_S = 960  # an event is hidden while its function runs (Lambda's limit: 900 s)

    def __init__(self, mapping: Mapping, bucket: str, endpoint_url: str, invoke: Invoke,
                 log: Callable[[str], None] | None = None,
                 retry_delays: tuple[int, ...] = (1, 2)) -> None:
        self.mapping, self.bucket, self.invoke = mapping, bucket, invoke
        self.log = log or (lambda line: print(line, flush=True))
        self.retry_delays = retry_delays or (0,)
        self.sqs = local_client("sqs", endpoint_url)
        name = f"devstack-s3-{mapping.function_id}-{mapping.event_id or mapping.source}"
        self.queue_url = self.sqs.create_queue(QueueName=name[:80])["QueueUrl"]
        queue_arn = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.notification_id = name
        self._notify(local_client("s3", endpoint_url), queue_arn)

    def _notify(self, s3: Any, queue_arn: str) -> None:
        config = s3.get_bucket_notification_configuration(Bucket=self.bucket)
        config.pop("ResponseMetadata", None)
        queues = [q for q in config.get("QueueConfigurations", [])
                  if q.get("Id") != self.notification_id]
        queue: dict[str, Any] = {"Id": self.notification_id, "QueueArn": queue_arn,
                                 "Events": list(self.mapping.events)}
        if self.mapping.key_filter:
            queue["Filter"] = {"Key": {"FilterRules": [
                {"Name": name, "Value": value} for name, value in self.mapping.key_filter]}}
        s3.put_bucket_notification_configuration(
            Bucket=self.bucket, NotificationConfiguration={
                **config, "QueueConfigurations": [*queues, queue]})

    def poll(self, wait_seconds: int = 0) -> int:
        """Receive the events there are (up to 10) and invoke the function with each, one
        at a time; returns events handled (test events included)."""
        response = self.sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_seconds,
            VisibilityTimeout=self.IN_FLIGHT_S, AttributeNames=["ApproximateReceiveCount"])
        messages = response.get("Messages", [])
        for message in messages:
            self._deliver(message)
        return len(messages)

    def _deliver(self, message: dict[str, Any]) -> None:
        event = json.loads(message["Body"])
        for record in event.get("Records", []):  # moto encodes "/" too; S3 keeps it
            obj = record["s3"]["object"]
            obj["key"] = quote_plus(unquote_plus(obj["key"]), safe="/")
        try:
            if "Records" in event:
                self.invoke(self.mapping.function_id, event)
        except FunctionError as err:
            attempt = int(message["Attributes"]["ApproximateReceiveCount"])
            if attempt <= self.mapping.max_retries:
                delay = self.retry_delays[min(attempt, len(self.retry_delays)) - 1]
                self.sqs.change_message_visibility(
                    QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"],
                    VisibilityTimeout=delay)
                return
            self.log(f"devstack: {self.mapping.function_id}: S3 event dropped after "
                     f"{attempt} attempts ({_describe(event)}): {err}")
        self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])


def _describe(event: dict[str, Any]) -> str:
    """``eventName s3://bucket/key`` of each record of an S3 event."""
    return ", ".join(f"{r.get('eventName')} s3://{r['s3']['bucket']['name']}/"
                     f"{r['s3']['object']['key']}" for r in event.get("Records", []))


Poller = StreamPoller | SqsPoller | S3EventPoller


class EventSourceRunner:
    """Polls every mapping in background threads until :meth:`stop` (for the local stack).

    A stream or S3 mapping has one thread (a stream's shards are read in order); an SQS
    mapping starts with :attr:`Mapping.concurrency` threads polling the same poller, as
    Lambda runs several pollers per SQS mapping. The first polls every ``interval`` when
    idle; the others only while one of them handles a batch (:meth:`SqsPoller.wait_for_work`),
    so a batch that hangs never keeps the next messages of other groups waiting. While every
    thread of an SQS mapping has held a batch for :data:`SCALE_AFTER_S`, the runner adds one
    (up to :attr:`Mapping.max_pollers`), first calling ``grow(function_id)`` so the function
    can run one more invocation at once (the local stack raises its worker limit).
    """

    def __init__(self, pollers: list[Poller], interval: float = 0.2,
                 grow: Callable[[str], None] | None = None) -> None:
        self.pollers, self.interval, self.grow = pollers, interval, grow
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        for poller in pollers:
            for _ in range(poller.concurrency if isinstance(poller, SqsPoller) else 1):
                self._add_thread(poller)
        self._elastic = [p for p in pollers
                         if isinstance(p, SqsPoller) and p.mapping.max_pollers > p.pollers]
        if self._elastic:
            self._threads.append(threading.Thread(target=self._scale, daemon=True,
                                                  name="esm-scaler"))

    def _add_thread(self, poller: Poller) -> threading.Thread:
        extra = isinstance(poller, SqsPoller) and poller.pollers > 0
        if isinstance(poller, SqsPoller):
            poller.pollers += 1
        number = poller.pollers if isinstance(poller, SqsPoller) else 1
        thread = threading.Thread(target=self._run, args=(poller, extra), daemon=True,
                                  name=f"esm-{poller.mapping.function_id}-{number - 1}")
        with self._lock:
            self._threads.append(thread)
        return thread

    def _scale(self) -> None:
        """Add a poller to each SQS mapping whose pollers have all been busy long enough."""
        while not self._stop.wait(self.interval):
            for poller in self._elastic:
                if poller.pollers < poller.mapping.max_pollers and \
                        poller.saturated_for() >= SCALE_AFTER_S:
                    if self.grow is not None:
                        self.grow(poller.mapping.function_id)
                    self._add_thread(poller).start()

    def _run(self, poller: Poller, extra: bool = False) -> None:
        while not self._stop.is_set():
            if extra and isinstance(poller, SqsPoller) and not poller.wait_for_work(
                    self.interval):
                continue  # no batch under way: nothing to keep up with (looks for a stop)
            try:
                busy = poller.poll()
            except Exception as err:  # keep polling; the stack's log shows why
                if self._stop.is_set():
                    return  # stopping: the invoke was refused or its worker was stopped
                print(f"event source {poller.mapping.function_id}: {err}", flush=True)
                busy = 0
            if not busy:
                self._stop.wait(self.interval)

    def start(self) -> EventSourceRunner:
        """Start the threads (one per mapping, several per SQS mapping, and the scaler)."""
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.start()
        return self

    def request_stop(self) -> None:
        """Ask every thread to stop after its current poll, without waiting."""
        self._stop.set()

    def stop(self) -> None:
        """Stop polling and wait for the threads."""
        self._stop.set()
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            if thread.is_alive():
                thread.join(timeout=10)
