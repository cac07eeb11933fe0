"""The cold start's pause of cyclic garbage collection (:mod:`contacts_core.runtime`).

Each case runs in a fresh interpreter, as a Lambda execution environment starts: with
``_HANDLER`` set (Lambda's runtime sets it) or not (tests, tools), it imports the layer,
then invokes a handler decorated with :func:`contacts_core.observability.observed` twice.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

LAYER = Path(__file__).resolve().parents[2] / "layers" / "contacts_core"

COLD_START = """
import gc, json, sys
sys.path.insert(0, sys.argv[1])
import contacts_core
from contacts_core.observability import observed

seen = {"after_import": gc.isenabled()}

@observed
def handler(event, context):
    seen.setdefault("during_first", gc.isenabled())
    if event.get("fail"):
        raise RuntimeError("the handler failed")
    return "ok"

class Context:
    function_name = "test"
    memory_limit_in_mb = 128
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:test"
    aws_request_id = "test-request"

try:
    handler({"fail": sys.argv[2] == "fail"}, Context())
except RuntimeError:
    pass
seen["after_first"] = gc.isenabled()
seen["frozen"] = gc.get_freeze_count()
handler({}, Context())
seen["after_second"] = gc.isenabled()
print(json.dumps(seen))
"""


def cold_start(handler_setting: str | None, first: str = "ok") -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k != "_HANDLER"}
    env |= {"AWS_DEFAULT_REGION": "us-east-1", "POWERTOOLS_TRACE_DISABLED": "true"}
    if handler_setting is not None:
        env["_HANDLER"] = handler_setting
    out = subprocess.run([sys.executable, "-c", COLD_START, str(LAYER), first],
                         capture_output=True, text=True, env=env, check=True, timeout=120)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize("first", ["ok", "fail"])
def test_inside_lambda_collection_is_off_until_the_first_invocation_ends(first: str) -> None:
    # Given a Lambda execution environment (_HANDLER set), When the layer is imported and
    # the first invocation runs (returning or raising)
    seen = cold_start("app.handler", first)
    # Then collection was off from the import through the first invocation
    assert seen["after_import"] is False
    assert seen["during_first"] is False
    # And it is on again after it, with what the cold start built frozen, and stays on
    assert seen["after_first"] is True
    assert seen["frozen"] > 0
    assert seen["after_second"] is True


def test_outside_lambda_nothing_changes() -> None:
    # Given no _HANDLER (a test run, a tool), When the layer is imported and a handler runs
    seen = cold_start(None)
    # Then collection is never switched off, and nothing is frozen
    assert seen == {"after_import": True, "during_first": True, "after_first": True,
                    "frozen": 0, "after_second": True}
