"""Docker-free replacement for SAM CLI's ``LocalLambdaRunner``.

:class:`ProcessLambdaRunner` keeps SAM CLI's function lookup and environment
resolution (``get_function``/``get_invoke_config`` of ``LocalLambdaRunner``) and
replaces the Docker container with warm worker processes (:mod:`devstack.workers`)
that see only the function's build dir, its layers' ``python`` dirs and the
Lambda runtime dir (boto3). ``LocalApigwService`` uses it through ``invoke`` and
``is_debugging``; other callers (e.g. an event-source poller) may use
:meth:`ProcessLambdaRunner.invoke_json`.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any, TextIO, cast

from samcli.commands.local.lib.local_lambda import LocalLambdaRunner
from samcli.lib.providers.provider import Function
from samcli.lib.providers.sam_function_provider import SamFunctionProvider
from samcli.lib.utils.codeuri import resolve_code_path
from samcli.lib.utils.stream_writer import StreamWriter
from samcli.local.lambdafn.env_vars import EnvironmentVariables

from devstack.queues import resolve_queue_refs
from devstack.workers import WorkerFailure, WorkerPool, WorkerSpec, build_fingerprint

FAKE_AWS = {"region": "us-east-1", "key": "test", "secret": "test"}


class LambdaFunctionError(Exception):
    """The function failed (unhandled exception, import error, timeout or crash).

    ``error`` is Lambda's error document (``errorMessage``, ``errorType``,
    ``stackTrace``...); ``function_name`` is the logical id.
    """

    def __init__(self, function_name: str, error: dict[str, Any]) -> None:
        super().__init__(f"{function_name}: {error.get('errorType')}: {error.get('errorMessage')}")
        self.function_name = function_name
        self.error = error


class ProcessLambdaRunner(LocalLambdaRunner):
    """Runs template functions in isolated warm worker processes.

    Args:
        function_provider: SAM CLI provider over the *built* template's stacks.
        runtime_dir: directory holding only boto3 (see :mod:`devstack.lambda_runtime`).
        extra_env: variables added to every function's environment (e.g.
            ``AWS_ENDPOINT_URL_DYNAMODB``); they win over template values.
        queue_urls: ``{logical id: local value}`` of queues (URL), KMS keys (key id),
            secrets (ARN) and buckets (name); template environment values that name one
            (``!Ref`` resolves to its logical id) become its local value.
        max_concurrency: warm workers per function (concurrent invocations beyond
            it wait for a free worker), unless ``function_concurrency`` says otherwise.
        function_concurrency: ``{function logical id: warm workers}`` for functions with
            their own limit (the local stack: those fed by event sources, e.g. an SQS
            mapping's pollers); :meth:`WorkerPool.set_limit` on :attr:`pool` changes one.
        log_stream: where function logs and REPORT lines go (default ``sys.stderr``).
    """

    def __init__(
        self,
        function_provider: SamFunctionProvider,
        runtime_dir: Path,
        extra_env: dict[str, str] | None = None,
        max_concurrency: int = 4,
        log_stream: TextIO | None = None,
        cwd: str | None = None,
        queue_urls: dict[str, str] | None = None,
        function_concurrency: dict[str, int] | None = None,
    ) -> None:
        super().__init__(
            local_runtime=cast(Any, None),
            function_provider=function_provider,
            cwd=cwd or os.getcwd(),
            real_path=cwd or os.getcwd(),
            aws_region=FAKE_AWS["region"],
        )
        self.runtime_dir = Path(runtime_dir).resolve()
        self.extra_env = dict(extra_env or {})
        self.queue_urls = dict(queue_urls or {})
        self._log_stream = log_stream or sys.stderr
        self._log_lock = threading.Lock()
        self.pool = WorkerPool(self.write_log, max_concurrency, function_concurrency)

    def write_log(self, text: str) -> None:
        """Write ``text`` to the log stream (thread-safe; used for function output)."""
        with self._log_lock:
            self._log_stream.write(text)
            self._log_stream.flush()

    # -- LocalLambdaRunner interface -------------------------------------------------
    def get_aws_creds(self) -> dict[str, str]:
        """Fake credentials only: the local stack never uses real AWS."""
        return dict(FAKE_AWS)

    def _make_env_vars(self, function: Function) -> EnvironmentVariables:
        env = super()._make_env_vars(function)
        env.shell_env_values = {}  # the template decides, not the developer's shell
        return env

    def is_debugging(self) -> bool:
        """Always False: workers are not debuggable containers (keeps Flask threaded)."""
        return False

    def invoke(
        self,
        function_identifier: str,
        event: str,
        tenant_id: str | None = None,
        stdout: StreamWriter | None = None,
        stderr: StreamWriter | None = None,
        override_runtime: str | None = None,
        invocation_type: str = "RequestResponse",
        durable_execution_name: str | None = None,
        function: Function | None = None,
    ) -> dict[str, str] | None:
        """Invoke a function with a JSON ``event`` string; write its JSON result to ``stdout``.

        Raises ``FunctionNotFound`` (unknown function) and :class:`LambdaFunctionError`
        (the function failed; its traceback is already in the logs). Returns None.
        """
        function = function or self.get_function(function_identifier, tenant_id)
        payload = self._run(function, event)
        if stdout is not None:
            stdout.write_str(payload)
        return None

    # -- devstack API -----------------------------------------------------------------
    def invoke_json(self, function_identifier: str, event: str) -> str:
        """Invoke and return the result JSON string (raises like :meth:`invoke`)."""
        return self._run(self.get_function(function_identifier), event)

    def invoke_event(
        self, function_identifier: str, event: dict[str, Any]
    ) -> dict[str, Any] | None:
        """Invoke with an event document, as an event source mapping does.

        Returns the function's result when it is a JSON object (e.g. a partial batch
        response ``{"batchItemFailures": [...]}``), else None. Raises
        :class:`LambdaFunctionError` when the function fails.
        """
        result = json.loads(self.invoke_json(function_identifier, json.dumps(event)))
        return result if isinstance(result, dict) else None

    def worker_spec(self, function: Function) -> WorkerSpec:
        """The worker configuration of ``function``: paths, full environment, timeout."""
        if not (function.runtime or "").startswith("python3"):
            raise LambdaFunctionError(
                function.name,
                {"errorType": "Runtime.Unsupported",
                 "errorMessage": f"devstack runs python3.x functions only, not {function.runtime}"},
            )
        config = self.get_invoke_config(function)
        task_root = str(config.code_abs_path)
        layer_dirs = []
        for layer in config.layers:
            root = Path(resolve_code_path(self.cwd, layer.codeuri))
            layer_dirs += [str(p) for p in (root / "python",) if p.is_dir()]
        sys_path = (task_root, *layer_dirs, str(self.runtime_dir))
        template_env = {k: str(v) for k, v in config.env_vars.resolve().items()}
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LANG": "en_US.UTF-8",
            "TZ": ":UTC",
            "LAMBDA_TASK_ROOT": task_root,
            "LAMBDA_RUNTIME_DIR": str(self.runtime_dir),
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{function.runtime}",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
            "POWERTOOLS_TRACE_DISABLED": "true",  # no X-Ray daemon here (LAMBDA_TASK_ROOT is set)
            **resolve_queue_refs(template_env, self.queue_urls),
            **self.extra_env,
        }
        return WorkerSpec(
            function_name=function.name,
            handler=str(config.handler),
            sys_path=sys_path,
            env=env,
            timeout_s=float(config.timeout),
            fingerprint=build_fingerprint(sys_path[:-1]),
        )

    def close(self) -> None:
        """Stop every worker process (idempotent)."""
        self.pool.close()

    def _run(self, function: Function, event: str) -> str:
        spec = self.worker_spec(function)
        request_id = str(uuid.uuid4())
        started = time.monotonic()
        worker = self.pool.acquire(spec)
        try:
            response = worker.call(event, request_id)
        except WorkerFailure as failure:
            self.write_log(f"{failure.error['errorMessage']}\n")
            response = {"ok": False, "error": failure.error}
        finally:
            replacement = self.pool.release(worker)
        millis = (time.monotonic() - started) * 1000
        init = ""
        if worker.init is not None and not worker.init_reported:
            worker.init_reported = True
            init = f"\tInit Duration: {worker.init.get('init_ms', 0):.2f} ms"
        self.write_log(
            f"REPORT RequestId: {request_id}\tFunction: {function.name}\t"
            f"Duration: {millis:.2f} ms{init}\tStatus: {'ok' if response['ok'] else 'error'}\n"
        )
        if replacement is not None:
            self.write_log(f"devstack: {function.name}: worker {worker.process.pid} replaced by "
                           f"pre-started worker {replacement.process.pid}\n")
        if not response["ok"]:
            raise LambdaFunctionError(function.name, response["error"])
        return str(response["payload"])
