"""Benchmark: each handler's cold start (import + first call) against a floor, as a ratio.

A Lambda cold start runs the function's module imports, then its first invocation. Here
each measurement is a fresh Python process (so nothing is imported yet; the interpreter's
own start is left out on both sides): the clock starts before the first import and stops
when the first call returns. The floor is the least any function of ours must do:
``import boto3`` and create a DynamoDB client. Handlers run with their template.yaml
environment against a DynamoDB Local started here, on events from ``events/``; each side
runs ``--rounds`` times and medians are compared. Goal: every ratio ≤ 1.4 (issue 11).

    .venv/bin/python bench/cold_start.py [--rounds 7]     (or: make bench-cold-start)
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.bulk_upsert import environment  # noqa: E402
from devstack.dynamodb_local import DynamoDBLocal  # noqa: E402
from devstack.tables import create_tables, load_template  # noqa: E402

GOAL = 1.4
# One process = one cold start. argv: "floor" | code dir, event file.
PROBE = r"""
import json, sys, time
started = time.perf_counter()
if sys.argv[1] == "floor":
    import boto3
    boto3.client("dynamodb")
else:
    sys.path.insert(0, sys.argv[1])
    import app

    class Context:
        function_name = "bench"
        memory_limit_in_mb = 512
        invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench"
        aws_request_id = "bench"

        def get_remaining_time_in_millis(self):
            return 10_000

    with open(sys.argv[2]) as f:
        app.handler(json.load(f), Context())
print(json.dumps({"seconds": time.perf_counter() - started}))
"""


def _events(tmp: Path) -> dict[str, Path]:
    """Function logical id → an event file for its first call (from ``events/``)."""
    events = REPO / "events"
    http = json.loads((events / "http_api_proxy.json").read_text())

    def route(name: str, method: str, path: str, params: dict[str, str] | None,
              body: Any = None) -> Path:
        event = copy.deepcopy(http)
        event["routeKey"] = event["requestContext"]["routeKey"] = f"{method} {path}"
        event["requestContext"]["http"]["method"] = method
        event["rawPath"] = event["requestContext"]["http"]["path"] = path.format(**params or {})
        event["pathParameters"] = params
        event["body"] = json.dumps(body) if body is not None else None
        target = tmp / f"{name}.json"
        target.write_text(json.dumps(event))
        return target

    return {
        "AuthorizerFunction": events / "authorizer_request_v2.json",
        "GetContactFunction": route("get", "GET", "/v1/contacts/{id}",
                                    {"id": "con_01JD8Q2M6W3YQ0V4C7N5T9KX2B"}),
        "UpsertContactFunction": route("upsert", "POST", "/v1/contacts/upsert", None,
                                       {"phone": "+27821234567", "first_name": "Sam"}),
        "ListContactsFunction": route("list", "GET", "/v1/contacts", None),
        "EmitWebhooksFunction": events / "dynamodb_stream_contacts.json",
    }


def _code_dirs() -> dict[str, Path]:
    resources = load_template(REPO / "template.yaml")["Resources"]
    return {name: REPO / str(r["Properties"]["CodeUri"]) for name, r in resources.items()
            if r.get("Type") == "AWS::Serverless::Function" and "CodeUri" in r["Properties"]}


def _once(args: list[str]) -> float:
    out = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True,
                         env=os.environ, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{args}: {out.stderr[-2000:]}")
    return float(json.loads(out.stdout.strip().splitlines()[-1])["seconds"])


def _median(args: list[str], rounds: int) -> float:
    return statistics.median(_once(args) for _ in range(rounds))


def main(argv: list[str] | None = None) -> int:
    """Print one line per handler: median ms, floor ms, ratio; exit 0 (a report)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    with DynamoDBLocal() as ddb, tempfile.TemporaryDirectory() as tmp:
        create_tables(REPO / "template.yaml", ddb.endpoint_url)
        environment(ddb.endpoint_url)
        os.environ["POWERTOOLS_TRACE_DISABLED"] = "true"  # no X-Ray daemon here
        code = _code_dirs()
        floor = _median(["floor"], args.rounds)
        print(f"floor (import boto3 + DynamoDB client): {floor * 1000:.0f} ms "
              f"(median of {args.rounds})")
        worst = 0.0
        for function_id, event in _events(Path(tmp)).items():
            took = _median([str(code[function_id]), str(event)], args.rounds)
            ratio = took / floor
            worst = max(worst, ratio)
            print(f"{function_id:24} {took * 1000:6.0f} ms  {ratio:4.2f}x floor"
                  f"{'' if ratio <= GOAL else f'  (goal {GOAL}x)'}")
        print(f"worst ratio {worst:.2f}x (goal ≤ {GOAL}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
