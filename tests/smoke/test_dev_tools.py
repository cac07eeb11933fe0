"""Developer tools against a running local stack (SPEC §9.4 "Developer experience" and
"SAM local invocations"): the state files ``make dev`` writes, ``contacts-api-key`` without
any variables, ``make invoke``'s runner with every ``events/`` file against its function,
``.dev/env.json`` for ``sam local`` and the public ``/docs`` page.

One in-process :class:`LocalStack`; its state files go to a temporary ``.dev`` (written by
the same code as ``make dev``), and the command-line tools run there as child processes.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from devstack.__main__ import _write_state
from devstack.aws import local_client
from devstack.invoke import invoke
from devstack.receiver import Received, WebhookReceiver, verify
from devstack.stack import LocalStack, StackConfig, build_is_fresh, build_lock
from devstack.state import CONTAINER_HOST, read_live_state, state_path
from devstack.tables import load_template

REPO = Path(__file__).resolve().parents[2]
EVENTS = REPO / "events"
BIN = Path(sys.executable).parent
SAMPLE_ORG = "org_example"  # the org of every events/ file
SAMPLE_CONTACT = "con_01JD8Q2M6W3YQ0V4C7N5T9KX2B"
WAIT_S = 30.0


def event(name: str) -> dict[str, Any]:
    """A fresh copy of ``events/<name>``."""
    document: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return document


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any AWS or table variable (a new terminal)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("AWS_") and not k.endswith("_TABLE") and k != "CONTACTS_DEV_STATE"}
    return env | extra


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("devtools")


@pytest.fixture(scope="module")
def stack(workdir: Path) -> Iterator[LocalStack]:
    local = LocalStack(StackConfig(port=0, ddb_port=None, build=not build_is_fresh(REPO)))
    local.start()
    try:
        assert _write_state(local, workdir / ".dev") == state_path(workdir / ".dev")
        yield local
    finally:
        local.stop()


@pytest.fixture(scope="module")
def state(stack: LocalStack, workdir: Path) -> dict[str, Any]:
    return read_live_state(state_path(workdir / ".dev"))


@pytest.fixture(scope="module")
def sample_key(stack: LocalStack) -> str:
    """A key for the events' org."""
    return stack.mint_key(SAMPLE_ORG)


class Hook:
    """A webhook endpoint of the events' org, registered over HTTP, and its receiver."""

    def __init__(self, stack: LocalStack, key: str) -> None:
        self.stack, self.headers = stack, {"Authorization": f"Bearer {key}"}
        self.receiver = WebhookReceiver()
        self.receiver.start()
        answer = requests.post(f"{stack.base_url}/v1/webhook-endpoints", headers=self.headers,
                               json={"url": self.receiver.url + "/", "events": ["*"]},
                               timeout=30)
        assert answer.status_code == 201, answer.text
        self.id, self.secret = answer.json()["id"], answer.json()["secret"]

    def wait_for(self, count: int, keep: Any) -> list[Received]:
        """The first ``count`` requests for which ``keep(event)`` holds (fails after WAIT_S)."""
        deadline = time.monotonic() + WAIT_S
        while True:
            kept = [r for r in self.receiver.on("/") if keep(r.event)]
            if len(kept) >= count or time.monotonic() > deadline:
                assert len(kept) >= count, [r.event for r in self.receiver.on("/")]
                return kept[:count]
            time.sleep(0.1)

    def close(self) -> None:
        requests.delete(f"{self.stack.base_url}/v1/webhook-endpoints/{self.id}",
                        headers=self.headers, timeout=30)
        self.receiver.stop()


@pytest.fixture
def hook(stack: LocalStack, sample_key: str) -> Iterator[Hook]:
    registered = Hook(stack, sample_key)
    try:
        yield registered
    finally:
        registered.close()


# ---------------------------------------------------------------- contacts-api-key

