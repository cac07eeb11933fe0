"""SAM CLI's local API Gateway (``LocalApigwService``) over the built template.

Routes, payload format, the Lambda REQUEST authorizer and v2 event construction
all come from SAM CLI (``SamLocalStackProvider`` -> ``ApiProvider`` ->
``LocalApigwService``), exactly as ``sam local start-api`` wires them; only the
function runner (:class:`devstack.runner.ProcessLambdaRunner`), the HTTP server
loop (a stoppable werkzeug server in a thread) and :class:`DevstackApigwService`'s
per-request fixes of the events (request id, time, bodies that are not UTF-8) are ours.
"""

from __future__ import annotations

import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import Response, jsonify, make_response
from flask import request as _request
from samcli.lib.providers.api_provider import ApiProvider
from samcli.lib.providers.provider import Stack
from samcli.lib.providers.sam_stack_provider import SamLocalStackProvider
from samcli.lib.utils.stream_writer import StreamWriter
from samcli.local.apigw.event_constructor import construct_v1_event, construct_v2_event_http
from samcli.local.apigw.local_apigw_service import LocalApigwService
from samcli.local.apigw.path_converter import PathConverter
from samcli.local.apigw.route import Route
from samcli.local.apigw.service_error_responses import ServiceErrorResponses
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request

from devstack.runner import LambdaFunctionError, ProcessLambdaRunner

REGION = "us-east-1"
REQUEST_ID_KEY = "devstack.request_id"  # WSGI environ key: one id per HTTP request
ANY_MEDIA_TYPE = ["*/*"]  # SAM CLI base64-encodes every body when this is the binary type


class DevstackApigwService(LocalApigwService):
    """``LocalApigwService`` whose Lambda events are built per request, as API Gateway does.

    SAM CLI 1.170 takes ``requestContext.requestId`` (``RequestContext``/``RequestContextV2``
    default argument) and ``time``/``timeEpoch`` (``construct_v2_event_http`` default
    arguments) once, at import, so every request had the same id and time. Here each HTTP
    request gets its own id (shared by its authorizer and route events, as on AWS) and
    the time it arrived. A body that is not UTF-8 text made SAM CLI answer 502; API Gateway
    passes it to the function base64-encoded (``isBase64Encoded: true``), and so does this.
    """

    def _generate_lambda_event(
        self, flask_request: Request, route: Route, method: str, endpoint: str
    ) -> dict[str, Any]:
        try:
            event = self._build_event(flask_request, route, method, endpoint,
                                      self.api.binary_media_types)
        except UnicodeDecodeError:
            event = self._build_event(flask_request, route, method, endpoint, ANY_MEDIA_TYPE)
        context = event.setdefault("requestContext", {})
        context["requestId"] = flask_request.environ.setdefault(REQUEST_ID_KEY,
                                                                str(uuid.uuid4()))
        return event

    def _build_event(self, flask_request: Request, route: Route, method: str, endpoint: str,
                     binary_types: list[str]) -> dict[str, Any]:
        """SAM CLI's event for the route (v2 for HTTP APIs), with this request's time."""
        if route.event_type == Route.HTTP and route.payload_format_version in (None, "2.0"):
            route_key = self._v2_route_key(
                method, PathConverter.convert_path_to_api_gateway(endpoint),
                route.is_default_route)
            arrived = time.time()
            return dict(construct_v2_event_http(
                flask_request=flask_request, port=self.port, binary_types=binary_types,
                stage_name=self.api.stage_name, stage_variables=self.api.stage_variables,
                route_key=route_key, request_time_epoch=int(arrived * 1000),
                request_time=datetime.fromtimestamp(arrived, UTC).strftime(
                    "%d/%b/%Y:%H:%M:%S +0000")))
        return dict(construct_v1_event(
            flask_request=flask_request, port=self.port, binary_types=binary_types,
            stage_name=self.api.stage_name, stage_variables=self.api.stage_variables,
            operation_name=route.operation_name if route.event_type == Route.API else None,
            api_type=route.event_type))


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


def _route_not_found(_exc: Exception | None) -> Response:
    """An HTTP API's answer to a request no route matches: 404 ``{"message": "Not Found"}``.

    A REST API answers 403 "Missing Authentication Token" (what SAM CLI's local service
    answers); an HTTP API, which the template declares, answers 404 for an unknown path and
    for a known path with a method it has no route for (``HEAD`` included: a route is per
    method).
    """
    return make_response(jsonify({"message": "Not Found"}), 404)


class ApiServer:
    """``LocalApigwService`` served by a threaded werkzeug server on ``host:port``.

    ``port=0`` picks a free port (read :attr:`port` after :meth:`start`).
    Function failures (:class:`LambdaFunctionError`) answer 502
    ``{"message": "Internal server error"}`` and unmatched routes 404 ``{"message": "Not
    Found"}``, as an HTTP API does.
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
        self.service = DevstackApigwService(
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
        for unmatched in (404, 405):  # SAM CLI answers as a REST API does (403)
            app.register_error_handler(unmatched, _route_not_found)
        # Flask takes HEAD on every GET rule, but SAM CLI has no route for it (a 502)
        app.before_request(lambda: _route_not_found(None) if _request.method == "HEAD"
                           else None)
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
