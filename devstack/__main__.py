"""``contacts-dev`` / ``python -m devstack``: run the Docker-free local stack (SPEC §8).

Builds with ``sam build --cached`` (unless ``--no-build``), starts DynamoDB Local,
moto (SQS, KMS, Secrets Manager, S3) and SAM CLI's local API Gateway with warm worker
processes, polls the template's event source mappings (streams -> webhooks -> SQS ->
signed deliveries) and delivers its buckets' notifications (CSV uploads -> imports),
mints a dev API key, writes ``.dev/stack.json`` (how ``contacts-api-key`` and ``make invoke``
find the stack) and ``.dev/env.json`` (``sam local --env-vars``; see :mod:`devstack.state`),
prints how to call the API and watch webhooks, and serves until Ctrl-C or SIGTERM, then
stops every process and thread it started and removes the two files.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from types import FrameType

from devstack.dynamodb_local import DynamoDBLocalError
from devstack.stack import DEFAULT_WEBHOOK_RETRY_DELAYS, LocalStack, StackConfig, parse_retry_delays
from devstack.state import (
    ENV_NAME,
    STATE_DIR,
    STATE_ENV,
    NoLocalStack,
    read_live_state,
    remove_state,
    sam_env_vars,
    state_path,
    write_state,
)

RECEIVER_PORT = 4000


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (see ``--help``)."""
    parser = argparse.ArgumentParser(
        prog="contacts-dev",
        description="Run the Docker-free local stack: DynamoDB Local, SQS (moto), SAM CLI's "
        "local API and the template's event source mappings (webhooks).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="API listen address (127.0.0.1)")
    parser.add_argument("--port", type=int, default=3000, help="API port (3000; 0 = any free)")
    parser.add_argument(
        "--ddb-port", type=int, default=8000, help="DynamoDB Local port (8000; 0 = any free)"
    )
    parser.add_argument(
        "--sqs-port", type=int, default=0, help="SQS (moto) port (default 0 = any free)"
    )
    parser.add_argument(
        "--persist", metavar="PATH", help="DynamoDB Local data directory (default: in memory)"
    )
    parser.add_argument(
        "--webhook-retry-delays", metavar="SECONDS", type=_retry_delays,
        default=DEFAULT_WEBHOOK_RETRY_DELAYS,
        help="seconds before each retry of a failed webhook delivery, comma-separated; "
        f"dead-lettered after the last ({DEFAULT_WEBHOOK_RETRY_DELAYS}; AWS default: minutes)",
    )
    parser.add_argument("--no-build", action="store_true", help="skip `sam build`")
    parser.add_argument(
        "--ready-file", metavar="PATH", type=Path,
        help="write JSON {base_url, api_key, dynamodb_endpoint, sqs_endpoint, queues, org_id, "
        "keys, secrets, buckets} once serving",
    )
    parser.add_argument(
        "--state-dir", metavar="DIR", type=Path, default=STATE_DIR,
        help="where to write stack.json (how contacts-api-key and `make invoke` find this "
        "stack) and env.json (for `sam local ... --env-vars`); default .dev",
    )
    parser.add_argument("--no-state", action="store_true", help="write neither file")
    parser.add_argument("--org", default="org_dev", help="org of the dev API key (org_dev)")
    parser.add_argument(
        "--concurrency", type=int, default=4,
        help="warm worker processes per function; more concurrent calls wait (4). A function "
        "fed by SQS gets at least one per poller of its mappings (template.yaml's "
        "ScalingConfig.MaximumConcurrency, else 5)",
    )
    return parser.parse_args(argv)


def _retry_delays(value: str) -> str:
    try:
        return parse_retry_delays(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


class _Stop(Exception):
    """Raised in the main thread by SIGINT/SIGTERM."""


def _install_signal_handlers() -> threading.Event:
    stopping = threading.Event()

    def handler(signum: int, _frame: FrameType | None) -> None:
        if stopping.is_set():
            return  # already shutting down; let it finish
        stopping.set()
        raise _Stop(signal.Signals(signum).name)

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return stopping


def _python() -> str:
    """How to call this interpreter in a shell: ``.venv/bin/python`` when it is in the cwd."""
    exe = Path(sys.executable)
    try:
        return str(exe.relative_to(Path.cwd()))
    except ValueError:
        return str(exe)


_SOURCE_KINDS = {"DynamoDB": "stream", "SQS": "queue", "S3": "bucket notifications"}


def _banner(stack: LocalStack) -> str:
    url, key = stack.base_url, stack.api_key
    routes = "\n".join(
        f"  {','.join(r.methods):<7} {url}{r.path}"
        for r in (stack.server.routes if stack.server else [])
    )
    sources = "\n".join(
        f"  {m.source} {_SOURCE_KINDS.get(m.kind, m.kind)} -> {m.function_id}"
        for m in stack.mappings
    )
    receiver = f"http://127.0.0.1:{RECEIVER_PORT}/"
    register = json.dumps({"url": receiver, "events": ["*"]})
    return (
        f"\nContacts API (local) at {url}\n{routes}\n"
        f"DynamoDB Local at {stack.dynamodb_endpoint} (tables: {', '.join(stack.tables)})\n"
        f"SQS (moto) at {stack.sqs_endpoint} (queues: {', '.join(stack.queues)})\n"
        f"KMS and Secrets Manager (moto) at the same endpoint (keys: {', '.join(stack.keys)};"
        f" secrets: {', '.join(stack.secrets)})\n"
        f"S3 (moto, path-style) at the same endpoint (buckets: "
        f"{', '.join(stack.buckets.values())})\n"
        f"Event sources:\n{sources}\n"
        f"Dev API key for org {stack.config.org_id!r}:\n  {key}\n"
        f"Try:\n  curl -H \"Authorization: Bearer {key}\" {url}/v1/contacts\n"
        f"API reference (no key needed): {url}/docs\n"
        f"Watch webhooks (failed deliveries retry after {stack.config.webhook_retry_delays} s,"
        " then go to the dead-letter queue):\n"
        f"  1. register {receiver} as an endpoint; the answer holds its secret (whsec_...):\n"
        f"     curl -X POST {url}/v1/webhook-endpoints -H \"Authorization: Bearer {key}\" "
        f"-H 'Content-Type: application/json' -d '{register}'\n"
        "  2. in another terminal, print every verified event:\n"
        f"     {_python()} -m devstack.receiver --secret <whsec_... from step 1> "
        f"--port {RECEIVER_PORT}\n"
        "Press Ctrl-C to stop.\n"
    )


def _write_state(stack: LocalStack, state_dir: Path) -> Path | None:
    """Write ``stack.json`` for the tools, unless another running stack owns it."""
    path = state_path(state_dir)
    try:
        other = read_live_state(path)
    except NoLocalStack:
        other = None
    if other is not None and other.get("pid") != os.getpid():
        print(f"devstack: {path} belongs to the stack of process {other['pid']}; tools keep "
              f"using that one (or set {STATE_ENV})", file=sys.stderr, flush=True)
        return None
    state = stack.state_info()
    write_state(path, state)
    env_file = path.with_name(ENV_NAME)
    env_file.write_text(json.dumps(sam_env_vars(stack.function_environments(), state),
                                   indent=2) + "\n")
    print(f"devstack: wrote {path} (contacts-api-key and `make invoke` use it) and {env_file} "
          "(sam local invoke/start-api --env-vars, with Docker)", flush=True)
    return path


def main(argv: list[str] | None = None) -> int:
    """Run the stack until interrupted; returns the exit status (0 after a clean stop)."""
    args = parse_args(argv)
    os.environ.setdefault("SAM_CLI_TELEMETRY", "0")
    stopping = _install_signal_handlers()
    config = StackConfig(
        host=args.host, port=args.port, ddb_port=args.ddb_port or None,
        sqs_port=args.sqs_port or None, persist=args.persist, build=not args.no_build,
        org_id=args.org, max_concurrency=args.concurrency,
        webhook_retry_delays=args.webhook_retry_delays,
    )
    stack = LocalStack(config)
    status = 0
    state_file: Path | None = None
    try:
        stack.start()
        state_file = None if args.no_state else _write_state(stack, args.state_dir)
        print(_banner(stack), flush=True)
        if args.ready_file:
            tmp = args.ready_file.with_name(args.ready_file.name + ".tmp")
            tmp.write_text(json.dumps(stack.ready_info(), indent=2))
            tmp.replace(args.ready_file)
        stopping.wait()
    except _Stop as sig:
        print(f"\ndevstack: {sig}, stopping...", file=sys.stderr, flush=True)
    except (DynamoDBLocalError, FileNotFoundError, subprocess.CalledProcessError, OSError) as exc:
        print(f"devstack: error: {exc}", file=sys.stderr, flush=True)
        status = 1
    finally:
        stopping.set()
        stack.stop()
        if args.ready_file:
            args.ready_file.unlink(missing_ok=True)
        if state_file is not None:
            remove_state(state_file)
    print("devstack: stopped", file=sys.stderr, flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
