"""openapi.json (OpenAPI 3.1) from the pydantic models and template.yaml's routes
(``make openapi``, ``python -m devstack.openapi [PATH]``).

A build-time tool: it lives in the devstack, not in the Lambda layer. :data:`OPERATIONS`
says, per function (template logical id), what it reads and answers; the routes come
from the template, so nothing about them is written twice. Pydantic's JSON Schema (draft
2020-12) is what OpenAPI 3.1 uses for schemas.

The document describes what the server accepts and answers, no more: path ids have the
shape of the ids we issue (anything else is answered 404), ``cursor`` is the signed
``next_cursor`` format, ``If-Match`` is one of our ETags, every status an operation can
give is listed with its body (RFC 9457 problems as ``application/problem+json``; API
Gateway's own ``{"message"}`` bodies for the authorizer, throttling and oversized
requests) and its headers (``ETag``, ``Retry-After``, ``Link``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from contacts_core.audiences.models import (
    AddToAudienceRequest,
    Audience,
    AudienceCreate,
    AudiencePage,
    AudiencePatch,
    MembersAdded,
    MembersRemoved,
    MembersRequest,
)
from contacts_core.audiences.operations import PageQuery
from contacts_core.contacts.bulk import (
    BulkDeleteRequest,
    BulkDeleteResult,
    BulkUpsertRequest,
    BulkUpsertResult,
)
from contacts_core.contacts.exports import ExportQuery
from contacts_core.contacts.merge import MergeRequest
from contacts_core.contacts.models import Contact, ContactPage, Problem
from contacts_core.contacts.models import UpsertResult as UpsertResultModel
from contacts_core.contacts.operations import BatchGetRequest, BatchGetResult
from contacts_core.contacts.requests import ContactCreate, ContactPatch, ContactUpsert
from contacts_core.contacts.search import ListQuery
from contacts_core.http.idempotency import KEY_CHARACTERS, KEY_RULE, MAX_KEY_LENGTH
from contacts_core.imports.models import Import, ImportCreate, ImportCreated, ImportPage
from contacts_core.webhooks.models import (
    EVENT_TYPES,
    EndpointCreate,
    EndpointPage,
    EndpointPatch,
    WebhookEndpoint,
    WebhookEndpointCreated,
    WebhookEvent,
)
from devstack.routes import REPO_ROOT, template_routes

OPENAPI_PATH = REPO_ROOT / "openapi.json"
# The copy DocsFunction packages and serves at GET /openapi.json (written with the original).
DOCS_COPY_PATH = REPO_ROOT / "functions" / "docs" / "openapi.json"
REF = "#/components/schemas/{model}"
PROBLEM = "application/problem+json"

# The ids we issue: prefix + ULID (Crockford base32, 26 characters, first at most 7).
ULID_PATTERN = "[0-7][0-9A-HJKMNP-TV-Z]{25}"
ID_PREFIXES = {"/v1/contacts/": "con_", "/v1/audiences/": "aud_",
               "/v1/webhook-endpoints/": "whe_", "/v1/imports/": "imp_"}
# next_cursor: base64url(JSON) "." base64url(HMAC-SHA256), unpadded (contacts_core.http.cursor).
CURSOR_SCHEMA = {"type": "string", "maxLength": 2048,
                 "pattern": "^[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]{43}$",
                 "description": "`next_cursor` of the previous page, unchanged, with the same "
                                "other query parameters; anything else → 400"}
# If-Match: "*", or a version as one of our ETags ("3", W/"3" or 3; at most 18 digits, no
# leading zero; "0" is well-formed and merely stale).
IF_MATCH_SCHEMA = {"type": "string",
                   "pattern": '^(\\*|(W/)?"(0|[1-9][0-9]{0,17})"|0|[1-9][0-9]{0,17})$',
                   "examples": ['"3"']}
LOCATION_HEADER = {"description": "The path of what was created (`/v1/contacts/con_…`), "
                                   "a relative reference (RFC 9110 §10.2.2)",
                   "schema": {"type": "string"}}
ETAG_HEADER = {"description": "The contact's version as a strong ETag (`\"3\"`); send it "
                              "back as `If-Match` to update or delete only that version",
               "required": True,
               "schema": {"type": "string", "pattern": '^"[0-9]+"$'}}
RETRY_AFTER_TEXT = "Seconds to wait before repeating the request"
RETRY_AFTER: dict[str, Any] = {"description": RETRY_AFTER_TEXT,
                               "schema": {"type": "string", "pattern": "^[0-9]+$"}}
RATE_LIMIT_HEADERS: dict[str, Any] = {
    "RateLimit-Policy": {"description": "Your organization's rate policy "
                                        "(draft-ietf-httpapi-ratelimit-headers): `q` requests "
                                        "per `w` seconds, `burst` at once",
                         "schema": {"type": "string", "example": '"org";q=100;w=1;burst=200'}},
    "RateLimit": {"description": "What is left: `r` requests now, `t` seconds until the "
                                 "bucket is full again",
                  "schema": {"type": "string", "example": '"org";r=199;t=1'}},
}
WRITE_METHODS = frozenset({"post", "patch", "delete"})
IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key", "in": "header", "required": False,
    "description": f"Any unique string ({KEY_RULE}, e.g. a UUID). A "
                   "repeat within 24 h with the same method, path and body replays the first "
                   "response (`Idempotent-Replayed: true`); with anything else → 422; while "
                   "the first is still running → 409 `idempotency_in_progress`; a key that "
                   f"is not {KEY_RULE} (or the header sent twice, which arrives joined by a "
                   "comma) → 400 naming `Idempotency-Key`",
    "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH,
               "pattern": f"^{KEY_CHARACTERS}+$"}}
REPLAYED_HEADER = {"description": "`true` when this is the recorded response of an earlier "
                                  "request with the same `Idempotency-Key`",
                   "schema": {"type": "string", "enum": ["true"]}}
IN_PROGRESS = "idempotency_in_progress"
GATEWAY_MESSAGE = "GatewayMessage"
GATEWAY_SCHEMA = {"title": GATEWAY_MESSAGE, "type": "object", "required": ["message"],
                  "properties": {"message": {"type": "string"}},
                  "description": "API Gateway's own error body (authorizer, throttling, "
                                 "oversized request), not a problem document"}

SAMPLE_CONTACT_ID = "con_01JD8Q2M6W3YQ0V4C7N5T9KX2B"
SAMPLE_AUDIENCE_ID = "aud_01JD8Q3B1V0C9ZR5E6W2Y4HXQA"
# One typical body per request model: documentation, and the fuzzer's "examples" phase.
REQUEST_EXAMPLES: dict[str, dict[str, Any]] = {
    "ContactCreate": {"phone": "+27821234567", "email": "sam@example.com",
                      "first_name": "Sam", "last_name": "Mokoena", "language": "en-ZA",
                      "tags": ["vip"], "attributes": {"loyalty_tier": "gold", "visits": 3},
                      "consent": {"whatsapp": "opted_in"}},
    "ContactUpsert": {"external_id": "crm-10042", "phone": "082 123 4567",
                      "country_code": "ZA", "email": "sam@example.com",
                      "tags": ["vip", "newsletter"]},
    "MergeRequest": {"source_id": "con_01JD8Q2M6W3YQ0V4C7N5T9KX2C"},
    "ContactPatch": {"first_name": "Samuel", "attributes": {"visits": 4, "loyalty_tier": None}},
    "BulkUpsertRequest": {"contacts": [{"phone": "+27821234568", "first_name": "Lee"},
                                       {"email": "kim@example.com", "tags": ["trial"]}]},
    "BulkDeleteRequest": {"contact_ids": [SAMPLE_CONTACT_ID]},
    "BatchGetRequest": {"ids": [SAMPLE_CONTACT_ID]},
    "AudienceCreate": {"name": "VIP customers", "description": "Gold tier and above"},
    "AudiencePatch": {"description": "Gold and platinum tiers"},
    "MembersRequest": {"contact_ids": [SAMPLE_CONTACT_ID]},
    "AddToAudienceRequest": {"contact_ids": [SAMPLE_CONTACT_ID],
                             "audience_id": SAMPLE_AUDIENCE_ID},
    "EndpointCreate": {"url": "https://hooks.example.com/contacts",
                       "events": ["contact.created", "contact.updated"],
                       "description": "CRM sync"},
    "EndpointPatch": {"enabled": False},
    "ImportCreate": {"mode": "upsert"},
}

CONCURRENT = "concurrent_modification"
IDENTITY = "identity_conflict"
NAME_TAKEN = "audience_name_conflict"
MERGE_REFUSED = "merge_refused"
_CONFLICT_TEXT = {
    IDENTITY: "`identity_conflict`: phone, email or external_id held by another contact "
              "(`field`, `conflicting_contact_id`); when an upsert's identifiers match two "
              "contacts, `conflicts` and `contact_ids` name them and `merge` says how to "
              "make them one (`target_id`, `source_id`)",
    MERGE_REFUSED: "`merge_refused`: the merged contact would be in over 45 audiences or "
                   "the merge would not fit one atomic transaction; nothing changed (over 50 "
                   "tags or attribute keys is a 400, over 16 KB a 413)",
    NAME_TAKEN: "`audience_name_conflict`: another audience has this name "
                "(`conflicting_audience_id`)",
    CONCURRENT: "`concurrent_modification`: other requests kept changing the same records; "
                "nothing was written, repeat after `Retry-After` seconds",
    IN_PROGRESS: "`idempotency_in_progress`: the first request with this `Idempotency-Key` "
                 "is still running; repeat after `Retry-After` seconds to get its response",
}
# The problem `code` of each status (409's come from the operation's `conflicts`).
_CODES = {400: "validation_error", 404: "not_found", 412: "precondition_failed",
          413: "payload_too_large", 422: "idempotency_key_reused", 429: "rate_limited",
          500: "internal_error", 503: "service_unavailable"}
_ERROR_TEXT = {
    400: "Invalid request: malformed or non-UTF-8 JSON, unknown fields, wrong types or "
         "values; `errors` names each field (`validation_error`)",
    404: "No such resource in your organization (`not_found`)",
    412: "`If-Match` names a stale version; `current_version` is the current one "
         "(`precondition_failed`)",
    413: "Request body, or one contact in it, over its size limit (`payload_too_large`)",
    422: "`Idempotency-Key` already used with another method, path or body in the last "
         "24 h (`idempotency_key_reused`); nothing was done",
    500: "Unexpected error (`internal_error`); quote `request_id` when reporting it",
    503: "DynamoDB or another AWS service throttled the request or did not answer "
         "(`service_unavailable`, `retryable`); repeat it after `Retry-After` seconds",
}


@dataclass(frozen=True)
class Operation:
    """What one function reads and answers.

    ``errors``: problem statuses besides 401/403/429/500/503 (which every route can give);
    ``conflicts``: the problem codes of its 409; ``conditional``: takes ``If-Match``;
    ``etag``: its success answers carry the contact's ``ETag``; ``body_optional``: it takes
    no body as ``{}``.
    """

    summary: str
    status: int
    response: type[BaseModel] | None = None
    request: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    errors: tuple[int, ...] = ()
    conflicts: tuple[str, ...] = ()
    conditional: bool = False
    etag: bool = False
    body_optional: bool = False  # no body is read as ``{}``
    extra_status: tuple[int, ...] = ()
    media_type: str = "application/json"


OPERATIONS: dict[str, Operation] = {
    "ListContactsFunction": Operation(
        "List contacts (cursor-paged; exact external_id, search by phone, email, external "
        "id or name prefix)", 200,
        ContactPage, query=ListQuery, errors=(400,)),
    "GetContactFunction": Operation("Get a contact", 200, Contact, errors=(404,), etag=True),
    "BatchGetContactsFunction": Operation(
        "Get up to 100 contacts by id (found, not_found, and any that did not fit the "
        "response in not_returned)", 200, BatchGetResult, BatchGetRequest, errors=(400, 413)),
    "ListContactAudiencesFunction": Operation(
        "List the audiences a contact belongs to", 200, AudiencePage, query=PageQuery,
        errors=(400, 404)),
    "CreateContactFunction": Operation(
        "Create a contact", 201, Contact, ContactCreate, errors=(400, 409, 413),
        conflicts=(IDENTITY, CONCURRENT), etag=True),
    "UpsertContactFunction": Operation(
        "Create or update the contact matched by external_id, else phone and/or email", 200,
        UpsertResultModel, ContactUpsert, errors=(400, 409, 413), conflicts=(IDENTITY, CONCURRENT),
        etag=True, extra_status=(201,)),
    "UpdateContactFunction": Operation(
        "Update a contact (partial; null clears)", 200, Contact, ContactPatch,
        errors=(400, 404, 409, 412, 413), conflicts=(IDENTITY, CONCURRENT), conditional=True,
        etag=True),
    "DeleteContactFunction": Operation(
        "Delete a contact", 204, errors=(400, 404, 409, 412), conflicts=(CONCURRENT,),
        conditional=True),
    "MergeContactsFunction": Operation(
        "Merge another contact (source_id) into this one; the source is deleted", 200,
        Contact, MergeRequest, errors=(400, 404, 409, 412, 413),
        conflicts=(MERGE_REFUSED, CONCURRENT), conditional=True, etag=True),
    "BulkUpsertContactsFunction": Operation(
        "Upsert up to 1000 contacts; per-item results in input order", 200, BulkUpsertResult,
        BulkUpsertRequest, errors=(400, 413)),
    "BulkDeleteContactsFunction": Operation(
        "Delete up to 1000 contacts", 200, BulkDeleteResult, BulkDeleteRequest,
        errors=(400, 409, 413), conflicts=(CONCURRENT,)),
    "ExportContactsFunction": Operation(
        "Export the org's contacts as CSV (about 4 MB per part; follow Link rel=next)", 200,
        query=ExportQuery, errors=(400,), media_type="text/csv"),
    "CreateAudienceFunction": Operation(
        "Create an audience", 201, Audience, AudienceCreate, errors=(400, 409, 413),
        conflicts=(NAME_TAKEN, CONCURRENT)),
    "ListAudiencesFunction": Operation("List audiences", 200, AudiencePage, query=PageQuery,
                                       errors=(400,)),
    "GetAudienceFunction": Operation("Get an audience", 200, Audience, errors=(404,)),
    "UpdateAudienceFunction": Operation(
        "Rename or describe an audience", 200, Audience, AudiencePatch,
        errors=(400, 404, 409, 413), conflicts=(NAME_TAKEN, CONCURRENT)),
    "DeleteAudienceFunction": Operation("Delete an audience (its memberships, not contacts)",
                                        204, errors=(404,)),
    "AddAudienceMembersFunction": Operation(
        "Add contacts to an audience (repeated adds are no-ops)", 200, MembersAdded,
        AddToAudienceRequest, errors=(400, 404, 409, 413), conflicts=(CONCURRENT,)),
    "RemoveAudienceMembersFunction": Operation(
        "Remove contacts from an audience", 200, MembersRemoved, MembersRequest,
        errors=(400, 404, 409, 413), conflicts=(CONCURRENT,)),
    "ListAudienceMembersFunction": Operation("List an audience's contacts", 200, ContactPage,
                                             query=PageQuery, errors=(400, 404)),
    "CreateWebhookEndpointFunction": Operation(
        "Register a webhook endpoint (its whsec_ secret is in this answer only)", 201,
        WebhookEndpointCreated, EndpointCreate, errors=(400, 413)),
    "ListWebhookEndpointsFunction": Operation("List webhook endpoints, oldest first", 200,
                                              EndpointPage, query=PageQuery, errors=(400,)),
    "GetWebhookEndpointFunction": Operation("Get a webhook endpoint", 200, WebhookEndpoint,
                                            errors=(404,)),
    "UpdateWebhookEndpointFunction": Operation(
        "Change a webhook endpoint's url, events, description or enabled", 200,
        WebhookEndpoint, EndpointPatch, errors=(400, 404, 413)),
    "DeleteWebhookEndpointFunction": Operation("Delete a webhook endpoint", 204,
                                               errors=(404,)),
    "CreateImportFunction": Operation(
        "Start a CSV import: PUT the file (the export's columns, ≤ 1 GB) to `upload_url`; "
        "it then runs asynchronously with bulk-upsert semantics in file order", 201,
        ImportCreated, ImportCreate, errors=(400, 413), body_optional=True),
    "ListImportsFunction": Operation("List import jobs, newest first", 200, ImportPage,
                                     query=PageQuery, errors=(400,)),
    "GetImportFunction": Operation(
        "Get an import job: status, counts, progress and the errors file link", 200, Import,
        errors=(404,)),
}
# Public routes (``Auth: Authorizer: NONE``): path -> (operationId, summary, media type).
PUBLIC_ROUTES: dict[str, tuple[str, str, str]] = {
    "/docs": ("GetDocs", "This reference as a web page (Redoc), no API key", "text/html"),
    "/openapi.json": ("GetOpenApiDocument", "This OpenAPI document, no API key",
                      "application/json"),
}
# Routes (method, path) whose body differs from their function's default request model.
PATH_REQUESTS: dict[tuple[str, str], type[BaseModel]] = {
    ("POST", "/v1/audiences/{id}/contacts"): MembersRequest}


def _schemas(operations: Iterable[Operation]) -> dict[str, Any]:
    models: list[tuple[type[BaseModel], Any]] = [(Problem, "serialization"),
                                                 (WebhookEvent, "serialization"),
                                                 *[(m, "validation") for m in
                                                   PATH_REQUESTS.values()]]
    for op in operations:
        if op.request:
            models.append((op.request, "validation"))
        if op.response:
            models.append((op.response, "serialization"))
    _, schema = models_json_schema(models, ref_template=REF)
    return dict(sorted({**schema.get("$defs", {}), GATEWAY_MESSAGE: GATEWAY_SCHEMA}.items()))


def _ref(name: str) -> dict[str, str]:
    return {"$ref": REF.format(model=name)}


def _query_schema(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter's schema: no ``null`` branch (an absent parameter is the default),
    no pydantic title; ``cursor`` is the signed cursor format."""
    if name == "cursor":
        return dict(CURSOR_SCHEMA)
    out = {k: v for k, v in schema.items() if k not in ("title", "anyOf", "default")}
    for branch in schema.get("anyOf", []):
        if branch.get("type") != "null":
            out.update(branch)
    if schema.get("default") is not None:
        out["default"] = schema["default"]
    return out


