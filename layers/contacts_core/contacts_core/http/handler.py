"""Lambda proxy plumbing for API Gateway HTTP API (payload 2.0): parse, call, respond.

Handlers stay thin: ``@api_handler`` turns the event into an :class:`ApiRequest`, calls
one domain function through the handler body, and maps domain errors through
:mod:`contacts_core.http.problems`.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from aws_lambda_powertools.logging import correlation_paths
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ValidationError

from contacts_core.aws import service_unavailable
from contacts_core.contacts.models import MAX_CONTACT_BYTES
from contacts_core.errors import (
    DomainError,
    IdentityConflict,
    PayloadTooLarge,
    ServiceUnavailable,
    ValidationFailed,
)
from contacts_core.http.headers import header_value
from contacts_core.http.idempotency import Seal, respond_once
from contacts_core.http.json_body import (
    TooDeep,
    json_problem,
    parse_json,
    unencodable,
)
from contacts_core.http.problems import domain_problem, from_validation_error, internal_problem
from contacts_core.observability import Metric, bind_org, count, logger, observed
from contacts_core.rate_limits import RateDecision, RatePolicy, rate_store

M = TypeVar("M", bound=BaseModel)

MAX_BODY_BYTES = 4 * MAX_CONTACT_BYTES
"""Bytes a request body for one contact (or another single resource) may take: 64 KB.
The 16 KB limit is on the contact, measured compact
(:func:`contacts_core.contacts.changes.within_limits`), not on how a client's encoder
wrote it: ``\\uXXXX`` escapes (Python's ``json.dumps`` and ``requests`` default) spend 6
bytes on a character of 2–3 UTF-8 bytes, up to 3×, plus whitespace. The raw bound only
keeps parsing cheap."""
MAX_VERSION_DIGITS = 18  # versions grow by one per write: 18 digits are never reached
# a version: 0 (never one: versions start at 1, so it is merely stale) or no leading zero
_IF_MATCH = re.compile(r'(?:W/)?"(0|[1-9][0-9]*)"|(0|[1-9][0-9]*)')


@dataclass
class ApiRequest:
    """One API call: the caller's org (from the authorizer), path/query/headers and body.

    ``event`` is the proxy event as Lambda passed it (payload 2.0), read by its keys; not
    wrapped in Powertools' ``APIGatewayProxyEventV2``, whose package imports every event
    class it has on a cold start (issue 11).
    """

    event: Mapping[str, Any]
    org_id: str
    request_id: str
    # ``time.monotonic()`` by which the answer must be on its way: the invocation's end
    # (Lambda context), never more than API Gateway's 30 s integration timeout away
    deadline: float | None = None

    @property
    def method(self) -> str:
        """The HTTP method, upper case."""
        return str(self.event["requestContext"]["http"]["method"]).upper()

    @property
    def path_parameters(self) -> dict[str, str]:
        """The route's path parameters (empty when it has none)."""
        return self.event.get("pathParameters") or {}

    def path(self, name: str) -> str:
        """A path parameter such as ``id``."""
        return self.path_parameters[name]

    def query(self, name: str) -> str | None:
        """A query string parameter, or None."""
        return (self.event.get("queryStringParameters") or {}).get(name)

    def query_model(self, model: type[M]) -> M:
        """All query string parameters validated by ``model``. A repeated parameter arrives
        as its values joined by commas (payload 2.0): the model judges that only for the
        parameters it lists in ``REPEATABLE`` (``tag``); any other one given twice is
        refused rather than read as one value holding a comma (``external_id=a&
        external_id=b`` would look for ``"a,b"``).

        Raises:
            ValidationFailed: naming each bad or unknown parameter, one that is not
                valid Unicode, or one given more than once (400).
        """
        given = Counter(name for name, _ in parse_qsl(
            self.event.get("rawQueryString") or "", keep_blank_values=True))
        repeated = sorted(name for name, times in given.items() if times > 1
                          and name in model.model_fields
                          and name not in getattr(model, "REPEATABLE", ()))
        if repeated:
            raise ValidationFailed.single(
                repeated[0], "given more than once: this parameter takes one value")
        params = self.event.get("queryStringParameters") or {}
        for name, value in params.items():
            if unencodable(name) or unencodable(str(value)):
                raise ValidationFailed.single(
                    name.encode(errors="replace").decode() or "query", "not valid Unicode")
        try:
            return model.model_validate(params)
        except ValidationError as err:
            raise from_validation_error(err) from err

    def header(self, name: str) -> str | None:
        """A request header, case-insensitively (see :func:`header_value`)."""
        return header_value(self.event, name)

    def raw_body(self, max_bytes: int) -> bytes:
        """The body's bytes (base64-decoded when API Gateway encoded it).

        Raises:
            PayloadTooLarge: over ``max_bytes`` (413).
            ValidationFailed: on ``body`` when it is not valid base64 or not UTF-8 (400).
        """
        body = self.event.get("body") or ""
        try:
            raw = (base64.b64decode(body, validate=True) if self.event.get("isBase64Encoded")
                   else body.encode())
        except ValueError as err:  # binascii.Error, UnicodeEncodeError (surrogates)
            raise ValidationFailed.single("body", "not valid UTF-8 text") from err
        if len(raw) > max_bytes:
            raise PayloadTooLarge.single("body", f"request body is over {max_bytes} bytes")
        return raw

    def body(self, model: type[M], max_bytes: int = MAX_BODY_BYTES, *,
             optional: bool = False) -> M:
        """The JSON body validated by ``model``; with ``optional``, no body (or only
        whitespace) is read as ``{}`` (every field at its default).

        The body must be UTF-8 (RFC 8259 §8.1) I-JSON (RFC 7493): no unpaired surrogates,
        no member name twice in one object (which one a parser keeps is undefined),
        nested at most 32 levels (:mod:`contacts_core.http.json_body`). ``NaN``,
        ``Infinity`` and numbers beyond a double are parsed and left to the model, which
        refuses them naming their field (so one such item fails alone in a bulk request).

        Raises:
            PayloadTooLarge: over ``max_bytes`` (413).
            ValidationFailed: not UTF-8, malformed JSON, a duplicate member (naming its path), too
                deep, not an object, unknown fields, wrong types (400).
        """
        try:
            text = self.raw_body(max_bytes).decode()
        except UnicodeDecodeError as err:
            raise ValidationFailed.single("body", "not valid UTF-8 text") from err
        if optional and not text.strip():
            text = "{}"  # no body; a JSON null is not "no body" and is refused below
        try:
            data = parse_json(text) if text.strip() else None
        except TooDeep as err:
            raise ValidationFailed.single("body", str(err)) from err
        except json.JSONDecodeError as err:
            raise ValidationFailed.single("body", f"malformed JSON: {err.msg}") from err
        except ValueError as err:  # not raised by json today; kept a 400 all the same
            raise ValidationFailed.single("body", f"malformed JSON: {err}") from err
        if not isinstance(data, dict):
            raise ValidationFailed.single("body", "expected a JSON object")
        problem = json_problem(data, getattr(model, "ITEMS_CHECKED_ALONE", None))
        if problem is not None:
            raise ValidationFailed([problem])
        try:
            return model.model_validate(data)
        except ValidationError as err:
            raise from_validation_error(err) from err

    def if_match(self) -> int | None:
        """The version in ``If-Match`` (``"3"``, ``W/"3"`` or ``3``); None if absent or ``*``
        (an empty or blank value is a 400, not an absent header).

        Versions are the ``ETag`` values this API issues: ASCII digits without leading
        zeros (``"01"`` is not ``"1"``: ETags compare as strings, RFC 9110 §8.8.3.2), at most
        :data:`MAX_VERSION_DIGITS` of them (a version grows by one per write and never gets
        there). A longer one cannot have come from us, so it is answered as malformed
        input (400), like any other value that is not one of our ETags, rather than as a
        stale version (412); it never reaches a DynamoDB condition, whose numbers end at
        38 digits.

        Raises:
            ValidationFailed: on ``If-Match`` when it is not a version ETag of this API.
        """
        sent = self.header("if-match")
        if sent is None:
            return None
        value = sent.strip()
        if value == "*":
            return None
        if not value:  # an empty template variable must not drop the lock silently
            raise ValidationFailed.single("If-Match", 'is empty: send an ETag such as "3", '
                                                      "or leave the header out")
        matched = _IF_MATCH.fullmatch(value)
        if not matched:
            raise ValidationFailed.single("If-Match", 'expected an ETag such as "3"')
        digits = matched.group(1) or matched.group(2)
        if len(digits) > MAX_VERSION_DIGITS:
            raise ValidationFailed.single(
                "If-Match", f"not a version of this API (at most {MAX_VERSION_DIGITS} digits)")
        return int(digits)


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


def created_response(body: BaseModel, location: str, version: int | None = None) -> ApiResponse:
    """201 Created with ``Location``: the path of the new resource (``/v1/contacts/con_…``;
    a relative reference, RFC 9110 §10.2.2 and §15.3.2), and its ``ETag`` when versioned."""
    response = json_response(201, body, version)
    response.headers["Location"] = location
    return response


def _render(response: ApiResponse) -> dict[str, Any]:
    rendered: dict[str, Any] = {"statusCode": response.status, "headers": dict(response.headers)}
    if response.body is not None:
        rendered["headers"]["Content-Type"] = "application/json"
        rendered["body"] = response.body.model_dump_json()
    elif response.text is not None:
        rendered["body"] = response.text
    return rendered


def _answer_error(err: Exception, request_id: str) -> dict[str, Any]:
    """A problem for a domain error (logged as refused, counted when it is an identity
    conflict); 503 when AWS throttled or did not answer (logged with its traceback); a
    bare 500 for anything else (logged with its traceback)."""
    if not isinstance(err, DomainError) and service_unavailable(err):
        logger.warning("AWS unavailable; answered 503", exc_info=err)
        err = ServiceUnavailable()
    if isinstance(err, DomainError):
        logger.info("request refused", code=err.code, detail=err.detail)
        if isinstance(err, IdentityConflict):
            count(Metric.IDENTITY_CONFLICTS)
        return domain_problem(err, request_id)
    logger.exception("unhandled error")
    return internal_problem(request_id)


def _respond(operation: Callable[[ApiRequest], ApiResponse], request: ApiRequest
             ) -> dict[str, Any]:
    """The operation's response, or its error as :func:`_answer_error` answers it."""
    try:
        return _render(operation(request))
    except Exception as err:
        return _answer_error(err, request.request_id)


def _take_rate(org_id: str, authorizer: dict[str, Any]) -> RateDecision | None:
    """One request from the org's bucket; None (let through) when the limiter's table
    cannot be reached: limiting fails open rather than failing every request."""
    try:
        return rate_store().take(org_id, RatePolicy.from_context(authorizer))
    except (ClientError, BotoCoreError):
        logger.exception("rate limiter unavailable; request let through")
        return None


API_GATEWAY_TIMEOUT_S = 30  # HTTP API's integration timeout (its maximum, and default)


def _deadline(context: Any) -> float | None:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if remaining is None:
        return None
    return time.monotonic() + min(remaining() / 1000, API_GATEWAY_TIMEOUT_S)


def api_handler(operation: Callable[[ApiRequest], ApiResponse] | None = None, *,
                seal: Seal | None = None) -> Any:
    """Wrap ``operation`` as a Lambda handler for HTTP API proxy events (payload 2.0):
    ``@api_handler``, or ``@api_handler(seal=…)`` when the answer shows a secret that an
    ``Idempotency-Key`` record must not keep in clear (:class:`Seal`).

    In order: the org comes from the Lambda authorizer's context (``org_id``); the org's
    rate limit is taken (429 ``rate_limited`` when used up; every response carries
    ``RateLimit``/``RateLimit-Policy``); an ``Idempotency-Key`` replays a recorded response
    (:mod:`contacts_core.http.idempotency`); then the operation runs. Errors become
    RFC 9457 problems; anything unexpected is logged and answered with a bare 500 problem.
    Every log line carries the request id (correlation id) and, once known, the
    ``org_id``; the handler is traced and its metrics flushed
    (:func:`contacts_core.observability.observed`).
    """

    if operation is None:
        return lambda op: api_handler(op, seal=seal)
    run = operation

    @observed(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        request_id = event["requestContext"]["requestId"]
        authorizer = event["requestContext"].get("authorizer")
        lambda_context = (authorizer.get("lambda") or {}) if authorizer is not None else {}
        org_id = lambda_context.get("org_id")
        if not org_id:
            logger.error("request reached a handler without an authorized org")
            return internal_problem(request_id)
        bind_org(str(org_id))
        request = ApiRequest(event, str(org_id), request_id, _deadline(context))
        rate = _take_rate(request.org_id, lambda_context)
        try:
            if rate is not None:
                rate.raise_if_refused()
            response = respond_once(request, context, lambda: _respond(run, request), seal)
        except Exception as err:  # rate limited, Idempotency-Key refused, or unexpected
            response = _answer_error(err, request_id)
        if rate is not None:
            response["headers"] = {**response.get("headers", {}), **rate.headers()}
        return response

    return handler
