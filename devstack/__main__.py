"""``contacts-dev`` / ``python -m devstack``: run the Docker-free local stack (SPEC §8).

Builds with ``sam build --cached`` (unless ``--no-build``), starts DynamoDB Local
and SAM CLI's local API Gateway with warm worker processes, mints a dev API key,
prints how to call the API and serves until Ctrl-C or SIGTERM, then stops every
process it started.
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
from devstack.stack import LocalStack, StackConfig


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (see ``--help``)."""
    parser = argparse.ArgumentParser(
        prog="contacts-dev",
        description="Run the Docker-free local stack: DynamoDB Local + SAM CLI local API.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="API listen address (127.0.0.1)")
    parser.add_argument("--port", type=int, default=3000, help="API port (3000; 0 = any free)")
    parser.add_argument(
        "--ddb-port", type=int, default=8000, help="DynamoDB Local port (8000; 0 = any free)"
    )
    parser.add_argument(
        "--persist", metavar="PATH", help="DynamoDB Local data directory (default: in memory)"
    )
    parser.add_argument("--no-build", action="store_true", help="skip `sam build`")
    parser.add_argument(
        "--ready-file", metavar="PATH", type=Path,
        help="write JSON {base_url, api_key, dynamodb_endpoint, org_id, cursor_secret} "
        "once serving",
    )
    parser.add_argument("--cursor-secret", help="CursorSecret parameter (default: random)")
    parser.add_argument("--org", default="org_dev", help="org of the dev API key (org_dev)")
    parser.add_argument(
        "--concurrency", type=int, default=4,
        help="warm worker processes per function; more concurrent calls wait (4)",
    )
    return parser.parse_args(argv)


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


def _banner(stack: LocalStack) -> str:
    url = stack.base_url
    routes = "\n".join(
        f"  {','.join(r.methods):<7} {url}{r.path}"
        for r in (stack.server.routes if stack.server else [])
    )
    return (
        f"\nContacts API (local) at {url}\n{routes}\n"
        f"DynamoDB Local at {stack.dynamodb_endpoint} (tables: {', '.join(stack.tables)})\n"
        f"Dev API key for org {stack.config.org_id!r}:\n  {stack.api_key}\n"
        f"Try:\n  curl -H \"Authorization: Bearer {stack.api_key}\" {url}/v1/contacts\n"
        "Press Ctrl-C to stop.\n"
    )


def main(argv: list[str] | None = None) -> int:
    """Run the stack until interrupted; returns the exit status (0 after a clean stop)."""
    args = parse_args(argv)
    os.environ.setdefault("SAM_CLI_TELEMETRY", "0")
    stopping = _install_signal_handlers()
    config = StackConfig(
        host=args.host, port=args.port, ddb_port=args.ddb_port or None, persist=args.persist,
        build=not args.no_build, cursor_secret=args.cursor_secret, org_id=args.org,
        max_concurrency=args.concurrency,
    )
    stack = LocalStack(config)
    status = 0
    try:
        stack.start()
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
    print("devstack: stopped", file=sys.stderr, flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