def _path_parameter(path: str, name: str) -> dict[str, Any]:
    prefix = next((p for start, p in ID_PREFIXES.items() if path.startswith(start)), None)
    schema: dict[str, Any] = {"type": "string"}
    if name == "id" and prefix:
        schema["pattern"] = f"^{prefix}{ULID_PATTERN}$"
    return {"name": name, "in": "path", "required": True, "schema": schema,
            "description": "An id this API issued; any other value is answered 404"}


def _parameters(method: str, path: str, op: Operation) -> list[dict[str, Any]]:
    params = [_path_parameter(path, part[1:-1]) for part in path.split("/")
              if part.startswith("{")]
    if op.query:
        props = op.query.model_json_schema()["properties"]
        params += [{"name": name, "in": "query", "required": False,
                    "schema": _query_schema(name, schema)} for name, schema in props.items()]
    if op.conditional:
        params.append({"name": "If-Match", "in": "header", "required": False,
                       "description": "Act only if the contact is still at this version "
                                      "(its ETag, `\"3\"`; `W/\"3\"`, `3` and `*` are taken "
                                      "too); stale → 412, malformed → 400",
                       "schema": IF_MATCH_SCHEMA})
    if method in WRITE_METHODS:
        params.append(IDEMPOTENCY_KEY)
    return params


