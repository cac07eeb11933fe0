"""Benchmark: each handler's cold start (import + first call) against a floor, as a ratio.

A Lambda cold start runs the function's module imports, then its first invocation. Here
each measurement is a fresh Python process (so nothing is imported yet; the interpreter's
own start is left out on both sides): the clock starts before the first import and stops
when the first call returns. The floor, as issue 11 defines it: ``import boto3`` and create
a DynamoDB client, what any function written the usual way does first (ours create their
clients with botocore alone, a little less: ``contacts_core.aws``). Goal: every ratio ≤ 1.4.

A second reference, "libraries", adds what the project's rules put on every API function's
path besides boto3: pydantic (SPEC §1, §4: request validation and the OpenAPI document come
from pydantic models) with one small model validated and dumped, and a Powertools Logger.
Its own ratio to the floor shows what those libraries cost before any code of ours runs;
the column "ours" (cold / libraries) shows what our code adds on top of them. A third,
"botocore", is the floor's client made the way our functions make theirs (a botocore session,
no ``import boto3``: ``contacts_core.aws``).

Handlers run with their template.yaml environment against a DynamoDB Local started here,
and a moto server for KMS, Secrets Manager (the cursor key ring) and SQS
(:mod:`bench.local_aws`). Each first call takes the path a real one takes, and is checked:
the authorizer allows a minted API key; GET finds a stored contact (200); the upsert
answers 200/201; the list signs a next-page cursor (200); the emitter's stream record has a
subscribed webhook endpoint, so it reads endpoints and sends to SQS (no failed record).

Rounds interleave the floor and every handler, so a change in the machine's load hits all
of them alike; medians are compared. Code and bytecode as on Lambda: each handler runs
from the ``sam build`` output (its function directory, then the layer's ``python``
directory, first on ``sys.path``), and no probe may write bytecode
(``PYTHONDONTWRITEBYTECODE``), as on Lambda's read-only mounts: the handlers read only the
``.pyc`` files the build ships (``make build`` compiles them, :mod:`devstack.bytecode`),
the floor reads boto3's compiled by pip, as the runtime's boto3 is. Run ``make build``
first (``make bench-cold-start`` does).

    .venv/bin/python bench/cold_start.py [--rounds 15]     (or: make bench-cold-start)
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
TEMPLATE = REPO / "template.yaml"
BUILD = REPO / ".aws-sam" / "build"
sys.path.insert(0, str(REPO))

from bench.bulk_upsert import environment  # noqa: E402
from bench.local_aws import local_aws  # noqa: E402
from devstack.dynamodb_local import DynamoDBLocal  # noqa: E402
from devstack.tables import create_tables, load_template  # noqa: E402

GOAL = 1.4
REFERENCES = ("floor", "botocore", "libraries")
ORG = "org_example"  # the org of the events in events/
# One process = one cold start. argv: "floor" | "botocore" | "libraries" | code dir, event file.
# Prints the seconds and the first call's result. Packages that the virtualenv has (for
# aws-sam-cli and moto) but Lambda's Python runtime does not are hidden, so boto3 imports
# as it does there: the AWS Common Runtime (awscrt; botocore goes without it) and pyOpenSSL
# (which botocore would import, with cryptography, for urllib3's pyopenssl module).
PROBE = r"""
import json, sys, time
sys.modules["awscrt"] = sys.modules["OpenSSL"] = None
waited = 0.0
started = time.perf_counter()
if sys.argv[1] == "botocore":
    import botocore.session
    imported = time.perf_counter()
    botocore.session.get_session().create_client("dynamodb")
    result = None
elif sys.argv[1] in ("floor", "libraries"):
    import boto3
    imported = time.perf_counter()
    boto3.client("dynamodb")
    result = None
    if sys.argv[1] == "libraries":
        from aws_lambda_powertools import Logger
        from pydantic import BaseModel

        class Probe(BaseModel):
            value: int
            note: str | None = None

        Logger(service="bench")
        result = Probe.model_validate({"value": 1}).model_dump_json()
else:
    sys.path[0:0] = [sys.argv[1], sys.argv[3]]
    import app
    imported = time.perf_counter()
    import socket

    receive = socket.socket.recv_into

    def timed_receive(self, *args, **kwargs):
        global waited
        began = time.perf_counter()
        try:
            return receive(self, *args, **kwargs)
        finally:
            waited += time.perf_counter() - began

    socket.socket.recv_into = timed_receive

    class Context:
        function_name = "bench"
        memory_limit_in_mb = 512
        invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench"
        aws_request_id = "bench"

        def get_remaining_time_in_millis(self):
            return 10_000

    with open(sys.argv[2]) as f:
        result = app.handler(json.load(f), Context())
