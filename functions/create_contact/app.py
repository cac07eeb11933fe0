"""POST /v1/contacts → 201 contact, or 409 identity_conflict naming the holder."""

from contacts_core.contacts.operations import create_contact
from contacts_core.contacts.requests import ContactCreate
from contacts_core.http.handler import ApiRequest, ApiResponse, api_handler, json_response


@api_handler
def handler(request: ApiRequest) -> ApiResponse:
    contact = create_contact(request.org_id, request.body(ContactCreate))
    return json_response(201, contact, contact.version)
