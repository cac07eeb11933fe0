"""The Docker-free runner behind LocalApigwService, on a tiny synthetic "built" template.

Checks Lambda-like behaviour independent of the domain code: isolated sys.path
(function, layer, runtime dir only), environment from the template, the context
object, errors -> 502 with the traceback in the logs, import errors, timeouts,
the init phase's own budget, replacement of timed-out workers, one request id per
request, bodies that are not UTF-8, parallel warm workers, queue references resolved
to local URLs, direct (event source) invocations and that closing leaves no process
behind.
"""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import textwrap
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from samcli.lib.providers.sam_function_provider import SamFunctionProvider

from devstack.api import ApiServer, load_stacks
from devstack.lambda_runtime import ensure_lambda_runtime
from devstack.runner import LambdaFunctionError, ProcessLambdaRunner
from devstack.workers import Worker, WorkerFailure, WorkerSpec

TEMPLATE = """
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Parameters:
  Greeting: {Type: String, Default: hello}
Globals:
  Function:
    Runtime: python3.13
    Handler: app.handler
    Timeout: 3
    MemorySize: 256
    Layers: [!Ref Lib]
    Environment:
      Variables: {GREETING: !Ref Greeting, TABLE: !Ref Things, QUEUE: !Ref Jobs}
Resources:
  Lib:
    Type: AWS::Serverless::LayerVersion
    Properties: {ContentUri: Lib}
  Jobs:
    Type: AWS::SQS::Queue
  Things:
    Type: AWS::DynamoDB::Table
    Properties:
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions: [{AttributeName: pk, AttributeType: S}]
      KeySchema: [{AttributeName: pk, KeyType: HASH}]
{functions}
"""

FUNCTION = """
  {name}:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: {name}
      Timeout: {timeout}
      Events:
        Api: {{Type: HttpApi, Properties: {{Method: {method}, Path: /{path}}}}}
"""

HANDLERS = {
    "Echo": """
        import json, os, sys
        import libmod

        def handler(event, context):
            try:
                import pytest  # noqa: F401  (only in the devstack venv)
                leaked = True
            except ImportError:
                leaked = False
            import boto3
            print("echo says hi")
            return {"statusCode": 200, "body": json.dumps({
                "sys_path": sys.path, "leaked": leaked, "boto3": boto3.__file__,
                "lib": libmod.VALUE, "pid": os.getpid(), "env": dict(os.environ),
                "path": event["rawPath"],
                "context": {"name": context.function_name, "mem": context.memory_limit_in_mb,
                            "arn": context.invoked_function_arn, "id": context.aws_request_id,
                            "left": context.get_remaining_time_in_millis()}})}
    """,
    "Boom": """
        def handler(event, context):
            return 1 / 0
    """,
    "Broken": """
        import module_that_is_not_packaged  # noqa: F401

        def handler(event, context):
            return {"statusCode": 200}
    """,
    "Slow": """
        import json, os, time

        def handler(event, context):
            time.sleep(float(event.get("queryStringParameters", {}).get("s", "0.6")))
            return {"statusCode": 200, "body": json.dumps({"pid": os.getpid()})}
    """,
}
HANDLERS["Sleepy"] = HANDLERS["Slow"]
# Its import takes longer than its 1 s timeout (a cold start on a busy machine).
HANDLERS["SlowImport"] = """
    import json, os, time
    time.sleep(float(os.environ.get("IMPORT_SLEEP_S", "2")))

    def handler(event, context):
        return {"statusCode": 200, "body": json.dumps({"pid": os.getpid()})}
"""
HANDLERS["Mirror"] = """
    import json

    def handler(event, context):
        return {"statusCode": 200, "body": json.dumps({
            "body": event.get("body"), "isBase64Encoded": event["isBase64Encoded"],
            "requestId": event["requestContext"]["requestId"],
            "timeEpoch": event["requestContext"]["timeEpoch"]})}
"""
JOBS_URL = "http://127.0.0.1:9/123456789012/Jobs"
TIMEOUTS = {"Slow": 1, "Sleepy": 60, "SlowImport": 1}
METHODS = {"Mirror": "POST"}
SLOW_IMPORT_S = 2


