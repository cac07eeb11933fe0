"""Benchmark: 1000 new contacts through the bulk endpoint vs raw BatchWriteItem.

Both run in the same process against the same DynamoDB Local, so the ratio cancels out
the machine. The floor writes the same 1000 contact items with plain ``BatchWriteItem``
(25 per call, no guards, no validation); the bulk endpoint's handler validates, reads
guards and writes contacts + guards in transactions. Each side runs ``--rounds`` times on
fresh orgs; medians are compared.

    .venv/bin/python bench/bulk_upsert.py [--rounds 5]     (or: make bench)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from devstack.dynamodb_local import DynamoDBLocal  # noqa: E402
from devstack.tables import create_tables, load_template  # noqa: E402

N = 1000


def contacts(tag: str) -> list[dict[str, Any]]:
    return [{"phone": f"+2782{i:07d}", "email": f"p{i}.{tag}@example.com",
             "first_name": f"Person{i}", "tags": ["bench"]} for i in range(N)]


def environment(endpoint: str) -> None:
    template = load_template(REPO / "template.yaml")
    for resource in template["Resources"].values():
        if resource.get("Type") == "AWS::Serverless::Function":
            variables = (resource["Properties"].get("Environment") or {}).get("Variables", {})
            os.environ.update({k: str(v) for k, v in variables.items()})
    os.environ.update({"AWS_ENDPOINT_URL_DYNAMODB": endpoint, "AWS_ACCESS_KEY_ID": "bench",
                       "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1",
                       "POWERTOOLS_LOG_LEVEL": "WARNING"})


def floor(client: Any, items: list[dict[str, Any]]) -> float:
    """Seconds to write ``items`` with BatchWriteItem, 25 per call, retrying unprocessed."""
    from contacts_core.contacts.changes import ContactChanges
    from contacts_core.contacts.requests import ContactUpsert
    from contacts_core.dynamodb import serialize

    org = f"org_{uuid.uuid4().hex[:8]}"
    rows = [serialize(ContactChanges.from_request(ContactUpsert.model_validate(i))
                      .new_item(org).model_dump()) for i in items]
    table = os.environ["CONTACTS_TABLE"]
    started = time.perf_counter()
    for start in range(0, len(rows), 25):
        request = {table: [{"PutRequest": {"Item": r}} for r in rows[start:start + 25]]}
        while request:
            request = client.batch_write_item(RequestItems=request).get("UnprocessedItems")
    return time.perf_counter() - started


class _Context:
    function_name = "bench"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench"
    aws_request_id = "bench"


def through_endpoint(handler: Any, event: dict[str, Any], items: list[dict[str, Any]]) -> float:
    """Seconds for the bulk function's handler to upsert ``items`` for a fresh org."""
    event = json.loads(json.dumps(event))
    event["requestContext"]["authorizer"]["lambda"]["org_id"] = f"org_{uuid.uuid4().hex[:8]}"
    event["body"] = json.dumps({"contacts": items})
    started = time.perf_counter()
    result = handler(event, _Context())
    elapsed = time.perf_counter() - started
    body = json.loads(result["body"])
    assert result["statusCode"] == 200 and body["created"] == N, body.get("failed")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with DynamoDBLocal() as ddb:
        create_tables(REPO / "template.yaml", ddb.endpoint_url)
        environment(ddb.endpoint_url)
        import importlib.util

        from contacts_core.dynamodb import dynamodb_client

        spec = importlib.util.spec_from_file_location(
            "bulk_app", REPO / "functions" / "bulk_upsert_contacts" / "app.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        event = json.loads((REPO / "events" / "http_api_proxy.json").read_text())
        event["requestContext"]["http"]["method"] = "POST"
        event["rawPath"] = event["requestContext"]["http"]["path"] = "/v1/contacts/bulk"
        event["pathParameters"] = None
        client = dynamodb_client()
        floor(client, contacts("warmup"))  # JIT-warm DynamoDB Local and the client
        floors, bulks = [], []
        for round_no in range(args.rounds):
            floors.append(floor(client, contacts(f"f{round_no}")))
            bulks.append(through_endpoint(module.handler, event, contacts(f"b{round_no}")))
    f, b = statistics.median(floors), statistics.median(bulks)
    print(f"raw BatchWriteItem of {N} contacts: median {f * 1000:.0f} ms over {args.rounds}")
    print(f"bulk endpoint, {N} new contacts:   median {b * 1000:.0f} ms over {args.rounds}")
    print(f"ratio bulk / floor: {b / f:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