def _problem(status: int, codes: Iterable[str], description: str,
             headers: dict[str, Any] | None = None, gateway: bool = False) -> dict[str, Any]:
    """A problem answer with this ``status`` and one of these ``codes``; ``gateway``: API
    Gateway may answer it itself, as ``{"message"}``."""
    schema = {"allOf": [_ref(Problem.__name__), {"properties": {
        "status": {"const": status}, "code": {"enum": list(codes)}}}]}
    content: dict[str, Any] = {PROBLEM: {"schema": schema}}
    if gateway:
        content["application/json"] = {"schema": _ref(GATEWAY_MESSAGE)}
    answer: dict[str, Any] = {"description": description, "content": content}
    if headers:
        answer["headers"] = headers
    return answer


def _errors(method: str, op: Operation) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    writes = method in WRITE_METHODS
    conflicts = (*op.conflicts, IN_PROGRESS) if writes else op.conflicts
    # a write takes an Idempotency-Key: a malformed one is a 400 naming it
    for status in sorted({*op.errors, 500, 503, *((400, 409, 422) if writes else ())}):
        if status == 409:
            text = "Conflict: " + "; ".join(_CONFLICT_TEXT[c] for c in conflicts)
            retried = [f"`{c}`" for c in conflicts if c in (CONCURRENT, IN_PROGRESS)]
            retry = ({"Retry-After": {**RETRY_AFTER, "description": RETRY_AFTER_TEXT
                                      + f" (with {' or '.join(retried)})"}}
                     if retried else None)
            responses["409"] = _problem(409, conflicts, text, retry)
        else:
            responses[str(status)] = _problem(
                status, [_CODES[status]], _ERROR_TEXT[status],
                {"Retry-After": RETRY_AFTER} if status == 503 else None,
                gateway=status in (413, 503))
    gateway = {"application/json": {"schema": _ref(GATEWAY_MESSAGE)}}
    responses["401"] = {"description": "No `Authorization: Bearer` header (API Gateway)",
                        "content": gateway}
    responses["403"] = {"description": "Unknown or revoked API key (API Gateway)",
                        "content": gateway}
    responses["429"] = _problem(
        429, [_CODES[429]], "Too many requests from your organization (`rate_limited`); "
        "API Gateway's stage-wide throttle answers `{\"message\"}`",
        {"Retry-After": RETRY_AFTER, **RATE_LIMIT_HEADERS}, gateway=True)
    return dict(sorted(responses.items()))


