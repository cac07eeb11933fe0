"""Lambda-like worker process: ``python -I -S lambda_worker.py REQ_FD RESP_FD PATH...``.

Runs isolated from the devstack's virtualenv: standard library only until it puts
the function's code, its layers and the "Lambda runtime" directory (boto3) on
``sys.path``. It then imports the handler once (the init phase, which starts as soon
as the process does, before any request) and serves invocations one at a time, like a
warm Lambda execution environment.

Protocol (one JSON document per line):

* first, on RESP_FD, the end of the init phase: ``{"ready": true, "init_ms": float}``, or
  ``{"ready": false, "init_ms": float, "error": {...}}`` after which the worker exits
  (an import error, as Lambda reports ``Runtime.ImportModuleError``);
* then per invocation, a request on REQ_FD: ``{"event": <event JSON string>,
  "request_id": str, "timeout_ms": int}`` (the time left of the function timeout)
* and its response on RESP_FD: ``{"ok": true, "payload": <result JSON string>}`` or
  ``{"ok": false, "error": {"errorMessage", "errorType", "stackTrace"}}``

stdout is redirected to stderr so prints end up in the logs, as on Lambda.
This file must not import anything outside the standard library.
"""

import decimal
import importlib
import json
import os
import sys
import time
import traceback

RUNTIME_ERROR_INIT = "Runtime.ImportModuleError"
RUNTIME_ERROR_HANDLER = "Runtime.HandlerNotFound"
RUNTIME_ERROR_MARSHAL = "Runtime.MarshalError"


class LambdaContext:
    """The subset of the Lambda Python context object that handlers use."""

    def __init__(self, request_id, deadline_ms):
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.memory_limit_in_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
        region = os.environ.get("AWS_REGION", "us-east-1")
        account = os.environ.get("AWS_ACCOUNT_ID", "123456789012")
        self.invoked_function_arn = (
            f"arn:aws:lambda:{region}:{account}:function:{self.function_name}"
        )
        self.aws_request_id = request_id
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.identity = None
        self.client_context = None
        self.tenant_id = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self):
        """Milliseconds left before the function's configured timeout."""
        return max(int(self._deadline_ms - time.time() * 1000), 0)


def error_payload(exc, error_type=None, message=None):
    """Lambda's error document for ``exc`` (also printed to stderr, as Lambda logs it)."""
    error_type = error_type or type(exc).__name__
    message = message if message is not None else str(exc)
    stack = traceback.format_list(traceback.extract_tb(exc.__traceback__))
    body = {"errorMessage": message, "errorType": error_type, "requestId": "", "stackTrace": stack}
    print(f"[ERROR] {error_type}: {message}", file=sys.stderr)
    traceback.print_exception(exc, file=sys.stderr)
    return body


def _json_default(value):
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def load_handler(handler_spec):
    """Import ``module.function`` (``dir/module.function`` also accepted)."""
    module_path, _, function_name = handler_spec.rpartition(".")
    module_name = module_path.replace("/", ".")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        return None, error_payload(
            exc, RUNTIME_ERROR_INIT, f"Unable to import module '{module_name}': {exc}"
        )
    handler = getattr(module, function_name, None)
    if handler is None:
        missing = AttributeError(f"Handler '{function_name}' missing on module '{module_name}'")
        return None, error_payload(missing, RUNTIME_ERROR_HANDLER, str(missing))
    return handler, None


def invoke(handler, request):
    """Run one invocation and return the response document."""
    context = LambdaContext(request["request_id"], time.time() * 1000 + request["timeout_ms"])
    try:
        result = handler(json.loads(request["event"]), context)
    except Exception as exc:
        error = error_payload(exc)
        error["requestId"] = request["request_id"]
        return {"ok": False, "error": error}
    try:
        return {"ok": True, "payload": json.dumps(result, default=_json_default)}
    except (TypeError, ValueError) as exc:
        error = error_payload(exc, RUNTIME_ERROR_MARSHAL, f"Unable to marshal response: {exc}")
        return {"ok": False, "error": error}


def main():
    """Set up paths and streams, import the handler (init), then serve requests until EOF."""
    init_started = time.monotonic()
    req_fd, resp_fd = int(sys.argv[1]), int(sys.argv[2])
    stdlib = [p for p in sys.path if p.startswith(sys.base_prefix)]
    sys.path[:] = [*sys.argv[3:], *stdlib]
    os.dup2(2, 1)  # print() -> logs
    sys.stdout = sys.stderr
    requests = os.fdopen(req_fd, "r", encoding="utf-8")
    responses = os.fdopen(resp_fd, "w", encoding="utf-8")

    def send(document):
        sys.stderr.flush()
        responses.write(json.dumps(document) + "\n")
        responses.flush()

    os.chdir(sys.argv[3])  # Lambda's working directory is the task root
    handler, init_error = load_handler(os.environ["_HANDLER"])
    init_ms = (time.monotonic() - init_started) * 1000
    if handler is None:
        send({"ready": False, "init_ms": init_ms, "error": init_error})
        return
    send({"ready": True, "init_ms": init_ms})
    for line in requests:
        send(invoke(handler, json.loads(line)))


if __name__ == "__main__":
    main()
