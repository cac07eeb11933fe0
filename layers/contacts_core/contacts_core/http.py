"""Lambda proxy plumbing for API Gateway HTTP API (payload 2.0): parse, call, respond.

Handlers stay thin: ``@api_handler`` turns the event into an :class:`ApiRequest`, calls
one domain function through the handler body, and maps domain errors through
:mod:`contacts_core.problems`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2
from pydantic import BaseModel, ValidationError

from .errors import DomainError, PayloadTooLarge, ValidationFailed
from .problems import domain_problem, from_validation_error, internal_problem

logger = Logger()
M = TypeVar("M", bound=BaseModel)

MAX_CONTACT_BYTES = 16 * 1024  # SPEC §7: one contact as sent is at most 16 KB
_IF_MATCH = re.compile(r'^(?:W/)?"?(\d+)"?$')


@dataclass
class ApiRequest:
    """One API call: the caller's org (from the authorizer), path/query/headers and body."""

    event: APIGatewayProxyEventV2
    org_id: str
    request_id: str

    def path(self, name: str) -> str:
        """A path parameter such as ``id``."""
        return (self.event.path_parameters or {})[name]

    def query(self, name: str) -> str | None:
        """A query string parameter, or None."""
        return (self.event.query_string_parameters or {}).get(name)

    def query_model(self, model: type[M]) -> M:
        """All query string parameters validated by ``model``.

        Raises:
            ValidationFailed: naming each bad or unknown parameter (400).
        """
        try:
            return model.model_validate(self.event.query_string_parameters or {})
        except ValidationError as err:
            raise from_validation_error(err) from err

    def header(self, name: str) -> str | None:
        """A request header, case-insensitively (HTTP APIs lower-case them already)."""
        headers = self.event.headers or {}
        return headers.get(name.lower()) or headers.get(name)

    def body(self, model: type[M], max_bytes: int = MAX_CONTACT_BYTES) -> M:
        """The JSON body validated by ``model``.

        Raises:
            PayloadTooLarge: over ``max_bytes`` (413).
            ValidationFailed: malformed JSON, not an object, unknown fields, wrong types (400).
        """
        raw = self.event.decoded_body or ""
        if len(raw.encode()) > max_bytes:
            raise PayloadTooLarge.single("body", f"request body is over {max_bytes} bytes")
        try:
            data = json.loads(raw) if raw.strip() else None
        except json.JSONDecodeError as err:
            raise ValidationFailed.single("body", f"malformed JSON: {err.msg}") from err
        if not isinstance(data, dict):
            raise ValidationFailed.single("body", "expected a JSON object")
        try:
            return model.model_validate(data)
        except ValidationError as err:
            raise from_validation_error(err) from err

    def if_match(self) -> int | None:
        """The version in ``If-Match`` (``"3"``, ``W/"3"`` or ``3``); None if absent or ``*``.

        Raises:
            ValidationFailed: on ``If-Match`` when it is not a version ETag.
        """
        value = (self.header("if-match") or "").strip()
        if not value or value == "*":
            return None
        matched = _IF_MATCH.match(value)
        if not matched:
            raise ValidationFailed.single("If-Match", 'expected an ETag such as "3"')
        return int(matched.group(1))


@dataclass
class ApiResponse:
    """What a handler returns: status, an optional model body and extra headers."""

    status: int
    body: BaseModel | None = None
    headers: dict[str, str] = field(default_factory=dict)
    text: str | None = None  # a non-JSON body; ``headers`` carries its Content-Type


def json_response(status: int, body: BaseModel | None, version: int | None = None) -> ApiResponse:
    """A JSON response; ``version`` becomes a strong ``ETag`` (``"3"``)."""
    return ApiResponse(status, body, {"ETag": f'"{version}"'} if version is not None else {})


def _render(response: ApiResponse) -> dict[str, Any]:
    rendered: dict[str, Any] = {"statusCode": response.status, "headers": dict(response.headers)}
    if response.body is not None:
        rendered["headers"]["Content-Type"] = "application/json"
        rendered["body"] = response.body.model_dump_json()
    elif response.text is not None:
        rendered["body"] = response.text
    return rendered


def api_handler(operation: Callable[[ApiRequest], ApiResponse]) -> Callable[..., dict[str, Any]]:
    """Wrap ``operation`` as a Lambda handler for HTTP API proxy events (payload 2.0).

    The org comes from the Lambda authorizer's context (``org_id``); errors become RFC 9457
    problems; anything unexpected is logged and answered with a bare 500 problem.
    """

    @logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        parsed = APIGatewayProxyEventV2(event)
        request_id = parsed.request_context.request_id
        authorizer = parsed.request_context.authorizer
        org_id = (authorizer.get_lambda or {}).get("org_id") if authorizer else None
        if not org_id:
            logger.error("request reached a handler without an authorized org")
            return internal_problem(request_id)
        try:
            return _render(operation(ApiRequest(parsed, str(org_id), request_id)))
        except DomainError as err:
            logger.info("request refused", code=err.code, detail=err.detail)
            return domain_problem(err, request_id)
        except Exception:
            logger.exception("unhandled error")
            return internal_problem(request_id)

    return handler
