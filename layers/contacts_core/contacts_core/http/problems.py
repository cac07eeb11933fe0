"""The one mapping from domain errors to HTTP: RFC 9457 ``application/problem+json`` bodies."""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from contacts_core.contacts.models import FieldRuleError
from contacts_core.errors import (
    AudienceNameTaken,
    ConcurrentModification,
    DomainError,
    FieldError,
    IdempotencyInProgress,
    IdempotencyKeyReused,
    IdentityConflict,
    MergeRefused,
    NotFound,
    PayloadTooLarge,
    PreconditionFailed,
    RateLimited,
    ServiceUnavailable,
    ValidationFailed,
)
from contacts_core.text import shortened

PROBLEM_TYPE = "urn:contacts-api:problem:{code}"
PROBLEM_CONTENT_TYPE = "application/problem+json"

# (status, title) per error class; the most specific class is looked up first.
_HTTP: list[tuple[type[DomainError], int, str]] = [
    (PayloadTooLarge, 413, "Payload too large"),
    (ValidationFailed, 400, "Invalid request"),
    (NotFound, 404, "Not found"),
    (IdentityConflict, 409, "Identity conflict"),
    (AudienceNameTaken, 409, "Audience name taken"),
    (MergeRefused, 409, "Merge refused"),
    (ConcurrentModification, 409, "Concurrent modification"),
    (IdempotencyInProgress, 409, "Request in progress"),
    (IdempotencyKeyReused, 422, "Idempotency key reused"),
    (RateLimited, 429, "Too many requests"),
    (PreconditionFailed, 412, "Precondition failed"),
    (ServiceUnavailable, 503, "Service unavailable"),
]


def status_of(err: DomainError) -> tuple[int, str]:
    """HTTP status and title for a domain error (400 for an unmapped one)."""
    for cls, status, title in _HTTP:
        if isinstance(err, cls):
            return status, title
    return 400, "Bad request"


def problem(code: str, status: int, title: str, detail: str, request_id: str | None,
            headers: dict[str, str] | None = None, **extensions: Any) -> dict[str, Any]:
    """A problem response as API Gateway expects it from a Lambda proxy integration."""
    body = {"type": PROBLEM_TYPE.format(code=code), "title": title, "status": status,
            "detail": detail, "code": code, "request_id": request_id, **extensions}
    return {"statusCode": status,
            "headers": {"Content-Type": PROBLEM_CONTENT_TYPE, **(headers or {})},
            "body": json.dumps(body)}


def domain_problem(err: DomainError, request_id: str | None) -> dict[str, Any]:
    """The problem response for a domain error, with its extension members."""
    status, title = status_of(err)
    return problem(err.code, status, title, err.detail, request_id, err.headers(),
                   **err.extensions())


def internal_problem(request_id: str | None) -> dict[str, Any]:
    """500 without internals; the traceback goes to the logs under ``request_id``."""
    return problem("internal_error", 500, "Internal server error",
                   "An unexpected error occurred; quote the request_id when reporting it.",
                   request_id)


_KEY = "[key]"  # pydantic's last ``loc`` part for an error in a dict's key, not its value


def _field_of(error: Any) -> str:
    raised = (error.get("ctx") or {}).get("error")
    if isinstance(raised, FieldRuleError):
        return raised.field
    loc = list(error["loc"])
    if loc[-1:] == [_KEY]:  # a bad key names its dict: the key may be empty or huge
        loc = loc[:-2]
    # an unknown member is named as sent, cut short: its name may be megabytes
    return ".".join(shortened(str(part), 64) for part in loc) or "body"


_LENGTHS = ("too_long", "too_short", "string_too_long", "string_too_short")
# pydantic's type errors in the words of JSON (RFC 8259), the body's language: its own
# name a Python type ("a valid dictionary") or a model class ("instance of ConsentPatch")
_JSON_TYPES = {
    "model_type": "must be a JSON object", "model_attributes_type": "must be a JSON object",
    "dict_type": "must be a JSON object", "dataclass_type": "must be a JSON object",
    "list_type": "must be a JSON array", "tuple_type": "must be a JSON array",
    "set_type": "must be a JSON array", "string_type": "must be a string",
    "bool_type": "must be true or false", "int_type": "must be an integer",
    "float_type": "must be a number",
}


def _message_of(error: Any) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown field"
    raised = (error.get("ctx") or {}).get("error")
    message = str(raised) if isinstance(raised, ValueError) \
        else _JSON_TYPES.get(error["type"], str(error["msg"]))
    if error["type"] in _LENGTHS and isinstance(error.get("input"), str | list | dict):
        # a length checked after a validator reads as a list's ("at most 64 items"), and
        # pydantic's own says "after validation": counted in the body's terms instead
        ctx = error.get("ctx") or {}
        verb, unit = ("be", ("character", "characters")) if isinstance(error["input"], str) \
            else ("have", ("item", "items")) if isinstance(error["input"], list) \
            else ("have", ("key", "keys"))
        message = f"must {verb} at most {ctx['max_length']} {unit[1]}" if "max_length" in ctx \
            else f"must {verb} at least {ctx['min_length']} " + unit[ctx.get("min_length") != 1]
    if list(error["loc"])[-1:] == [_KEY]:
        key = str(error["loc"][-2])
        shown = json.dumps(shortened(key, 40), ensure_ascii=False)
        return f"key {shown}: {message}"
    return message


def from_validation_error(exc: ValidationError, prefix: str = "") -> ValidationFailed:
    """Translate pydantic errors into one :class:`ValidationFailed` naming every field."""
    return ValidationFailed([FieldError(prefix + _field_of(e), _message_of(e))
                             for e in exc.errors()])
