"""PATCH /v1/contacts/{id} → 200 contact; If-Match → 412 when stale."""

from contacts_core.contacts import update_contact
from contacts_core.http import ApiRequest, ApiResponse, api_handler, json_response
from contacts_core.models import ContactPatch


@api_handler
def handler(request: ApiRequest) -> ApiResponse:
    contact = update_contact(request.org_id, request.path("id"), request.body(ContactPatch),
                             request.if_match())
    return json_response(200, contact, contact.version)
