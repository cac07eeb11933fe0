"""OpenAPI 3.1 description generated from the pydantic models and template.yaml's routes.

:data:`OPERATIONS` says, per function (template logical id), what it reads and answers;
the routes themselves come from the template, so nothing about them is written twice.
Pydantic's JSON Schema (draft 2020-12) is what OpenAPI 3.1 uses for schemas.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from .audience_models import (
    AddToAudienceRequest,
    Audience,
    AudienceCreate,
    AudiencePage,
    AudiencePatch,
    MembersAdded,
    MembersRemoved,
    MembersRequest,
)
from .audiences import PageQuery
from .bulk import BulkDeleteRequest, BulkDeleteResult, BulkUpsertRequest, BulkUpsertResult
from .contacts import ListQuery
from .exports import ExportQuery
from .models import Contact, ContactCreate, ContactPage, ContactPatch, ContactUpsert, Problem
from .models import UpsertResult as UpsertResultModel
from .webhook_models import (
    EVENT_TYPES,
    EndpointCreate,
    EndpointPage,
    EndpointPatch,
    WebhookEndpoint,
    WebhookEndpointCreated,
    WebhookEvent,
)

REF = "#/components/schemas/{model}"
_ERROR_TEXT = {
    400: "Invalid input; `errors` names each field",
    401: "Missing Authorization header",
    403: "Unknown or revoked API key",
    404: "No such contact in your organization",
    409: "Phone or email held by another contact (`conflicting_contact_id`, `field`)",
    412: "If-Match version is stale",
    413: "Contact over 16 KB",
}


@dataclass(frozen=True)
class Operation:
    """What one function reads and answers (statuses besides 401/403, which every route has)."""

    summary: str
    status: int
    response: type[BaseModel] | None = None
    request: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    errors: tuple[int, ...] = ()
    conditional: bool = False
    extra_status: tuple[int, ...] = ()
    media_type: str = "application/json"


OPERATIONS: dict[str, Operation] = {
    "ListContactsFunction": Operation(
        "List contacts (cursor-paged; search by phone, email or name prefix)", 200,
        ContactPage, query=ListQuery, errors=(400,)),
    "GetContactFunction": Operation("Get a contact", 200, Contact, errors=(404,)),
    "CreateContactFunction": Operation("Create a contact", 201, Contact, ContactCreate,
                                       errors=(400, 409, 413)),
    "UpsertContactFunction": Operation(
        "Create or update the contact matched by phone and/or email", 200, UpsertResultModel,
        ContactUpsert, errors=(400, 409, 413), extra_status=(201,)),
    "UpdateContactFunction": Operation("Update a contact (partial; null clears)", 200, Contact,
                                       ContactPatch, errors=(400, 404, 409, 412, 413),
                                       conditional=True),
    "DeleteContactFunction": Operation("Delete a contact", 204, errors=(404, 412),
                                       conditional=True),
    "BulkUpsertContactsFunction": Operation(
        "Upsert up to 1000 contacts; per-item results in input order", 200, BulkUpsertResult,
        BulkUpsertRequest, errors=(400, 413)),
    "BulkDeleteContactsFunction": Operation(
        "Delete up to 1000 contacts", 200, BulkDeleteResult, BulkDeleteRequest, errors=(400,)),
    "ExportContactsFunction": Operation(
        "Export the org's contacts as CSV (about 4 MB per part; follow Link rel=next)", 200,
        query=ExportQuery, errors=(400,), media_type="text/csv"),
    "CreateAudienceFunction": Operation("Create an audience", 201, Audience, AudienceCreate,
                                        errors=(400, 409)),
    "ListAudiencesFunction": Operation("List audiences", 200, AudiencePage, query=PageQuery,
                                       errors=(400,)),
    "GetAudienceFunction": Operation("Get an audience", 200, Audience, errors=(404,)),
    "UpdateAudienceFunction": Operation("Rename or describe an audience", 200, Audience,
                                        AudiencePatch, errors=(400, 404, 409)),
    "DeleteAudienceFunction": Operation("Delete an audience (its memberships, not contacts)",
                                        204, errors=(404,)),
    "AddAudienceMembersFunction": Operation(
        "Add contacts to an audience (repeated adds are no-ops)", 200, MembersAdded,
        AddToAudienceRequest, errors=(400, 404)),
    "RemoveAudienceMembersFunction": Operation(
        "Remove contacts from an audience", 200, MembersRemoved, MembersRequest,
        errors=(400, 404)),
    "ListAudienceMembersFunction": Operation("List an audience's contacts", 200, ContactPage,
                                             query=PageQuery, errors=(400, 404)),
    "CreateWebhookEndpointFunction": Operation(
        "Register a webhook endpoint (its whsec_ secret is in this answer only)", 201,
        WebhookEndpointCreated, EndpointCreate, errors=(400,)),
    "ListWebhookEndpointsFunction": Operation("List webhook endpoints", 200, EndpointPage),
    "GetWebhookEndpointFunction": Operation("Get a webhook endpoint", 200, WebhookEndpoint,
                                            errors=(404,)),
    "UpdateWebhookEndpointFunction": Operation(
        "Change a webhook endpoint's url, events, description or enabled", 200,
        WebhookEndpoint, EndpointPatch, errors=(400, 404)),
    "DeleteWebhookEndpointFunction": Operation("Delete a webhook endpoint", 204,
                                               errors=(404,)),
}
# Routes whose body differs from their function's default request model.
PATH_REQUESTS: dict[str, type[BaseModel]] = {"/v1/audiences/{id}/contacts": MembersRequest}


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
    return dict(sorted(schema.get("$defs", {}).items()))


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF.format(model=model.__name__)}


def _parameters(path: str, op: Operation) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [
        {"name": part[1:-1], "in": "path", "required": True, "schema": {"type": "string"}}
        for part in path.split("/") if part.startswith("{")]
    if op.query:
        props = op.query.model_json_schema()["properties"]
        params += [{"name": name, "in": "query", "required": False, "schema": schema}
                   for name, schema in props.items()]
    if op.conditional:
        params.append({"name": "If-Match", "in": "header", "required": False,
                       "description": "Contact version as an ETag, e.g. \"3\"; stale → 412",
                       "schema": {"type": "string"}})
    return params


def _operation(function_id: str, path: str, op: Operation) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for status in (op.status, *op.extra_status):
        answer: dict[str, Any] = {"description": op.summary}
        if op.response:
            answer["content"] = {op.media_type: {"schema": _ref(op.response)}}
        elif op.media_type != "application/json":
            answer["content"] = {op.media_type: {"schema": {"type": "string"}}}
        responses[str(status)] = answer
    for status in sorted({*op.errors, 401, 403}):
        responses[str(status)] = {"description": _ERROR_TEXT[status], "content": {
            "application/problem+json": {"schema": _ref(Problem)}}}
    operation_id = function_id.removesuffix("Function") + ("FromSeedRoute" if path ==
                                                            "/v1/contacts/add-to-audience" else "")
    spec: dict[str, Any] = {"operationId": operation_id,
                            "summary": op.summary, "parameters": _parameters(path, op),
                            "responses": responses}
    request = PATH_REQUESTS.get(path, op.request)
    if request:
        spec["requestBody"] = {"required": True, "content": {
            "application/json": {"schema": _ref(request)}}}
    return spec


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
            "application/json": {"schema": _ref(WebhookEvent)}}},
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
        op = OPERATIONS[function_id]
        used.append(op)
        paths.setdefault(path, {})[method.lower()] = _operation(function_id, path, op)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Contacts API", "version": "1.0.0",
                 "description": "Multi-tenant contacts for messaging platforms. Errors are "
                                "RFC 9457 problem details."},
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
