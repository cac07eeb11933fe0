"""SAM CLI's local API Gateway (``LocalApigwService``) over the built template.

Routes, payload format, the Lambda REQUEST authorizer and v2 event construction
all come from SAM CLI (``SamLocalStackProvider`` -> ``ApiProvider`` ->
``LocalApigwService``), exactly as ``sam local start-api`` wires them; only the
function runner (:class:`devstack.runner.ProcessLambdaRunner`) and the HTTP server
loop (a stoppable werkzeug server in a thread) are ours.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

from samcli.lib.providers.api_provider import ApiProvider
from samcli.lib.providers.provider import Stack
from samcli.lib.providers.sam_stack_provider import SamLocalStackProvider
from samcli.lib.utils.stream_writer import StreamWriter
from samcli.local.apigw.local_apigw_service import LocalApigwService
from samcli.local.apigw.route import Route
from samcli.local.apigw.service_error_responses import ServiceErrorResponses
from werkzeug.serving import BaseWSGIServer, make_server

from devstack.runner import LambdaFunctionError, ProcessLambdaRunner

REGION = "us-east-1"


def load_stacks(built_template: Path, parameter_overrides: dict[str, str]) -> list[Stack]:
    """Stacks of the built template with parameters (and ``AWS::Region``) substituted."""
    stacks, _ = SamLocalStackProvider.get_stacks(
        str(Path(built_template).resolve()),
        parameter_overrides=parameter_overrides,
        global_parameter_overrides={"AWS::Region": REGION},
    )
    return list(stacks)


def api_routes(stacks: list[Stack], cwd: Path) -> list[Route]:
    """The API routes SAM CLI derives from the stacks (HttpApi events, authorizers)."""
    return list(ApiProvider(stacks, cwd=str(cwd)).api.routes)


class ApiServer:
    """``LocalApigwService`` served by a threaded werkzeug server on ``host:port``.

    ``port=0`` picks a free port (read :attr:`port` after :meth:`start`).
    Function failures (:class:`LambdaFunctionError`) answer 502
    ``{"message": "Internal server error"}`` as API Gateway does.
    """

    def __init__(
        self,
        stacks: list[Stack],
        runner: ProcessLambdaRunner,
        host: str = "127.0.0.1",
        port: int = 3000,
        cwd: Path | None = None,
        stderr: Any = None,
    ) -> None:
        provider = ApiProvider(stacks, cwd=str(cwd or Path.cwd()))
        if not provider.api.routes:
            raise RuntimeError("no API routes in the template")
        self.routes: list[Route] = list(provider.api.routes)
        self.service = LocalApigwService(
            api=provider.api,
            lambda_runner=runner,
            port=port,
            host=host,
            stderr=StreamWriter(stderr or sys.stderr, auto_flush=True),
        )
        self.service.create()
        app = self.service._app  # the Flask app LocalApigwService.run() would serve
        assert app is not None
        app.register_error_handler(
            LambdaFunctionError, lambda _exc: ServiceErrorResponses.lambda_failure_response()
        )
        self.host = host
        self._server: BaseWSGIServer = make_server(host, port, app, threaded=True)
        self.port = int(self._server.port)
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT`` (no trailing slash)."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> ApiServer:
        """Serve in a background thread; returns self."""
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="devstack-api", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the listening socket (idempotent)."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(10)
            self._thread = None
        self._server.server_close()
