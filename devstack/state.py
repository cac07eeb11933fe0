"""The running local stack's state file, ``.dev/stack.json``: how tools find ``make dev``.

``make dev`` writes it once the stack serves and removes it when the stack stops. It holds
what a client needs to reach the stack without any AWS variables: the API URL, the
DynamoDB Local and moto (SQS, KMS, Secrets Manager, S3) endpoints, the region and the fake
credentials, the table, queue and bucket names and the template parameters the functions
were resolved with. ``contacts-api-key``
and ``make invoke`` read it (:func:`find_state`) when no AWS configuration is given.

A state file whose process is gone, or whose DynamoDB Local does not accept connections,
is stale and ignored.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from devstack.dynamodb_local import REPO_ROOT
from devstack.runner import FAKE_AWS

STATE_DIR = REPO_ROOT / ".dev"
STATE_NAME = "stack.json"
ENV_NAME = "env.json"  # SAM CLI --env-vars file, for `sam local` in Docker
CONTAINER_HOST = "host.docker.internal"  # the host, seen from a container
STATE_ENV = "CONTACTS_DEV_STATE"  # optional: path of another state file


class NoLocalStack(LookupError):
    """No running local stack was found (no state file, or a stale one)."""


def state_path(state_dir: Path = STATE_DIR) -> Path:
    """``<state_dir>/stack.json``."""
    return Path(state_dir) / STATE_NAME


def local_endpoints(state: dict[str, Any]) -> dict[str, str]:
    """boto3's endpoint variables for the stack: DynamoDB Local, and its moto server for
    SQS, KMS, Secrets Manager and S3."""
    moto = state["sqs_endpoint"]
    return {"AWS_ENDPOINT_URL_DYNAMODB": state["dynamodb_endpoint"],
            "AWS_ENDPOINT_URL_SQS": moto, "AWS_ENDPOINT_URL_KMS": moto,
            "AWS_ENDPOINT_URL_SECRETS_MANAGER": moto, "AWS_ENDPOINT_URL_S3": moto}


def local_references(state: dict[str, Any]) -> dict[str, str]:
    """What template references become locally: queue logical id → URL, KMS key → key id,
    secret → ARN, bucket → bucket name."""
    return {**state["queues"], **state.get("keys", {}), **state.get("secrets", {}),
            **state.get("buckets", {})}


def aws_environment(state: dict[str, Any]) -> dict[str, str]:
    """Variables that point boto3 at the stack's endpoints with its fake credentials."""
    return {
        **local_endpoints(state),
        "AWS_ACCESS_KEY_ID": state["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": state["aws_secret_access_key"],
        "AWS_REGION": state["region"],
        "AWS_DEFAULT_REGION": state["region"],
    }


def use_local_stack() -> dict[str, Any]:
    """Point this process's boto3 at the running local stack (its endpoints and fake
    credentials, no profile or session token); returns its state.

    Raises:
        NoLocalStack: none is running.
    """
    state = find_state()
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        os.environ.pop(name, None)
    os.environ.update(aws_environment(state))
    return state


def container_url(url: str, host: str = CONTAINER_HOST) -> str:
    """``url`` with its loopback host replaced by ``host`` (how a container reaches it)."""
    for loopback in ("127.0.0.1", "localhost"):
        url = url.replace(f"//{loopback}:", f"//{host}:")
    return url


def sam_env_vars(functions: dict[str, dict[str, str]], state: dict[str, Any],
                 host: str = CONTAINER_HOST) -> dict[str, dict[str, str]]:
    """The ``sam local invoke/start-api --env-vars`` document for the stack in ``state``.

    ``functions`` maps each function's logical id to its template environment (parameters
    resolved as the local stack resolves them). Each function gets every one of its
    variables, queue (key, secret, bucket) references as their local values and the
    endpoint variables (``DYNAMODB_ENDPOINT_URL``, ``SQS_ENDPOINT_URL``, ``KMS_ENDPOINT_URL``,
    ``SECRETS_MANAGER_ENDPOINT_URL``, ``S3_ENDPOINT_URL``) pointing at the stack from a
    container (presigned S3 URLs made there name that host too);
    ``Parameters`` (what SAM applies to every function) holds the endpoints too.
    """
    queues = {lid: container_url(url, host) for lid, url in local_references(state).items()}
    moto = container_url(state["sqs_endpoint"], host)  # SQS, KMS, Secrets Manager, S3
    endpoints = {"DYNAMODB_ENDPOINT_URL": container_url(state["dynamodb_endpoint"], host),
                 "SQS_ENDPOINT_URL": moto, "KMS_ENDPOINT_URL": moto,
                 "SECRETS_MANAGER_ENDPOINT_URL": moto, "S3_ENDPOINT_URL": moto}
    document: dict[str, dict[str, str]] = {"Parameters": dict(endpoints)}
    for name, variables in sorted(functions.items()):
        resolved = {key: queues.get(value, value) for key, value in variables.items()}
        document[name] = resolved | {k: v for k, v in endpoints.items() if k in resolved}
    return document


def write_state(path: Path, info: dict[str, Any]) -> Path:
    """Write ``info`` (plus this process id, region and fake credentials) atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {"pid": os.getpid(), "region": FAKE_AWS["region"],
                "aws_access_key_id": FAKE_AWS["key"],
                "aws_secret_access_key": FAKE_AWS["secret"], **info}
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(document, indent=2) + "\n")
    tmp.replace(path)
    return path


def remove_state(path: Path) -> None:
    """Delete the state file and ``env.json`` beside it if this process wrote them (another
    stack's stay)."""
    path = Path(path)
    try:
        if json.loads(path.read_text()).get("pid") == os.getpid():
            path.unlink()
            path.with_name(ENV_NAME).unlink(missing_ok=True)
    except (OSError, ValueError):
        pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _listening(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), 1):
            return True
    except OSError:
        return False


def read_live_state(path: Path) -> dict[str, Any]:
    """The state in ``path`` (with ``path`` added) if its stack is running.

    Raises:
        NoLocalStack: missing, unreadable or stale (process gone, DynamoDB Local down).
    """
    try:
        state = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise NoLocalStack(f"{path}: not found") from None
    except (OSError, ValueError) as exc:
        raise NoLocalStack(f"{path}: unreadable ({exc})") from None
    if not _alive(int(state.get("pid", 0))):
        raise NoLocalStack(f"{path}: stale (process {state.get('pid')} is gone)")
    if not _listening(state["dynamodb_endpoint"]):
        raise NoLocalStack(f"{path}: DynamoDB Local at {state['dynamodb_endpoint']} is down")
    return {**state, "path": str(path)}


def candidate_paths(cwd: Path | None = None) -> list[Path]:
    """Where a state file is looked for: ``$CONTACTS_DEV_STATE``, else ``./.dev/stack.json``
    then the repository's ``.dev/stack.json``."""
    if os.environ.get(STATE_ENV):
        return [Path(os.environ[STATE_ENV])]
    here = state_path(Path(cwd or Path.cwd()) / ".dev")
    return list(dict.fromkeys([here, state_path()]))


def find_state(cwd: Path | None = None) -> dict[str, Any]:
    """The state of the running local stack (with ``path``: the file it came from).

    Raises:
        NoLocalStack: no state file, or only stale ones (process gone, DynamoDB Local down).
    """
    reasons = []
    for path in candidate_paths(cwd):
        try:
            return read_live_state(path)
        except NoLocalStack as exc:
            reasons.append(str(exc))
    raise NoLocalStack("no running local stack (start it with `make dev`): "
                       + "; ".join(reasons))