print(json.dumps({"seconds": time.perf_counter() - started, "import": imported - started,
                  "waited": waited, "result": result}))
"""


def _seed() -> dict[str, str]:
    """What the first calls need in the tables: an API key, a contact, a webhook endpoint
    (subscribed to everything) for :data:`ORG`. Returns ``{"key", "contact_id"}``."""
    from contacts_core.auth import mint_api_key
    from contacts_core.contacts.operations import create_contact
    from contacts_core.contacts.requests import ContactCreate
    from contacts_core.webhooks.endpoints import create_endpoint
    from contacts_core.webhooks.models import EndpointCreate

    contact = create_contact(ORG, ContactCreate(phone="+27820000001", first_name="Bench"))
    create_endpoint(ORG, EndpointCreate.model_validate(
        {"url": "https://hooks.example.com/bench", "events": ["*"]}))
    return {"key": mint_api_key(ORG, "bench"), "contact_id": contact.id}


def _events(tmp: Path, seeded: dict[str, str]) -> dict[str, Path]:
    """Function logical id → an event file for its first call (from ``events/``)."""
    events = REPO / "events"
    http = json.loads((events / "http_api_proxy.json").read_text())
    authorizer = json.loads((events / "authorizer_request_v2.json").read_text())
    authorizer["headers"]["authorization"] = f"Bearer {seeded['key']}"
    authorizer["identitySource"] = [f"Bearer {seeded['key']}"]

    def write(name: str, event: dict[str, Any]) -> Path:
        target = tmp / f"{name}.json"
        target.write_text(json.dumps(event))
        return target

    def route(name: str, method: str, path: str, params: dict[str, str] | None,
              body: Any = None, query: dict[str, str] | None = None) -> Path:
        event = copy.deepcopy(http)
        event["routeKey"] = event["requestContext"]["routeKey"] = f"{method} {path}"
        event["requestContext"]["http"]["method"] = method
        event["rawPath"] = event["requestContext"]["http"]["path"] = path.format(**params or {})
        event["pathParameters"] = params
        event["queryStringParameters"] = query
        event["body"] = json.dumps(body) if body is not None else None
        return write(name, event)

    return {
        "AuthorizerFunction": write("authorizer", authorizer),
        "GetContactFunction": route("get", "GET", "/v1/contacts/{id}",
                                    {"id": seeded["contact_id"]}),
        "UpsertContactFunction": route("upsert", "POST", "/v1/contacts/upsert", None,
                                       {"phone": "+27821234567", "first_name": "Sam"}),
        # limit=1 of the two contacts: the page has a next_cursor, signed with the key ring
        "ListContactsFunction": route("list", "GET", "/v1/contacts", None,
                                      query={"limit": "1"}),
        "EmitWebhooksFunction": events / "dynamodb_stream_contacts.json",
    }


def _check(function_id: str, result: Any) -> None:
    """Raise unless the first call did what a real one does (see the module doc)."""
    if function_id == "AuthorizerFunction":
        ok = result.get("isAuthorized") is True
    elif function_id == "EmitWebhooksFunction":
        ok = result == {"batchItemFailures": []}
    else:
        ok = result.get("statusCode") in (200, 201)
        if ok and function_id == "ListContactsFunction":
            ok = json.loads(result["body"]).get("next_cursor") is not None
    if not ok:
        raise RuntimeError(f"{function_id}: unexpected first call result {result!r}")


def _code_dirs() -> tuple[dict[str, Path], Path, dict[str, str]]:
    """Each function's directory in the ``sam build`` output, the layer's ``python``, and
    each function's handler setting (``app.handler``)."""
    template = load_template(BUILD / "template.yaml")
    built = template["Resources"]
    default = template.get("Globals", {}).get("Function", {}).get("Handler", "app.handler")
    functions = {name: r for name, r in built.items()
                 if r.get("Type") == "AWS::Serverless::Function"
                 and "CodeUri" in r["Properties"]}
    return ({name: BUILD / str(r["Properties"]["CodeUri"]) for name, r in functions.items()},
            BUILD / str(built["ContactsCoreLayer"]["Properties"]["ContentUri"]) / "python",
            {name: str(r["Properties"].get("Handler", default)) for name, r in functions.items()})