def child_pids() -> set[int]:
    """Direct children of this process (``pgrep -P``, Linux and macOS)."""
    out = subprocess.run(["pgrep", "-P", str(os.getpid())], capture_output=True, text=True)
    return {int(pid) for pid in out.stdout.split()}


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("build")
    functions = ""
    for name, source in HANDLERS.items():
        (root / name).mkdir()
        (root / name / "app.py").write_text(textwrap.dedent(source))
        functions += FUNCTION.format(name=name, timeout=TIMEOUTS.get(name, 3), path=name.lower(),
                                     method=METHODS.get(name, "GET"))
    (root / "Lib" / "python").mkdir(parents=True)
    (root / "Lib" / "python" / "libmod.py").write_text("VALUE = 'from-layer'\n")
    (root / "template.yaml").write_text(TEMPLATE.replace("{functions}", functions))
    return root


class Env:
    def __init__(self, runner: ProcessLambdaRunner, server: ApiServer, log: io.StringIO):
        self.runner, self.server, self.log = runner, server, log

    def get(self, path: str, **params: str) -> requests.Response:
        return requests.get(f"{self.server.base_url}/{path}", params=params, timeout=30)

    def post(self, path: str, body: bytes, content_type: str) -> requests.Response:
        return requests.post(f"{self.server.base_url}/{path}", data=body, timeout=30,
                             headers={"Content-Type": content_type})

    def wait_for_log(self, text: str, timeout: float = 5.0) -> str:
        deadline = time.monotonic() + timeout
        while text not in self.log.getvalue() and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.log.getvalue()


@pytest.fixture(scope="module")
def env(build: Path) -> Iterator[Env]:
    before = child_pids()
    stacks = load_stacks(build / "template.yaml", {"Greeting": "bonjour"})
    log = io.StringIO()
    runner = ProcessLambdaRunner(
        SamFunctionProvider(stacks), ensure_lambda_runtime(),
        extra_env={"AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:9"},
        max_concurrency=3, log_stream=log, cwd=str(build), queue_urls={"Jobs": JOBS_URL},
    )
    server = ApiServer(stacks, runner, port=0, cwd=build, stderr=log).start()
    try:
        yield Env(runner, server, log)
    finally:
        server.stop()
        runner.close()
    assert not child_pids() - before, "workers left behind"


def test_worker_sees_only_function_layer_and_runtime(env: Env, build: Path) -> None:
    body = env.get("echo").json()
    runtime = str(ensure_lambda_runtime().resolve())
    assert body["sys_path"][:3] == [str(build / "Echo"), str(build / "Lib" / "python"), runtime]
    assert not [p for p in body["sys_path"] if "site-packages" in p]
    assert body["leaked"] is False
    assert body["boto3"].startswith(runtime)
    assert body["lib"] == "from-layer"


def test_environment_comes_from_template_and_stack(env: Env) -> None:
    e = env.get("echo").json()["env"]
    assert e["GREETING"] == "bonjour"  # parameter override
    assert e["TABLE"] == "Things"  # !Ref table -> local name = logical id
    assert e["QUEUE"] == JOBS_URL  # !Ref queue -> logical id -> the local queue URL
    assert e["AWS_ENDPOINT_URL_DYNAMODB"] == "http://127.0.0.1:9"
    assert (e["AWS_ACCESS_KEY_ID"], e["AWS_SECRET_ACCESS_KEY"]) == ("test", "test")
    assert e["AWS_REGION"] == "us-east-1"
    assert e["AWS_LAMBDA_FUNCTION_NAME"] == "Echo"
    assert e["POWERTOOLS_TRACE_DISABLED"] == "true"  # Lambda-like, but no X-Ray daemon
    assert "VIRTUAL_ENV" not in e and "PYTEST_CURRENT_TEST" not in e


