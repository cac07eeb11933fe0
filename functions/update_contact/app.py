"""PATCH /v1/contacts/{id} → 200 contact; If-Match → 412 when stale."""

from contacts_core.contacts.operations import update_contact
from contacts_core.contacts.requests import ContactPatch
from contacts_core.http.handler import ApiRequest, ApiResponse, api_handler, json_response


@api_handler
def handler(request: ApiRequest) -> ApiResponse:
    # no body at all is a PATCH naming no field: "No valid fields to update", as for {}
    body = request.body(ContactPatch, optional=True)
    contact = update_contact(request.org_id, request.path("id"), body, request.if_match())
    return json_response(200, contact, contact.version)