def _once(args: list[str], env: dict[str, str], python: tuple[str, ...] = ("-c", PROBE)
          ) -> tuple[float, float, float, Any]:
    """(seconds in all, seconds importing, seconds the first call waited for the local AWS
    engines' answers, the first call's result) of one cold start."""
    out = subprocess.run([sys.executable, *python, *args], capture_output=True, text=True,
                         env=env, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{args}: {out.stderr[-2000:]}")
    report = json.loads(out.stdout.strip().splitlines()[-1])
    return (float(report["seconds"]), float(report["import"]), float(report.get("waited", 0)),
            report["result"])


def main(argv: list[str] | None = None) -> int:
    """Print one line per handler: median ms, floor ms, ratio; exit 0 (a report)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--profile", metavar="FUNCTION_ID", help="instead: one cold start of "
                        "FUNCTION_ID (or floor) under cProfile, saved to $TMPDIR/cold_start.prof")
    args = parser.parse_args(argv)
    with DynamoDBLocal() as ddb, tempfile.TemporaryDirectory() as tmp:
        create_tables(TEMPLATE, ddb.endpoint_url)
        environment(ddb.endpoint_url)
        os.environ["POWERTOOLS_TRACE_DISABLED"] = "true"  # no X-Ray daemon here
        with local_aws(TEMPLATE, queues=True):
            env = {k: v for k, v in os.environ.items() if k != "PYTHONPYCACHEPREFIX"}
            env["PYTHONDONTWRITEBYTECODE"] = "1"
            code, layer, handlers = _code_dirs()
            # a handler's process has the variable Lambda's runtime sets: _HANDLER
            probes = {name: ([name], env) for name in REFERENCES} | {
                function_id: ([str(code[function_id]), str(event), str(layer)],
                              env | {"_HANDLER": handlers[function_id]})
                for function_id, event in _events(Path(tmp), _seed()).items()}
            for name, (probe, probe_env) in probes.items():  # warm-up (file cache), check
                *_, result = _once(probe, probe_env)
                if name not in REFERENCES:
                    _check(name, result)
            if args.profile:
                script = Path(tmp) / "probe.py"
                script.write_text(PROBE)
                profile = Path(tempfile.gettempdir()) / "cold_start.prof"
                _once(probes[args.profile][0], probes[args.profile][1],
                      ("-m", "cProfile", "-o", str(profile), str(script)))
                print(f"saved {profile}")
                return 0
            times: dict[str, list[tuple[float, float, float]]] = {name: [] for name in probes}
            for _ in range(args.rounds):
                for name, (probe, probe_env) in probes.items():
                    times[name].append(_once(probe, probe_env)[:3])
    medians = {name: tuple(statistics.median(run[column] for run in runs) for column in range(3))
               for name, runs in times.items()}
    floor, floor_import, _ = medians.pop("floor")
    botocore, *_ = medians.pop("botocore")
    libraries, *_ = medians.pop("libraries")
    print(f"medians of {args.rounds} rounds; import = of that, the module imports; waited = of "
          "that, the first call blocked on DynamoDB Local's (moto's) answers; "
          "ratio = cold / floor; ours = cold / libraries")
    print(f"{'':24} {'cold ms':>8} {'import ms':>10} {'waited ms':>10} {'ratio':>7} {'ours':>6}")
    print(f"{'floor (boto3 + client)':24} {floor * 1000:8.0f} {floor_import * 1000:10.0f}")
    print(f"{'botocore session + client':24} {botocore * 1000:8.0f} {'':21} "
          f"{botocore / floor:6.2f}x")
    print(f"{'libraries (+ pydantic,':24} {libraries * 1000:8.0f} {'':21} "
          f"{libraries / floor:6.2f}x")
    print("   Powertools Logger)")
    worst = 0.0
    for function_id, (took, imported, waited) in medians.items():
        ratio = took / floor
        worst = max(worst, ratio)
        print(f"{function_id:24} {took * 1000:8.0f} {imported * 1000:10.0f} "
              f"{waited * 1000:10.0f} {ratio:6.2f}x"
              f" {took / libraries:5.2f}x{'' if ratio <= GOAL else f'  (goal {GOAL}x)'}")
    print(f"worst ratio {worst:.2f}x (goal ≤ {GOAL}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
