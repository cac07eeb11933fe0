"""Logs, metrics and traces of the real handlers against DynamoDB Local (SPEC §9.4).

* Metrics: the EMF lines the handlers print (what CloudWatch reads from the logs), summed
  per metric and compared with what the responses say happened.
* Logs: the Powertools JSON lines, read from the shared logger's stream: every line of a
  request or of a stream/queue record names its org and correlation id; the authorizer logs
  its decision and never the key.
* Traces: off in tests (no X-Ray import at all); on, in a subprocess that looks like Lambda,
  the handler and its DynamoDB call arrive as X-Ray subsegments at a UDP "daemon".
"""

from __future__ import annotations

import copy
import io
import itertools
import json
import os
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from contacts_core.auth import mint_api_key
from contacts_core.observability import DEFAULT_NAMESPACE, Metric, logger, metrics, tracer
from devstack.receiver import WebhookReceiver
from tests.integration.conftest import _Context

REPO = Path(__file__).resolve().parents[2]
AUTHORIZER_EVENT = json.loads((REPO / "events" / "authorizer_request_v2.json").read_text())


# ---------------------------------------------------------------- capture
@pytest.fixture
def emf(capsys: pytest.CaptureFixture[str]) -> Callable[[], list[dict[str, Any]]]:
    """The EMF lines printed since the test started (or since the last read)."""
    metrics.clear_metrics()  # anything counted outside a handler by earlier tests
    capsys.readouterr()

    def read() -> list[dict[str, Any]]:
        out = capsys.readouterr().out
        return [json.loads(line) for line in out.splitlines()
                if line.startswith("{") and '"_aws"' in line]

    return read


@pytest.fixture
def log_lines() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """The Powertools log lines written while the test runs."""
    handler = logger.registered_handler
    buffer = io.StringIO()
    previous = handler.setStream(buffer)  # type: ignore[attr-defined]
    yield lambda: [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]
    handler.setStream(previous)  # type: ignore[attr-defined]


def totals(blobs: list[dict[str, Any]]) -> Counter[str]:
    """Each metric summed over the EMF lines."""
    sums: Counter[str] = Counter()
    for blob in blobs:
        for directive in blob["_aws"]["CloudWatchMetrics"]:
            for metric in directive["Metrics"]:
                value = blob[metric["Name"]]
                sums[metric["Name"]] += int(sum(value) if isinstance(value, list) else value)
    return sums


def of(counter: Counter[str], *names: Metric) -> dict[str, int]:
    return {name.value: counter[name.value] for name in names}


CONTACT_METRICS = (Metric.CONTACTS_CREATED, Metric.CONTACTS_UPDATED, Metric.CONTACTS_UNCHANGED,
                   Metric.CONTACTS_MERGED, Metric.IDENTITY_CONFLICTS)
DELIVERY_METRICS = (Metric.WEBHOOKS_DELIVERED, Metric.WEBHOOKS_RETRIED,
                    Metric.WEBHOOKS_DEAD_LETTERED, Metric.WEBHOOKS_DROPPED)


