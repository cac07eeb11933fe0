"""Call the real handlers with API Gateway events built from ``events/``, routed by template.yaml.

``api.request("PATCH", "/v1/contacts/con_…", org_id=…, json={...})`` finds the function
whose ``HttpApi`` event matches the method and path in template.yaml, fills the sample
event in ``events/http_api_proxy.json`` and invokes that function's ``app.handler``
in-process against DynamoDB Local.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlencode

import pytest

from contacts_core.dynamodb import dynamodb_client
from devstack.routes import template_routes

REPO = Path(__file__).resolve().parents[2]
SAMPLE_EVENT = json.loads((REPO / "events" / "http_api_proxy.json").read_text())


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: Any


class Api:
    """In-process API: route like API Gateway, invoke the function's handler, parse JSON."""

    def __init__(self) -> None:
        self.repo = REPO
        self.routes = template_routes()
        self._modules: dict[Path, ModuleType] = {}

    def handler_module(self, code_uri: Path) -> ModuleType:
        if code_uri not in self._modules:
            spec = importlib.util.spec_from_file_location(f"fn_{code_uri.name}",
                                                          code_uri / "app.py")
            assert spec and spec.loader
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            self._modules[code_uri] = module
        return self._modules[code_uri]

    def request(self, method: str, path: str, *, org_id: str, json_body: Any = None,
                raw_body: str | None = None,
                query: dict[str, str | list[str]] | None = None,
                headers: dict[str, str] | None = None,
                authorizer: dict[str, Any] | None = None) -> Response:
        """``authorizer``: more of the authorizer's context than ``org_id`` (e.g. the
        org's rate policy, as the real authorizer returns it). ``query``: a list value is
        a repeated parameter, joined by commas as payload 2.0 joins it."""
        for route in self.routes:
            matched = route.pattern.match(path)
            if route.method == method and matched:
                break
        else:
            raise AssertionError(f"template.yaml has no route for {method} {path}")
        event = copy.deepcopy(SAMPLE_EVENT)
        event["routeKey"] = event["requestContext"]["routeKey"] = f"{method} {route.path}"
        event["rawPath"] = event["requestContext"]["http"]["path"] = path
        event["requestContext"]["http"]["method"] = method
        event["requestContext"]["requestId"] = str(uuid.uuid4())
        event["requestContext"]["authorizer"]["lambda"] = {**(authorizer or {}), "org_id": org_id}
        event["pathParameters"] = matched.groupdict() or None
        event["queryStringParameters"] = {
            name: ",".join(value) if isinstance(value, list) else value
            for name, value in (query or {}).items()} or None
        event["rawQueryString"] = urlencode(query or {}, doseq=True, errors="surrogatepass")
        event["headers"] |= {k.lower(): v for k, v in (headers or {}).items()}
        if json_body is not None:
            raw_body = json.dumps(json_body)
        event["body"] = raw_body
        result = self.handler_module(route.code_uri).handler(event, _Context())
        body, headers = result.get("body"), result.get("headers", {})
        if body and "json" in headers.get("Content-Type", ""):
            body = json.loads(body)
        return Response(result["statusCode"], headers, body or None)


class _Context:
    function_name = "test"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:test"
    aws_request_id = "test-request"

    def get_remaining_time_in_millis(self) -> int:
        return 900_000  # Lambda's longest timeout: never the reason a test stops early


@pytest.fixture(scope="session")
def api(dynamodb: str) -> Api:
    """The API in-process against the session's DynamoDB Local."""
    return Api()


def function_code(function_id: str) -> Path:
    """Code folder of any function of template.yaml (HTTP or event-driven)."""
    from devstack.tables import load_template

    resources = load_template(REPO / "template.yaml")["Resources"]
    return REPO / resources[function_id]["Properties"]["CodeUri"]


@pytest.fixture(scope="session")
def sqs(dynamodb: str, moto_server: str) -> Iterator[dict[str, str]]:
    """The template's queues on the session's moto server (DynamoDB Local has no SQS).

    Every variable that names a queue (``DELIVERY_QUEUE_URL``, ``IMPORT_QUEUE_URL``) is its
    local URL; deliveries retry after 1 s instead of minutes (``WEBHOOK_RETRY_DELAYS``) and
    loopback receivers are allowed, as in the local stack. Yields ``{"endpoint": url,
    <queue>: url}``.
    """
    from devstack.queues import create_queues, resolve_queue_refs
    from tests.conftest import template_environment

    endpoint = moto_server
    urls = create_queues(REPO / "template.yaml", endpoint)
    template_env = template_environment()
    env = {k: v for k, v in resolve_queue_refs(template_env, urls).items()
           if v != template_env[k]}
    env |= {"AWS_ENDPOINT_URL_SQS": endpoint, "ALLOW_LOOPBACK_WEBHOOKS": "true",
            "WEBHOOK_RETRY_DELAYS": "1,1,1,1,1"}
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        yield {"endpoint": endpoint, **urls}