def _operation(function_id: str, method: str, path: str, op: Operation) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for status in (op.status, *op.extra_status):
        answer: dict[str, Any] = {"description": op.summary}
        if op.response:
            answer["content"] = {op.media_type: {"schema": _ref(op.response.__name__)}}
        elif op.media_type != "application/json":
            answer["content"] = {op.media_type: {"schema": {"type": "string"}}}
            answer["headers"] = {"Link": {
                "description": 'The next part, `</v1/contacts/export?cursor=…>; rel="next"`;'
                               " absent on the last part", "schema": {"type": "string"}}}
        if op.etag:
            answer["headers"] = {"ETag": ETAG_HEADER}
        if status == 201:
            answer["headers"] = {**answer.get("headers", {}), "Location": LOCATION_HEADER}
        answer["headers"] = {**answer.get("headers", {}), **RATE_LIMIT_HEADERS}
        if method in WRITE_METHODS:
            answer["headers"]["Idempotent-Replayed"] = REPLAYED_HEADER
        responses[str(status)] = answer
    responses.update(_errors(method, op))
    operation_id = function_id.removesuffix("Function") + ("FromSeedRoute" if path ==
                                                            "/v1/contacts/add-to-audience" else "")
    spec: dict[str, Any] = {"operationId": operation_id,
                            "summary": op.summary, "parameters": _parameters(method, path, op),
                            "responses": dict(sorted(responses.items()))}
    request = PATH_REQUESTS.get((method.upper(), path), op.request)
    if request:
        media: dict[str, Any] = {"schema": _ref(request.__name__)}
        if request.__name__ in REQUEST_EXAMPLES:
            media["examples"] = {"typical": {"value": REQUEST_EXAMPLES[request.__name__]}}
        spec["requestBody"] = {"required": not op.body_optional,
                               "content": {"application/json": media}}
    return spec