# ---------------------------------------------------------------- metrics
def test_single_writes_count_each_outcome_in_the_requests_emf_line(api, org_id, emf):
    # Given a contact
    sam = {"phone": "+27821234567", "email": "sam@example.com", "first_name": "Sam"}
    first = api.request("POST", "/v1/contacts", org_id=org_id, json_body=sam)
    cid = first.body["id"]
    # When it is created again (conflict), patched twice with one change, and upserted
    # three ways
    conflict = api.request("POST", "/v1/contacts", org_id=org_id,
                           json_body={"email": "sam@example.com"})
    patches = [api.request("PATCH", f"/v1/contacts/{cid}", org_id=org_id,
                           json_body={"last_name": "Mokoena"}) for _ in range(2)]
    upserts = [api.request("POST", "/v1/contacts/upsert", org_id=org_id, json_body=body)
               for body in (sam, sam | {"language": "en"}, {"phone": "+27821234568"})]
    # Then the responses tell what happened …
    assert (first.status, conflict.status) == (201, 409)
    assert conflict.body["code"] == "identity_conflict"
    versions = [first.body["version"]] + [p.body["version"] for p in patches]
    patch_outcomes = ["updated" if new > old else "unchanged"
                      for old, new in itertools.pairwise(versions)]
    assert patch_outcomes == ["updated", "unchanged"]
    upsert_outcomes = [u.body["result"] for u in upserts]
    assert upsert_outcomes == ["unchanged", "updated", "created"]
    # … and the metrics count exactly that
    outcomes = Counter(["created", *patch_outcomes, *upsert_outcomes])
    blobs = emf()
    assert of(totals(blobs), *CONTACT_METRICS) == {
        "ContactsCreated": outcomes["created"], "ContactsUpdated": outcomes["updated"],
        "ContactsUnchanged": outcomes["unchanged"], "ContactsMerged": 0,
        "IdentityConflicts": 1}
    # And every request that counted printed one EMF line of the namespace, naming the org
    assert len(blobs) == 1 + 1 + len(patches) + len(upserts)
    for blob in blobs:
        (directive,) = blob["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == DEFAULT_NAMESPACE
        assert directive["Dimensions"] == [["service"]]
        assert blob["service"] == os.environ["POWERTOOLS_SERVICE_NAME"]
        assert blob["org_id"] == org_id


def test_bulk_upsert_counts_its_items_once_and_its_identity_conflicts(api, org_id, emf):
    # Given two contacts
    for email in ("a@example.com", "b@example.com"):
        api.request("POST", "/v1/contacts", org_id=org_id, json_body={"email": email})
    emf()
    # When a bulk upsert sends them unchanged and changed, plus two new ones
    upsert = api.request("POST", "/v1/contacts/bulk", org_id=org_id, json_body={"contacts": [
        {"email": "a@example.com"}, {"email": "b@example.com", "first_name": "B"},
        {"email": "c@example.com"}, {"phone": "+27821239999"}]}).body
    upsert_metrics = totals(emf())
    # And a create_only bulk sends one existing contact and one new
    create_only = api.request("POST", "/v1/contacts/bulk", org_id=org_id, json_body={
        "mode": "create_only", "contacts": [{"email": "a@example.com"},
                                            {"email": "d@example.com"}]}).body
    create_only_metrics = totals(emf())
    # Then each bulk's metrics are its own counts
    for body, counted in ((upsert, upsert_metrics), (create_only, create_only_metrics)):
        conflicts = [r for r in body["results"]
                     if r["status"] == "failed" and r["error"]["code"] == "identity_conflict"]
        assert of(counted, *CONTACT_METRICS) == {
            "ContactsCreated": body["created"], "ContactsUpdated": body["updated"],
            "ContactsUnchanged": body["unchanged"], "ContactsMerged": 0,
            "IdentityConflicts": len(conflicts)}
    assert (upsert["created"], upsert["updated"], upsert["unchanged"]) == (2, 1, 1)
    assert (create_only["created"], create_only["failed"]) == (1, 1)


def test_a_merge_is_counted_once_and_its_repeat_not(api, org_id, emf):
    # Given two contacts
    target, source = (api.request("POST", "/v1/contacts", org_id=org_id,
                                  json_body={"email": f"{n}@example.com"}).body["id"]
                      for n in ("target", "source"))
    emf()
    # When the source is merged into the target, and the merge is repeated
    merges = [api.request("POST", f"/v1/contacts/{target}/merge", org_id=org_id,
                          json_body={"source_id": source}) for _ in range(2)]
    # Then both answer the merged contact, and one merge is counted
    assert [m.status for m in merges] == [200, 200]
    assert of(totals(emf()), *CONTACT_METRICS)["ContactsMerged"] == 1


@pytest.mark.usefixtures("sqs")
@pytest.mark.parametrize("retries", [5, 2, 8])
def test_deliveries_count_delivered_retried_and_dead_lettered(api, org_id, pipeline, emf,
                                                               log_lines, monkeypatch, retries):
    # Given an endpoint failing once per event, one always failing, retried at once, on a
    # schedule of the default length or shorter or longer (a template parameter)
    monkeypatch.setenv("WEBHOOK_RETRY_DELAYS", ",".join(["0"] * retries))
    tries: Counter[str] = Counter()

    def respond(path: str, event: dict[str, Any], nth: int) -> int:
        tries[path] += 1
        return 500 if path == "/down" or (path == "/flaky" and tries[path] == 1) else 204

    receiver = WebhookReceiver(respond=respond).start()
    try:
        for path in ("/flaky", "/down"):
            api.request("POST", "/v1/webhook-endpoints", org_id=org_id, json_body={
                "url": receiver.url + path, "events": ["contact.created"]})
        pipeline.take_dead_letters()
        # (deliveries earlier tests left on the session's queue are not this test's; the
        # session's moto server runs in this process and may purge more than once a minute)
        monkeypatch.setenv("MOTO_SQS_ENFORCE_STRICT_QUEUE_PURGE_BEHAVIOUR", "false")
        pipeline.sqs.purge_queue(QueueUrl=pipeline.sqs_urls["WebhookDeliveryQueue"])
        emf()
        # When one contact is created and the pipeline settles
        api.request("POST", "/v1/contacts", org_id=org_id, json_body={"email": "w@example.com"})
        dead: list[dict[str, Any]] = []
        pipeline.pump(lambda: len(dead.extend(pipeline.take_dead_letters()) or dead) == 1
                      and any(200 <= r.status < 300 for r in receiver.on("/flaky")), timeout=60)
    finally:
        receiver.stop()
    # Then the counts match what the endpoints saw and what the DLQ holds
    attempts = receiver.on("/flaky") + receiver.on("/down")
    ok = sum(200 <= r.status < 300 for r in attempts)
    failed = len(attempts) - ok
    assert of(totals(emf()), *DELIVERY_METRICS) == {
        "WebhookDeliveriesDelivered": ok, "WebhookDeliveriesRetried": failed - len(dead),
        "WebhookDeliveriesDeadLettered": len(dead), "WebhookDeliveriesDropped": 0}
    assert [r.status for r in receiver.on("/flaky")] == [500, 204]
    # And the always failing one was tried once and then once per retry, no more, no less
    assert (ok, len(dead), len(receiver.on("/down"))) == (1, 1, retries + 1)
    # And every line about a delivery or a stream record names its org and correlation id
    event_id = dead[0]["event"]["id"]
    deliveries = [line for line in log_lines() if line["message"].startswith("delivery")]
    assert len(deliveries) == len(attempts)
    assert {(line["org_id"], line["correlation_id"]) for line in deliveries} == {
        (org_id, event_id)}
    emitted = [line for line in log_lines() if line["message"] == "stream record emitted"]
    assert emitted and all(line["org_id"] == org_id and line["correlation_id"]
                           for line in emitted)


# ---------------------------------------------------------------- logs
def test_every_line_of_a_request_names_its_org_and_request_id(api, org_id, log_lines):
    # Given a contact, and another org
    api.request("POST", "/v1/contacts", org_id=org_id, json_body={"email": "l@example.com"})
    other = org_id + "x"
    before = len(log_lines())
    # When a request of this org is refused, then one of the other org too
    refused = api.request("POST", "/v1/contacts", org_id=org_id,
                          json_body={"email": "l@example.com"})
    other_refused = api.request("POST", "/v1/contacts", org_id=other, json_body={"email": "x"})
    lines = log_lines()[before:]
    # Then each request's lines carry its org and its request id, nothing of the other's
    assert [(line["message"], line["org_id"], line["correlation_id"]) for line in lines] == [
        ("request refused", org_id, refused.body["request_id"]),
        ("request refused", other, other_refused.body["request_id"])]
    assert all(line["function_request_id"] == _Context.aws_request_id for line in lines)


def authorize(api, authorization: str | None, request_id: str) -> dict[str, Any]:
    event = copy.deepcopy(AUTHORIZER_EVENT)
    event["headers"].pop("authorization")
    event["requestContext"]["requestId"] = request_id
    if authorization is not None:
        event["headers"]["authorization"] = authorization
    return api.handler_module(REPO / "functions" / "authorizer").handler(event, _Context())


def test_the_authorizer_logs_its_decision_with_the_org_but_never_the_key(api, org_id,
                                                                         log_lines):
    # Given a valid key and an unknown one
    key = mint_api_key(org_id, "logs")
    unknown = "ck_" + "u" * 43
    # When each is presented, and no key at all
    answers = [authorize(api, f"Bearer {k}", f"req-{n}") for n, k in enumerate((key, unknown))]
    answers.append(authorize(api, None, "req-2"))
    # Then one line per request states the decision under its request id
    lines = [line for line in log_lines() if "decision" in line]
    assert [a["isAuthorized"] for a in answers] == [True, False, False]
    assert [(line["decision"], line.get("org_id"), line["correlation_id"]) for line in lines] == [
        ("allow", org_id, "req-0"), ("deny", None, "req-1"), ("deny", None, "req-2")]
    # And neither key appears anywhere in the logs
    text = json.dumps(log_lines())
    assert key not in text and unknown not in text and key[3:] not in text


# ---------------------------------------------------------------- traces
def run_like_lambda(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter that sees the layer, as Lambda would."""
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, text=True,
                          capture_output=True, timeout=120, check=False,
                          env=os.environ | {"LAMBDA_TASK_ROOT": str(REPO)} | env)


HANDLER_CALL = r"""
import json, sys
sys.path[:0] = ["layers/contacts_core", "functions/{function}"]
import app
event = json.load(open("events/http_api_proxy.json"))
event["requestContext"]["authorizer"]["lambda"]["org_id"] = "{org_id}"
event["pathParameters"] = {{"id": "{contact_id}"}}

class Context:
    function_name = "{function}"
    memory_limit_in_mb = 512
    aws_request_id = "trace-test"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:{function}"

print(json.dumps({{"status": app.handler(event, Context())["statusCode"],
                  "xray_imported": "aws_xray_sdk" in sys.modules}}))
"""


def test_tracing_is_off_in_tests_and_off_means_x_ray_is_never_imported(api, org_id):
    # Given the test environment, and a Lambda-like process with tracing disabled
    assert tracer() is None
    code = HANDLER_CALL.format(function="get_contact", org_id=org_id,
                               contact_id="con_01JD8Q2M6W3YQ0V4C7N5T9KX2B")
    # When a handler is imported and called there
    run = run_like_lambda(code, {"POWERTOOLS_TRACE_DISABLED": "true"})
    # Then it answers without importing the X-Ray SDK
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout.splitlines()[-1]) == {"status": 404, "xray_imported": False}


def test_on_lambda_the_handler_and_its_dynamodb_call_are_x_ray_subsegments(api, org_id):
    # Given a contact, and a UDP socket standing in for the X-Ray daemon
    contact = api.request("POST", "/v1/contacts", org_id=org_id,
                          json_body={"email": "trace@example.com"}).body
    daemon = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    daemon.bind(("127.0.0.1", 0))
    daemon.settimeout(10)
    trace_id = "1-5759e988-bd862e3fe1be46a994272793"
    env = {"AWS_XRAY_DAEMON_ADDRESS": f"127.0.0.1:{daemon.getsockname()[1]}",
           "_X_AMZN_TRACE_ID": f"Root={trace_id};Parent=53995c3f42cd8ad8;Sampled=1",
           "AWS_LAMBDA_FUNCTION_NAME": "GetContactFunction"}
    env["POWERTOOLS_TRACE_DISABLED"] = "false"
    # When the get handler runs in a process that looks like Lambda
    code = HANDLER_CALL.format(function="get_contact", org_id=org_id, contact_id=contact["id"])
    run = run_like_lambda(code, env)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout.splitlines()[-1]) == {"status": 200, "xray_imported": True}
    # Then the daemon received the handler's subsegment, annotated with the org …
    segments: list[dict[str, Any]] = []
    with daemon:
        while not segments or segments[-1]["name"] != "## handler":  # the last to close
            header, _, body = daemon.recv(65536).decode().partition("\n")
            assert json.loads(header)["format"] == "json"
            segments.append(json.loads(body))
    by_name = {s["name"]: s for s in segments}
    handler = by_name["## handler"]
    assert handler["trace_id"] == trace_id
    assert handler["annotations"]["org_id"] == org_id
    # … and the DynamoDB calls inside it: the org's rate-limit take (UpdateItem), then the
    # GetItem
    calls = [s for s in segments if s.get("namespace") == "aws"]
    assert {(c["name"].lower(), c["aws"]["operation"]) for c in calls[:-1]} == {
        ("dynamodb", "UpdateItem")}
    call = calls[-1]
    assert call["parent_id"] == handler["id"]
    assert call["aws"]["table_name"] == os.environ["CONTACTS_TABLE"]