class Pipeline:
    """The webhook and import paths in-process: the template's stream and SQS event source
    mappings and S3 notifications (local pollers with Lambda's semantics) feeding the real
    handlers. S3 events are retried at once on a function error (3 attempts in all)."""

    def __init__(self, api: Api, dynamodb: str, sqs: dict[str, str],
                 buckets: dict[str, str]) -> None:
        from dataclasses import replace

        from devstack.aws import local_client
        from devstack.event_sources import S3EventPoller, SqsPoller, StreamPoller, mappings

        self.api, self.sqs_urls = api, sqs
        self.sqs = local_client("sqs", sqs["endpoint"])
        found = mappings(REPO / "template.yaml")
        self.streams = [StreamPoller(replace(m, starting_position="LATEST"), dynamodb,
                                     self.invoke, self.send_failure)
                        for m in found if m.kind == "DynamoDB"]
        for poller in self.streams:
            poller.poll()  # pin LATEST iterators before the test writes anything
        self.queues = [SqsPoller(m, sqs[m.source], sqs["endpoint"], self.invoke)
                       for m in found if m.kind == "SQS"]
        self.uploads = [S3EventPoller(m, buckets[m.source], sqs["endpoint"], self.invoke,
                                      retry_delays=(0,))
                        for m in found if m.kind == "S3"]
        for upload in self.uploads:  # events of earlier tests' uploads are not this test's
            self._take(upload.queue_url)
        self.failures: list[dict[str, Any]] = []

    def invoke(self, function_id: str, event: dict[str, Any]) -> dict[str, Any] | None:
        from devstack.event_sources import FunctionError

        module = self.api.handler_module(function_code(function_id))
        try:
            return module.handler(event, _Context())
        except Exception as err:
            raise FunctionError(str(err)) from err

    def send_failure(self, queue: str, record: dict[str, Any]) -> None:
        self.failures.append(record)

    def pump(self, until, timeout: float = 30.0) -> None:
        """Poll streams, queues and bucket notifications until ``until()`` holds
        (AssertionError on timeout)."""
        import time

        deadline = time.monotonic() + timeout
        while not until():
            if time.monotonic() > deadline:
                raise AssertionError("pipeline did not settle in time")
            busy = (sum(p.poll() for p in self.streams) + sum(q.poll() for q in self.queues)
                    + sum(u.poll() for u in self.uploads))
            if not busy:
                time.sleep(0.05)

    def take_dead_letters(self) -> list[dict[str, Any]]:
        """Bodies of the messages in the dead-letter queue, removed from it."""
        return self._take(self.sqs_urls["WebhookDeadLetterQueue"])

    def _take(self, url: str) -> list[dict[str, Any]]:
        """Bodies of the visible messages in the queue ``url``, removed from it."""
        bodies: list[dict[str, Any]] = []
        while True:
            batch = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
            messages = batch.get("Messages", [])
            if not messages:
                return bodies
            bodies += [json.loads(m["Body"]) for m in messages]
            self.sqs.delete_message_batch(QueueUrl=url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                for i, m in enumerate(messages)])


class OrgClient:
    """The API as one org's client: ``client(method, path, body, query=, headers=)`` →
    Response, failing the test on any 5xx; ``create(body)`` → a created contact."""

    def __init__(self, api: Api, org_id: str) -> None:
        self.api, self.org_id = api, org_id

    def __call__(self, method: str, path: str, body: Any = None,
                 query: dict[str, str | list[str]] | None = None,
                 headers: dict[str, str] | None = None) -> Response:
        response = self.api.request(method, path, org_id=self.org_id, json_body=body,
                                    query=query, headers=headers)
        assert response.status < 500, f"{method} {path} answered {response.status}: " \
                                      f"{response.body}"
        return response

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        response = self("POST", "/v1/contacts", body)
        assert response.status == 201, response.body
        return dict(response.body)


@pytest.fixture
def call(api: Api, org_id: str) -> OrgClient:
    """This test's org as a client that never accepts a 5xx."""
    return OrgClient(api, org_id)


@pytest.fixture
def pipeline(api: Api, dynamodb: str, sqs: dict[str, str], buckets: dict[str, str]) -> Pipeline:
    """A fresh pipeline that sees only what the test writes."""
    return Pipeline(api, dynamodb, sqs, buckets)


class CallLog:
    """The DynamoDB API calls made while a block runs: ``calls`` (operation names) and
    ``requests`` (name, parameters as the caller gave them)."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.requests: list[tuple[str, dict[str, Any]]] = []

    def record(self, params: dict[str, Any], model: Any, **_: object) -> None:
        self.calls.append(model.name)
        self.requests.append((model.name, dict(params)))

    def during(self, action: Any) -> tuple[Any, list[str]]:
        """Run ``action``; its result and the names of the calls it made."""
        self.calls.clear()
        self.requests.clear()
        result = action()
        return result, list(self.calls)


@pytest.fixture
def log(dynamodb: str) -> Iterator[CallLog]:
    """Every DynamoDB call the code under test makes (on the shared client)."""
    calls = CallLog()
    events = dynamodb_client().meta.events
    events.register("before-parameter-build.dynamodb", calls.record)
    yield calls
    events.unregister("before-parameter-build.dynamodb", calls.record)


@pytest.fixture(scope="module")
def separate_moto() -> Iterator[str]:
    """A moto server of the module's own (SQS, S3), as the local stack runs it: its URL."""
    from devstack.stack import SqsServer

    server = SqsServer()
    server.start()
    yield server.endpoint_url
    server.stop()