def _public_operation(path: str) -> dict[str, Any]:
    """A route served without the authorizer: no security, 200 or API Gateway's 429/500."""
    operation_id, summary, media_type = PUBLIC_ROUTES[path]
    schema = {"type": "string"} if media_type == "text/html" else {"type": "object"}
    return {"operationId": operation_id, "summary": summary, "security": [], "parameters": [],
            "responses": {
                "200": {"description": summary, "content": {media_type: {"schema": schema}}},
                "429": _problem(429, [_CODES[429]], "Too many requests (stage throttling)",
                                {"Retry-After": RETRY_AFTER}, gateway=True),
                "500": _problem(500, [_CODES[500]], _ERROR_TEXT[500], gateway=True)}}


def _webhooks() -> dict[str, Any]:
    """One OpenAPI 3.1 webhook per event type: what endpoints receive (Standard Webhooks)."""
    headers = {name: {"required": True, "schema": {"type": "string"}, "description": text}
               for name, text in (
                   ("webhook-id", "the event id; the same on every retry"),
                   ("webhook-timestamp", "Unix seconds of this attempt"),
                   ("webhook-signature", "v1,<base64 HMAC-SHA256> with the endpoint secret"))}
    return {event_type: {"post": {
        "summary": f"{event_type} delivery",
        "parameters": [{"name": n, "in": "header", **h} for n, h in headers.items()],
        "requestBody": {"required": True, "content": {
            "application/json": {"schema": _ref(WebhookEvent.__name__)}}},
        "responses": {"2XX": {"description": "delivered"},
                      "410": {"description": "endpoint gone: it is disabled"},
                      "default": {"description": "retried with backoff, then dead-lettered"}},
    }} for event_type in EVENT_TYPES}