def test_context_object(env: Env) -> None:
    ctx = env.get("echo").json()["context"]
    assert ctx["name"] == "Echo" and ctx["mem"] == 256
    assert ctx["arn"] == "arn:aws:lambda:us-east-1:123456789012:function:Echo"
    assert len(ctx["id"]) == 36
    assert 0 < ctx["left"] <= 3000


def test_v2_event_and_prints_go_to_logs(env: Env) -> None:
    response = env.get("echo")
    assert response.json()["path"] == "/echo"
    assert "echo says hi" in env.wait_for_log("echo says hi")


def test_warm_worker_is_reused(env: Env) -> None:
    assert env.get("echo").json()["pid"] == env.get("echo").json()["pid"]


def test_unhandled_exception_is_502_with_traceback_in_logs(env: Env) -> None:
    response = env.get("boom")
    assert response.status_code == 502
    assert response.json() == {"message": "Internal server error"}
    log = env.wait_for_log("ZeroDivisionError: division by zero")
    assert "Traceback (most recent call last)" in log
    with pytest.raises(LambdaFunctionError) as info:
        env.runner.invoke_json("Boom", "{}")
    assert info.value.error["errorType"] == "ZeroDivisionError"
    assert info.value.error["stackTrace"]


def test_packaging_mistake_fails_like_lambda(env: Env) -> None:
    assert env.get("broken").status_code == 502
    with pytest.raises(LambdaFunctionError) as info:
        env.runner.invoke_json("Broken", "{}")
    assert info.value.error["errorType"] == "Runtime.ImportModuleError"
    assert "module_that_is_not_packaged" in info.value.error["errorMessage"]


def test_timeout_kills_the_worker(env: Env) -> None:
    started = time.monotonic()
    response = env.get("slow", s="5")
    assert response.status_code == 502
    assert time.monotonic() - started < 4
    assert "Task timed out after 1.00 seconds" in env.wait_for_log("Task timed out")


def test_slow_import_has_its_own_init_budget(env: Env) -> None:
    # Given a function whose import takes 2 s and whose timeout is 1 s, with no warm worker
    assert not env.runner.pool.idle_pids("SlowImport")
    started = time.monotonic()
    # When it is called for the first time
    response = env.get("slowimport")
    # Then the import ran in the init phase (up to 10 s), not in the 1 s of the invocation
    assert response.status_code == 200, response.text
    assert time.monotonic() - started >= SLOW_IMPORT_S  # the cold start was indeed slow
    assert "Init Duration" in env.wait_for_log("Init Duration")
    # And the worker stays warm: the next call does not import again
    assert env.get("slowimport").json()["pid"] == response.json()["pid"]


def test_timed_out_worker_is_replaced_before_the_next_request(env: Env) -> None:
    # Given a warm worker of a function with a 1 s timeout
    timed_out_pid = env.get("slow", s="0").json()["pid"]
    # When an invocation times out
    assert env.get("slow", s="5").status_code == 502
    # Then the worker is gone and a new one is already starting, before any next request
    pre_started = env.runner.pool.idle_pids("Slow")
    assert pre_started and timed_out_pid not in pre_started
    assert timed_out_pid not in env.runner.pool.pids()
    # And the next request is served by it and succeeds
    response = env.get("slow", s="0")
    assert response.status_code == 200, response.text
    assert response.json()["pid"] in pre_started


def test_each_request_gets_its_own_request_id_and_time(env: Env) -> None:
    # Given the time before the requests
    before_ms = int(time.time() * 1000)
    # When the same route is called twice
    first = env.post("mirror", b"{}", "application/json").json()
    second = env.post("mirror", b"{}", "application/json").json()
    # Then each event has its own requestContext.requestId and its own arrival time
    assert first["requestId"] != second["requestId"]
    assert len(first["requestId"]) == 36
    assert before_ms - 1000 <= first["timeEpoch"] <= second["timeEpoch"]


