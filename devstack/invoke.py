"""``python -m devstack.invoke FUNCTION EVENT_FILE`` (``make invoke FN=… EVENT=…``): run one
template function once with an event file, Docker-free, and print its result.

The function runs as in the local stack (the same :class:`devstack.runner.ProcessLambdaRunner`
worker: its ``sam build`` folder, the layer and boto3 only on ``sys.path``; its environment
from template.yaml) against the running local stack's DynamoDB Local and SQS, found through
``.dev/stack.json`` (:mod:`devstack.state`), with the stack's template parameters. The code
is this checkout's build (``.aws-sam/build``, which ``make invoke`` brings up to date
first), not the copy the stack took when it started: an edit shows at the next invoke. Without a
running stack it says so and exits 2. The result goes to stdout as JSON; the function's logs
and the REPORT line go to stderr. Exit status 1 when the function fails (its error document
is printed).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from samcli.lib.providers.sam_function_provider import SamFunctionProvider
from samcli.lib.utils.name_utils import InvalidFunctionNameException
from samcli.local.lambdafn.exceptions import FunctionNotFound

from devstack.api import load_stacks
from devstack.dynamodb_local import REPO_ROOT
from devstack.lambda_runtime import ensure_lambda_runtime
from devstack.runner import LambdaFunctionError, ProcessLambdaRunner
from devstack.state import NoLocalStack, find_state, local_endpoints, local_references


class InvokeError(Exception):
    """The invocation could not be made (no stack, no build, unknown function, bad event)."""


CHECKOUT_BUILD = REPO_ROOT / ".aws-sam" / "build"


def invoke(function_id: str, event: Any, state: dict[str, Any],
           log: TextIO | None = None, build_dir: Path = CHECKOUT_BUILD) -> Any:
    """Run ``function_id`` from ``build_dir`` (default: this checkout's ``sam build``
    output) once with ``event`` (a JSON document) against the stack whose ``state`` is
    given; return the function's result.

    Raises:
        InvokeError: no build output or no such function.
        LambdaFunctionError: the function failed.
    """
    built = build_dir / "template.yaml"
    if not built.is_file():
        raise InvokeError(f"{built} missing: run `make build`")
    stacks = load_stacks(built, state["parameters"])
    runner = ProcessLambdaRunner(
        SamFunctionProvider(stacks), ensure_lambda_runtime(),
        extra_env=local_endpoints(state),
        max_concurrency=1, log_stream=log or sys.stderr, cwd=str(build_dir),
        queue_urls=local_references(state))
    try:
        return json.loads(runner.invoke_json(function_id, json.dumps(event)))
    except (FunctionNotFound, InvalidFunctionNameException) as exc:
        names = sorted(f.name for f in runner.provider.get_all())
        raise InvokeError(f"no function {function_id!r} in the template; one of: "
                          f"{', '.join(names)}") from exc
    finally:
        runner.close()


def main(argv: list[str] | None = None) -> int:
    """CLI: 0 when the function returned, 1 when it failed, 2 when it could not run."""
    parser = argparse.ArgumentParser(prog="python -m devstack.invoke",
                                     description=__doc__.splitlines()[0].strip("`"))
    parser.add_argument("function", help="logical id in template.yaml, e.g. GetContactFunction")
    parser.add_argument("event", type=Path, help="event file, e.g. events/http_api_proxy.json")
    args = parser.parse_args(argv)
    try:
        event = json.loads(args.event.read_text())
        state = find_state()
        result = invoke(args.function, event, state)
    except (OSError, ValueError) as exc:
        print(f"invoke: cannot read the event {args.event}: {exc}", file=sys.stderr)
        return 2
    except (NoLocalStack, InvokeError) as exc:
        print(f"invoke: {exc}", file=sys.stderr)
        return 2
    except LambdaFunctionError as err:
        print(json.dumps(err.error, indent=2))
        return 1
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