def api_key_cli(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``contacts-api-key ARGS`` in ``workdir`` with no AWS variable set."""
    return subprocess.run([str(BIN / "contacts-api-key"), *args], cwd=workdir,
                          env=clean_env(), capture_output=True, text=True, timeout=60)


def test_api_key_cli_finds_the_running_stack_without_variables(stack, workdir):
    # Given the running stack's state file and no AWS variable at all
    # When a key is minted the way the README says (make api-key ORG=acme)
    minted = api_key_cli(workdir, "mint", "--org", "acme_cli", "--name", "laptop")
    # Then it works against the local API
    assert minted.returncode == 0, minted.stderr
    key = minted.stdout.strip()
    url, auth = f"{stack.base_url}/v1/contacts", {"Authorization": f"Bearer {key}"}
    assert requests.get(url, headers=auth, timeout=30).status_code == 200
    # When the org's keys are listed, Then it is there by id
    listed = api_key_cli(workdir, "list", "acme_cli", "--json")
    assert listed.returncode == 0, listed.stderr
    (entry,) = json.loads(listed.stdout)
    assert entry["name"] == "laptop" and entry["key_id"] in minted.stderr
    # When it is revoked by that id, Then the API refuses it
    revoked = api_key_cli(workdir, "revoke", entry["key_id"])
    assert revoked.returncode == 0, revoked.stderr
    assert requests.get(url, headers=auth, timeout=30).status_code == 403


def test_rate_limit_cli_finds_the_running_stack_and_its_policy_applies(stack, workdir):
    # Given a key of an org, and no AWS variable at all
    key = api_key_cli(workdir, "mint", "--org", "acme_rl").stdout.strip()
    # When an operator gives the org 1/s with a burst of 2 (make rate-limit ORG=… RATE BURST)
    result = subprocess.run([str(BIN / "contacts-rate-limit"), "acme_rl", "--rate", "1",
                             "--burst", "2"], cwd=workdir, env=clean_env(),
                            capture_output=True, text=True, timeout=60)
    # Then it is stored in the stack's table, and the org's requests follow it
    assert result.returncode == 0, result.stderr
    assert "acme_rl: 1/s, burst 2 (its own policy)" in result.stdout
    auth = {"Authorization": f"Bearer {key}"}
    answers = [requests.get(f"{stack.base_url}/v1/contacts", headers=auth, timeout=30)
               for _ in range(6)]
    assert answers[0].headers["RateLimit-Policy"] == '"org";q=1;w=1;burst=2'
    assert 429 in [a.status_code for a in answers]


def test_api_key_cli_without_a_stack_or_table_says_what_to_do(tmp_path):
    # Given no running stack (a state file path with nothing there) and no table
    result = subprocess.run([str(BIN / "contacts-api-key"), "--org", "acme"], cwd=tmp_path,
                            env=clean_env(CONTACTS_DEV_STATE=str(tmp_path / "none.json")),
                            capture_output=True, text=True, timeout=60)
    # Then it fails with usage status and says how to fix it
    assert result.returncode == 2 and result.stdout == ""
    assert "make dev" in result.stderr and "API_KEYS_TABLE" in result.stderr


# ---------------------------------------------------------------- make invoke + events/

def test_invoke_get_contact_with_the_sample_request(stack, state, workdir):
    # Given the sample contact stored (the first stream record's NewImage)
    image = event("dynamodb_stream_contacts.json")["Records"][0]["dynamodb"]["NewImage"]
    local_client("dynamodb", stack.dynamodb_endpoint).put_item(
        TableName=state["tables"]["ContactsTable"], Item=image)
    # When GetContactFunction runs with events/http_api_proxy.json as `make invoke` runs it
    result = subprocess.run(
        [sys.executable, "-m", "devstack.invoke", "GetContactFunction",
         str(EVENTS / "http_api_proxy.json")],
        cwd=workdir, env=clean_env(), capture_output=True, text=True, timeout=120)
    # Then it prints the function's answer: 200 with the contact and its ETag
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["statusCode"] == 200 and answer["headers"]["ETag"] == '"1"'
    contact = json.loads(answer["body"])
    assert (contact["id"], contact["first_name"], contact["phone"]) == (
        SAMPLE_CONTACT, "Sam", "+27821234567")


def test_invoke_runs_the_checkouts_fresh_build_not_the_stacks_copy(stack, state, tmp_path):
    # Given the running stack's state, whose own copy of the build is gone (as if older)
    stale = state | {"build_dir": str(tmp_path / "gone")}
    # When a function is invoked the way `make invoke` does (after its `sam build`)
    answer = invoke("GetContactFunction", event("http_api_proxy.json"), stale)
    # Then it ran from the checkout's .aws-sam/build: a real answer of the function
    assert answer["statusCode"] in (200, 404), answer


def test_invoke_without_a_running_stack_says_so(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "devstack.invoke", "GetContactFunction",
         str(EVENTS / "http_api_proxy.json")],
        cwd=tmp_path, env=clean_env(CONTACTS_DEV_STATE=str(tmp_path / "none.json")),
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "no running local stack" in result.stderr
    assert "make dev" in result.stderr


def test_invoke_unknown_function_names_the_real_ones(state):
    from devstack.invoke import InvokeError

    with pytest.raises(InvokeError, match="GetContactFunction"):
        invoke("NoSuchFunction", event("http_api_proxy.json"), state)


def test_authorizer_sample_is_refused_as_is_and_allowed_with_a_real_key(state, sample_key):
    # Given the sample authorizer request, When it carries its placeholder key
    sample = event("authorizer_request_v2.json")
    # Then the authorizer refuses it
    assert invoke("AuthorizerFunction", sample, state) == {"isAuthorized": False}
    # When it carries a key of the events' org, Then the org is passed on
    real = copy.deepcopy(sample)
    real["headers"]["authorization"] = f"Bearer {sample_key}"
    real["identitySource"] = [f"Bearer {sample_key}"]
    assert invoke("AuthorizerFunction", real, state) == {
        "isAuthorized": True, "context": {"org_id": SAMPLE_ORG, "rate_limit": 100,
                                          "rate_burst": 200}}


def test_stream_sample_emits_every_event_to_the_org_endpoint(state, hook):
    # Given an endpoint of the events' org, When EmitWebhooksFunction gets the stream sample
    result = invoke("EmitWebhooksFunction", event("dynamodb_stream_contacts.json"), state)
    # Then no record failed, and the stack delivers the five events, signed, in order
    assert result == {"batchItemFailures": []}
    delivered = hook.wait_for(5, lambda e: e["created_at"].startswith("2026-05-22"))
    assert [verify(r, hook.secret)["type"] for r in delivered] == [
        "contact.created", "contact.updated", "audience.contact_added",
        "audience.contact_removed", "contact.deleted"]


def test_delivery_sample_is_dropped_for_its_unknown_endpoint(state):
    # Given the delivery sample as is (its endpoint does not exist)
    # When DeliverWebhooksFunction gets it, Then it is done with, not retried
    assert invoke("DeliverWebhooksFunction", event("sqs_delivery.json"), state) == {
        "batchItemFailures": []}


def test_delivery_sample_is_signed_and_posted_to_a_real_endpoint(state, hook):
    # Given the delivery sample addressed to an endpoint of the events' org
    sample = event("sqs_delivery.json")
    record = sample["Records"][0]
    body = json.loads(record["body"]) | {"endpoint_id": hook.id}
    record["body"] = json.dumps(body)
    # When DeliverWebhooksFunction gets it
    result = invoke("DeliverWebhooksFunction", sample, state)
    # Then it succeeded and the endpoint received the event, verifiably signed
    assert result == {"batchItemFailures": []}
    (received,) = hook.wait_for(1, lambda e: e["id"] == body["event"]["id"])
    assert received.headers["webhook-id"] == body["event"]["id"]
    assert verify(received, hook.secret)["data"]["object"]["id"] == SAMPLE_CONTACT


# ---------------------------------------------------------------- .dev/env.json (sam local)

def template_variables() -> dict[str, set[str]]:
    """Each function's environment variable names, read from template.yaml (the loader
    merges ``Globals`` into every function, as SAM does)."""
    template = load_template(REPO / "template.yaml")
    return {lid: set((r["Properties"].get("Environment") or {}).get("Variables") or {})
            for lid, r in template["Resources"].items()
            if r["Type"] == "AWS::Serverless::Function"}


def test_env_json_covers_every_function_variable_and_reaches_the_stack_from_docker(
        stack, state, workdir):
    # Given the env.json written beside the state file
    env_vars = json.loads((workdir / ".dev" / "env.json").read_text())
    expected = template_variables()
    # Then every function of the template has every one of its variables
    assert set(env_vars) == {"Parameters", *expected}
    for function_id, names in expected.items():
        assert set(env_vars[function_id]) == names, function_id
        assert all(isinstance(v, str) for v in env_vars[function_id].values())
    # And endpoints and queue URLs are the stack's, as a container reaches them
    ddb_port, sqs_port = (stack.dynamodb_endpoint.rsplit(":", 1)[1],
                          stack.sqs_endpoint.rsplit(":", 1)[1])
    moto = f"http://{CONTAINER_HOST}:{sqs_port}"  # SQS, KMS, Secrets Manager and S3
    endpoints = {"DYNAMODB_ENDPOINT_URL": f"http://{CONTAINER_HOST}:{ddb_port}",
                 "SQS_ENDPOINT_URL": moto, "KMS_ENDPOINT_URL": moto,
                 "SECRETS_MANAGER_ENDPOINT_URL": moto, "S3_ENDPOINT_URL": moto}
    assert env_vars["Parameters"] == endpoints
    deliver = env_vars["DeliverWebhooksFunction"]
    assert deliver["DELIVERY_QUEUE_URL"] == state["queues"]["WebhookDeliveryQueue"].replace(
        "127.0.0.1", CONTAINER_HOST)
    assert {k: deliver[k] for k in endpoints} == endpoints
    # And the tables named are the ones in DynamoDB Local, the cursor key ring the stack's
    tables = set(local_client("dynamodb", stack.dynamodb_endpoint).list_tables()["TableNames"])
    get_contact = env_vars["GetContactFunction"]
    assert {v for k, v in get_contact.items() if k.endswith("_TABLE")} <= tables
    assert get_contact["CURSOR_KEY_SECRET"].startswith("arn:aws:secretsmanager:")
    assert "CursorKeySecret" in get_contact["CURSOR_KEY_SECRET"]
    # And buckets are named as in the stack's S3
    assert env_vars["RunImportFunction"]["IMPORTS_BUCKET"] == state["buckets"]["ImportsBucket"]


# ---------------------------------------------------------------- /docs

def test_docs_page_and_document_are_public(stack):
    # When the docs page and the document are fetched without an API key
    page = requests.get(f"{stack.base_url}/docs", timeout=30)
    document = requests.get(f"{stack.base_url}/openapi.json", timeout=30)
    # Then the page is HTML that loads the document, and the document is the repo's
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert 'spec-url="openapi.json"' in page.text
    assert document.status_code == 200
    assert document.headers["Content-Type"] == "application/json"
    assert document.json() == json.loads((REPO / "openapi.json").read_text())
    assert document.text == (REPO / "openapi.json").read_text()


def test_docs_with_a_trailing_slash_is_sent_to_the_page_without_it(stack):
    # When /docs/ or /openapi.json/ is asked for (the page's relative openapi.json would
    # otherwise name /docs/openapi.json, which does not exist)
    for path in ("/docs/", "/openapi.json/"):
        response = requests.get(f"{stack.base_url}{path}", timeout=30, allow_redirects=False)
        # Then it is a permanent redirect to the path without the slash, which serves it
        assert response.status_code == 308, (path, response.status_code, response.text[:200])
        assert response.headers["Location"] == path.rstrip("/")
    followed = requests.get(f"{stack.base_url}/openapi.json/", timeout=30)
    assert followed.status_code == 200
    assert followed.json() == json.loads((REPO / "openapi.json").read_text())


def test_a_running_stack_serves_its_own_copy_of_the_build(stack, sample_key):
    # Given a running stack, and the checkout's build moved away, as a `sam build` by
    # `make test` or a second stack replaces it
    assert stack.served is not None and not stack.served.is_relative_to(REPO)
    build = REPO / ".aws-sam" / "build"
    aside = build.with_name("build.aside")
    with build_lock(REPO):
        build.rename(aside)
        try:
            # When a function no request has started yet is called
            response = requests.get(f"{stack.base_url}/v1/audiences", timeout=60,
                                    headers={"Authorization": f"Bearer {sample_key}"})
        finally:
            aside.rename(build)
    # Then the stack serves it from its own copy
    assert response.status_code == 200, response.text


def test_make_build_waits_for_a_build_in_progress():
    # Given a build of this checkout in progress (it holds .aws-sam/build.lock)
    built = REPO / ".aws-sam" / "build" / "template.yaml"
    before = built.stat().st_mtime_ns if built.exists() else None
    with build_lock(REPO):
        # When make build's command starts meanwhile (make dev and make test build with it)
        makefile = (REPO / "Makefile").read_text()
        assert "LOCAL_BUILD := $(BIN)/python -m devstack.build" in makefile
        assert "build: setup\n\t$(LOCAL_BUILD)\n" in makefile
        waiting = subprocess.Popen([sys.executable, "-m", "devstack.build"], cwd=REPO,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(3)
            # Then it waits its turn: not over, and nothing written into the build
            assert waiting.poll() is None
            assert (built.stat().st_mtime_ns if built.exists() else None) == before
        finally:
            waiting.kill()
            waiting.wait()


# ---------------------------------------------------------------- make receiver

def test_receiver_with_a_secret_answers_401_to_what_does_not_verify():
    # Given the receiver `make receiver SECRET=…` runs, with its endpoint's secret
    from datetime import UTC, datetime

    from standardwebhooks import Webhook

    secret = "whsec_" + "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"
    receiver = WebhookReceiver(secret=secret).start()
    try:
        body = json.dumps({"id": "evt_1", "type": "contact.created", "data": {}})
        now = datetime.now(UTC)
        signed = {"webhook-id": "evt_1", "webhook-timestamp": str(int(now.timestamp())),
                  "webhook-signature": Webhook(secret).sign("evt_1", now, body)}
        forged = signed | {"webhook-signature": "v1,abc"}
        # When a delivery signed with it arrives, and one that is not
        good = requests.post(receiver.url + "/", data=body, headers=signed, timeout=10)
        bad = requests.post(receiver.url + "/", data=body, headers=forged, timeout=10)
        # Then the first is taken (200) and the second refused (401), so a sender retries it
        assert (good.status_code, bad.status_code) == (200, 401)
        assert [r.status for r in receiver.received] == [200, 401]
    finally:
        receiver.stop()
