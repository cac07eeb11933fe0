"""Smoke test of the SAM CLI internals the local stack depends on (pinned aws-sam-cli).

Starts the whole stack in-process (``LocalStack``: SamLocalStackProvider -> ApiProvider
-> LocalApigwService with the Docker-free ``ProcessLambdaRunner``) on free ports over
the real ``sam build`` output, and checks every route of template.yaml through the
HttpApi Lambda REQUEST authorizer, the SQS queues and event source mappings of the
template, the functions' environment, and that stopping leaves no process or thread
behind. Builds first unless the build is fresh.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from devstack.aws import local_client
from devstack.event_sources import mappings
from devstack.stack import LocalStack, StackConfig, build_is_fresh
from devstack.tables import load_template

REPO = Path(__file__).resolve().parents[2]
SAMPLE_ID = "01J9ZZZZZZZZZZZZZZZZZZZZZZ"
BAD_KEY = "ck_" + "x" * 43


def template_routes(public: bool = False) -> list[tuple[str, str]]:
    """(METHOD, /path) of every HttpApi event in template.yaml behind the authorizer (or,
    with ``public``, without it: ``Auth: {Authorizer: NONE}``), read independently of SAM
    CLI."""
    routes = []
    for resource in load_template(REPO / "template.yaml")["Resources"].values():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        for event in (resource["Properties"].get("Events") or {}).values():
            if event.get("Type") == "HttpApi":
                props = event["Properties"]
                if ((props.get("Auth") or {}).get("Authorizer") == "NONE") != public:
                    continue
                routes.append((str(props["Method"]).upper(), str(props["Path"])))
    return sorted(routes)


ROUTES = template_routes()


def child_pids() -> set[int]:
    """Direct children of this process (``pgrep -P``, Linux and macOS)."""
    out = subprocess.run(["pgrep", "-P", str(os.getpid())], capture_output=True, text=True)
    return {int(pid) for pid in out.stdout.split()}


def template_queues() -> list[str]:
    """Logical ids of the SQS queues in template.yaml."""
    resources = load_template(REPO / "template.yaml")["Resources"]
    return sorted(lid for lid, r in resources.items() if r.get("Type") == "AWS::SQS::Queue")


def new_threads(before: set[threading.Thread], grace: float = 5.0) -> set[threading.Thread]:
    """Live threads not in ``before``, after waiting up to ``grace`` seconds for them to end."""
    deadline = time.monotonic() + grace
    while True:
        extra = {t for t in threading.enumerate() if t not in before and t.is_alive()}
        if not extra or time.monotonic() > deadline:
            return extra
        time.sleep(0.1)


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    before, threads_before = child_pids(), set(threading.enumerate())
    local = LocalStack(StackConfig(port=0, ddb_port=None, build=not build_is_fresh(REPO)))
    local.start()
    try:
        assert child_pids() - before, "the stack should have started DynamoDB Local"
        yield local
    finally:
        local.stop()
    leftovers = child_pids() - before
    assert not leftovers, f"processes left behind: {leftovers}"
    threads = new_threads(threads_before)
    assert not threads, f"threads left behind: {[t.name for t in threads]}"


def call(stack: LocalStack, method: str, path: str, key: str | None) -> requests.Response:
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    body: dict[str, str] | None = {} if method in ("POST", "PATCH", "PUT") else None
    url = stack.base_url + path.replace("{id}", SAMPLE_ID)
    return requests.request(method, url, headers=headers, json=body, timeout=30)


def test_template_has_routes() -> None:
    assert ROUTES, "template.yaml defines no HttpApi routes"


def test_sam_cli_sees_every_template_route(stack: LocalStack) -> None:
    assert stack.server is not None
    served = sorted((m.upper(), r.path) for r in stack.server.routes for m in r.methods)
    assert served == sorted(ROUTES + template_routes(public=True))
    public = set(template_routes(public=True))
    assert all((r.authorizer_object is None) == ((m.upper(), r.path) in public)
               for r in stack.server.routes for m in r.methods)


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_route_without_authorization_is_401(stack: LocalStack, method: str, path: str) -> None:
    assert call(stack, method, path, None).status_code == 401


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_route_with_unknown_key_is_403(stack: LocalStack, method: str, path: str) -> None:
    assert call(stack, method, path, BAD_KEY).status_code == 403


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_route_with_dev_key_reaches_its_function(
    stack: LocalStack, method: str, path: str
) -> None:
    response = call(stack, method, path, stack.api_key)
    # 401/403: authorizer refused; 403 "Missing Authentication Token": no such route;
    # 500/502: the function failed or answered something API Gateway cannot map.
    assert response.status_code not in (401, 403, 500, 502), (response.status_code, response.text)


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/v1/no-such-route"), ("PUT", "/v1/contacts"), ("GET", "/v1/contacts/x/y/z"),
    ("HEAD", "/v1/contacts")])
def test_unknown_route_is_404_like_an_http_api(stack: LocalStack, method: str, path: str
                                               ) -> None:
    response = call(stack, method, path, stack.api_key)
    assert response.status_code == 404
    if method != "HEAD":  # a HEAD answer has no body
        assert response.json() == {"message": "Not Found"}


def test_minted_key_for_another_org_is_accepted(stack: LocalStack) -> None:
    key = stack.mint_key("org_smoke_other")
    assert key.startswith("ck_") and key != stack.api_key
    assert call(stack, "GET", "/v1/contacts", key).status_code == 200


def test_template_queues_exist_on_the_local_sqs(stack: LocalStack) -> None:
    assert sorted(stack.queues) == template_queues()
    sqs = local_client("sqs", stack.sqs_endpoint)
    listed = sqs.list_queues()["QueueUrls"]
    assert set(stack.queues.values()) <= set(listed)
    assert stack.ready_info()["queues"] == stack.queues


def test_template_buckets_exist_on_the_local_s3_and_notify_their_functions(
        stack: LocalStack) -> None:
    declared = sorted(lid for lid, r in load_template(REPO / "template.yaml")["Resources"].items()
                      if r["Type"] == "AWS::S3::Bucket")
    assert sorted(stack.buckets) == declared and declared
    s3 = local_client("s3", stack.sqs_endpoint)
    assert set(stack.buckets.values()) <= {b["Name"] for b in s3.list_buckets()["Buckets"]}
    assert stack.ready_info()["buckets"] == stack.buckets
    for mapping in (m for m in stack.mappings if m.kind == "S3"):
        config = s3.get_bucket_notification_configuration(Bucket=stack.buckets[mapping.source])
        (wired,) = [q for q in config["QueueConfigurations"]
                    if q["Id"].endswith(f"-{mapping.function_id}-{mapping.event_id}")]
        assert tuple(wired["Events"]) == mapping.events
        rules = wired.get("Filter", {}).get("Key", {}).get("FilterRules", [])
        assert tuple((r["Name"].lower(), r["Value"]) for r in rules) == mapping.key_filter


def test_every_event_source_mapping_is_polled(stack: LocalStack) -> None:
    expected = sorted((m.function_id, m.kind, m.source) for m in mappings(REPO / "template.yaml"))
    assert expected, "template.yaml declares no event source mappings"
    assert sorted((m.function_id, m.kind, m.source) for m in stack.mappings) == expected
    assert stack.event_sources is not None
    assert all(t.is_alive() for t in stack.event_sources._threads)


@pytest.mark.parametrize("function_id", sorted({m.function_id for m in
                                                 mappings(REPO / "template.yaml")}))
def test_event_functions_get_local_queue_urls_and_webhook_settings(
    stack: LocalStack, function_id: str
) -> None:
    assert stack.runner is not None
    env = stack.runner.worker_spec(stack.runner.get_function(function_id)).env
    assert env["AWS_ENDPOINT_URL_SQS"] == stack.sqs_endpoint
    assert env["AWS_ENDPOINT_URL_DYNAMODB"] == stack.dynamodb_endpoint
    assert env["AWS_ENDPOINT_URL_S3"] == env["S3_ENDPOINT_URL"] == stack.sqs_endpoint
    assert env["ALLOW_LOOPBACK_WEBHOOKS"] == "true"
    assert not set(env.values()) & set(stack.queues), "a !Ref to a queue was not resolved"
    assert not set(env.values()) & set(stack.buckets), "a !Ref to a bucket was not resolved"
    queue_vars = {k: v for k, v in env.items() if k.endswith("QUEUE_URL")}
    assert all(v in stack.queues.values() for v in queue_vars.values()), queue_vars
    if "WEBHOOK_RETRY_DELAYS" in env:
        assert env["WEBHOOK_RETRY_DELAYS"] == stack.config.webhook_retry_delays


def test_each_request_gets_its_own_request_id(stack: LocalStack) -> None:
    # Given two identical requests that both answer a problem naming their request id
    first = call(stack, "GET", "/v1/contacts/{id}", stack.api_key)
    second = call(stack, "GET", "/v1/contacts/{id}", stack.api_key)
    # Then each carries its own id (SAM CLI alone would give both the same)
    assert first.status_code == second.status_code == 404
    assert first.json()["request_id"] != second.json()["request_id"]


def test_body_that_is_not_utf8_reaches_the_function(stack: LocalStack) -> None:
    # Given a body with bytes that are not UTF-8
    response = requests.post(stack.base_url + "/v1/contacts", data=b'{"email": "\xff"}',
                             headers={"Authorization": f"Bearer {stack.api_key}",
                                      "Content-Type": "application/json"}, timeout=30)
    # Then the function answers it (base64-encoded by the local API Gateway), not a 502
    assert response.status_code != 502, response.text
    assert response.headers["Content-Type"] == "application/problem+json"