def test_body_that_is_not_utf8_reaches_the_function_base64_encoded(env: Env) -> None:
    # Given a JSON body with bytes that are not UTF-8
    raw = b'{"name": "\xff\xfe"}'
    # When it is posted
    response = env.post("mirror", raw, "application/json")
    # Then the function gets it base64-encoded, as API Gateway passes it
    assert response.status_code == 200, response.text
    event = response.json()
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == raw


def test_utf8_body_reaches_the_function_as_text(env: Env) -> None:
    event = env.post("mirror", '{"name": "Zoë"}'.encode(), "application/json").json()
    assert event == {**event, "isBase64Encoded": False, "body": '{"name": "Zoë"}'}


def test_concurrent_requests_run_in_parallel_workers(env: Env) -> None:
    env.get("slow", s="0")  # one warm worker
    started = time.monotonic()
    with ThreadPoolExecutor(3) as pool:
        responses = list(pool.map(lambda _: env.get("slow", s="0.6"), range(3)))
    elapsed = time.monotonic() - started
    assert [r.status_code for r in responses] == [200, 200, 200]
    assert len({r.json()["pid"] for r in responses}) == 3
    assert elapsed < 1.6, elapsed


def test_direct_invoke_returns_the_result(env: Env) -> None:
    event = json.dumps({"queryStringParameters": {"s": "0"}})
    result = json.loads(env.runner.invoke_json("Slow", event))
    assert result["statusCode"] == 200


def test_invoke_event_returns_the_result_object_or_raises(env: Env) -> None:
    result = env.runner.invoke_event("Slow", {"queryStringParameters": {"s": "0"}})
    assert result is not None and result["statusCode"] == 200
    with pytest.raises(LambdaFunctionError):
        env.runner.invoke_event("Boom", {"Records": []})


def test_close_stops_busy_workers(build: Path) -> None:
    before = child_pids()
    stacks = load_stacks(build / "template.yaml", {})
    runner = ProcessLambdaRunner(
        SamFunctionProvider(stacks), ensure_lambda_runtime(), log_stream=io.StringIO(),
        cwd=str(build),
    )
    event = json.dumps({"queryStringParameters": {"s": "30"}})
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(runner.invoke_json, "Sleepy", event)
        deadline = time.monotonic() + 10
        while not runner.pool.pids() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        started = time.monotonic()
        runner.close()
        with pytest.raises(LambdaFunctionError):
            future.result(timeout=10)
        assert time.monotonic() - started < 6  # not the 30 s sleep nor the 60 s timeout
    assert not child_pids() - before


def _spec(build: Path, timeout_s: float, init_timeout_s: float, import_s: float) -> WorkerSpec:
    """A worker spec for SlowImport of the synthetic build, with chosen budgets."""
    return WorkerSpec(function_name="SlowImport", handler="app.handler",
                      sys_path=(str(build / "SlowImport"), str(ensure_lambda_runtime())),
                      env={"PATH": "/usr/bin:/bin", "IMPORT_SLEEP_S": str(import_s)},
                      timeout_s=timeout_s, init_timeout_s=init_timeout_s)


def test_init_over_its_budget_goes_on_under_the_function_timeout(build: Path) -> None:
    # Given an import of 2 s, an init budget of 0.5 s and a function timeout of 30 s
    worker = Worker(_spec(build, 30, 0.5, import_s=2), log=lambda _text: None)
    try:
        # When it is invoked
        response = worker.call("{}", "req-1")
        # Then, as Lambda re-runs a timed-out init within the invoke, it still answers
        assert response["ok"], response
    finally:
        worker.stop()


def test_init_and_handler_over_the_function_timeout_time_out(build: Path) -> None:
    # Given an import of 60 s, an init budget of 0.5 s and a function timeout of 0.5 s
    worker = Worker(_spec(build, 0.5, 0.5, import_s=60), log=lambda _text: None)
    # When it is invoked, Then the invocation times out and the worker is stopped
    with pytest.raises(WorkerFailure) as info:
        worker.call("{}", "req-1")
    assert info.value.error["errorType"] == "Sandbox.Timedout"
    assert not worker.alive
