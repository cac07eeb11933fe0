"""End-to-end fixtures: the real local stack (``python -m devstack``) driven over HTTP.

Every test under ``tests/e2e`` is marked ``e2e`` automatically. The session fixture
``stack`` starts the stack on free ports (reusing a fresh ``sam build``, otherwise
letting devstack build with ``--cached``), waits for its ready file, and stops it
on teardown (SIGINT, then SIGKILL), asserting it exited, removed its ready file and
left none of its processes (DynamoDB Local's JVM, function workers) behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from devstack.dynamodb_local import free_port
from devstack.stack import DEFAULT_WEBHOOK_RETRY_DELAYS, build_is_fresh, mint_key
from devstack.tables import local_table

REPO = Path(__file__).resolve().parents[2]
E2E_DIR = Path(__file__).resolve().parent
START_TIMEOUT_S = float(os.environ.get("DEVSTACK_START_TIMEOUT", "900"))  # first build is slow
STOP_TIMEOUT_S = 20.0
E2E_RETRY_DELAYS = DEFAULT_WEBHOOK_RETRY_DELAYS  # as `make dev`: first retry after 2 s


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test collected from tests/e2e with ``pytest.mark.e2e``."""
    for item in items:
        if E2E_DIR in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.e2e)


class ApiClient(requests.Session):
    """``requests.Session`` bound to the stack: relative URLs ("/v1/...") get ``base_url``.

    Carries ``Authorization: Bearer <api_key>`` when a key is given; a 30 s timeout
    applies unless the call passes its own.
    """

    def __init__(self, base_url: str, api_key: str | None = None) -> None:
        super().__init__()
        self.base_url = base_url.rstrip("/")
        if api_key is not None:
            self.headers["Authorization"] = f"Bearer {api_key}"

    def url(self, path: str) -> str:
        """Absolute URL for ``path`` ("/v1/contacts" -> "http://127.0.0.1:PORT/v1/contacts")."""
        return path if "://" in path else self.base_url + path

    def request(  # type: ignore[override]
        self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any
    ) -> requests.Response:
        kwargs.setdefault("timeout", 30)
        verb = method.decode() if isinstance(method, bytes) else method
        target = url.decode() if isinstance(url, bytes) else url
        return super().request(verb, self.url(target), *args, **kwargs)


@dataclass
class Stack:
    """A running local stack (see the ``stack`` fixture).

    ``sqs_endpoint`` is its moto server (SQS, KMS, Secrets Manager); ``queues``, ``keys`` and
    ``secrets`` map the template's queue, KMS key and secret logical ids to their URLs / key
    ids / ARNs there; ``webhook_retry_delays`` are the local delivery retry delays;
    ``log_path`` is the stack's log (function output, tracebacks, REPORT lines).
    """

    base_url: str
    api_key: str
    dynamodb_endpoint: str
    sqs_endpoint: str
    queues: dict[str, str]
    org_id: str
    keys: dict[str, str]
    secrets: dict[str, str]
    api_keys_table: str
    webhook_retry_delays: list[int]
    log_path: Path

    def mint_key(self, org_id: str, name: str = "e2e") -> str:
        """Mint another org's key in the stack's ApiKeys table; returns ``ck_...``."""
        return mint_key(org_id, self.dynamodb_endpoint, self.api_keys_table, name, REPO)

    def client(self, api_key: str | None = None) -> ApiClient:
        """HTTP session for the API; ``api_key=None`` gives an unauthenticated session."""
        return ApiClient(self.base_url, api_key)


def _log_tail(log: Path, lines: int = 60) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def _descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (``pgrep -P``, recursively)."""
    found: set[int] = set()
    todo = [pid]
    while todo:
        out = subprocess.run(["pgrep", "-P", str(todo.pop())], capture_output=True, text=True)
        children = {int(p) for p in out.stdout.split()} - found
        found |= children
        todo += children
    return found


def _alive(pids: set[int]) -> set[int]:
    """The ``pids`` that still run (zombies count as gone)."""
    alive = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                continue
            except PermissionError:
                pass
            alive.add(pid)
            continue
        if state != "Z":
            alive.add(pid)
    return alive


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The local stack as a subprocess on free ports, for the whole session."""
    workdir = tmp_path_factory.mktemp("devstack")
    ready, log = workdir / "ready.json", workdir / "devstack.log"
    argv = [
        sys.executable, "-m", "devstack",
        "--port", str(free_port()), "--ddb-port", str(free_port()),
        "--sqs-port", str(free_port()), "--webhook-retry-delays", E2E_RETRY_DELAYS,
        "--ready-file", str(ready), "--state-dir", str(workdir),  # not the developer's .dev
    ]
    if build_is_fresh(REPO):
        argv.append("--no-build")
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            argv, cwd=REPO, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
            env={**os.environ, "SAM_CLI_TELEMETRY": "0"},
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not ready.exists():
            if process.poll() is not None:
                pytest.fail(f"devstack exited with {process.returncode}:\n{_log_tail(log)}")
            if time.monotonic() > deadline:
                pytest.fail(f"devstack not ready after {START_TIMEOUT_S:.0f}s:\n{_log_tail(log)}")
            time.sleep(0.2)
        info = json.loads(ready.read_text())
        fields = ("base_url", "api_key", "dynamodb_endpoint", "sqs_endpoint", "queues",
                  "org_id", "keys", "secrets")
        yield Stack(**{k: info[k] for k in fields},
                    api_keys_table=local_table("API_KEYS_TABLE", REPO / "template.yaml"),
                    webhook_retry_delays=[int(d) for d in E2E_RETRY_DELAYS.split(",")],
                    log_path=log)
    finally:
        children = _descendants(process.pid) if process.poll() is None else set()
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                pytest.fail(f"devstack ignored SIGINT; killed it:\n{_log_tail(log)}")
    assert process.returncode is not None, "devstack still running"
    assert not ready.exists(), "devstack did not clean up its ready file"
    deadline = time.monotonic() + 5
    while _alive(children) and time.monotonic() < deadline:
        time.sleep(0.1)
    leftovers = _alive(children)
    for pid in leftovers:  # ours (started by the devstack we started): do not leak them
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert not leftovers, f"devstack left processes behind: {sorted(leftovers)}"