def build_openapi(routes: Iterable[tuple[str, str, str]]) -> dict[str, Any]:
    """The OpenAPI 3.1 document for ``routes`` given as ``(method, path, function_id)``.

    Raises:
        KeyError: a routed function has no entry in :data:`OPERATIONS`.
    """
    paths: dict[str, dict[str, Any]] = {}
    used = []
    for method, path, function_id in routes:
        if path in PUBLIC_ROUTES:
            paths.setdefault(path, {})[method.lower()] = _public_operation(path)
            continue
        op = OPERATIONS[function_id]
        used.append(op)
        paths.setdefault(path, {})[method.lower()] = _operation(function_id, method.lower(),
                                                                path, op)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Contacts API", "version": "1.0.0",
                 "description": "Multi-tenant contacts for messaging platforms. Errors are "
                                "RFC 9457 problem details (`application/problem+json`)."},
        "servers": [{"url": "http://127.0.0.1:3000", "description": "local stack (make dev)"}],
        "security": [{"apiKey": []}],
        "paths": dict(sorted(paths.items())),
        "webhooks": _webhooks(),
        "components": {
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer",
                                           "description": "API key: ck_ + 43 characters"}},
            "schemas": _schemas(used),
        },
    }


def render() -> str:
    """The OpenAPI document as committed: indented JSON with a final newline."""
    routes = [(r.method, r.path, r.function_id) for r in template_routes()]
    return json.dumps(build_openapi(routes), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write ``openapi.json`` and DocsFunction's copy (or only the path given as the only
    argument)."""
    args = sys.argv[1:] if argv is None else argv
    document = render()
    for target in [Path(args[0])] if args else [OPENAPI_PATH, DOCS_COPY_PATH]:
        target.write_text(document)
        print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
