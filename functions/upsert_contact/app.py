"""POST /v1/contacts/upsert → 201 created (``Location``: its path), or 200 updated/unchanged
with matched_on."""

from contacts_core.contacts.operations import upsert_contact
from contacts_core.contacts.requests import ContactUpsert
from contacts_core.http.handler import (
    ApiRequest,
    ApiResponse,
    api_handler,
    created_response,
    json_response,
)


@api_handler
def handler(request: ApiRequest) -> ApiResponse:
    result, created = upsert_contact(request.org_id, request.body(ContactUpsert))
    if created:
        return created_response(result, f"/v1/contacts/{result.contact.id}",
                                result.contact.version)
    return json_response(200, result, result.contact.version)
