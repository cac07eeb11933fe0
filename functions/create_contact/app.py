"""POST /v1/contacts → 201 contact (``Location``: its path), or 409 identity_conflict naming
the holder."""

from contacts_core.contacts.operations import create_contact
from contacts_core.contacts.requests import ContactCreate
from contacts_core.http.handler import ApiRequest, ApiResponse, api_handler, created_response


@api_handler
def handler(request: ApiRequest) -> ApiResponse:
    contact = create_contact(request.org_id, request.body(ContactCreate))
    return created_response(contact, f"/v1/contacts/{contact.id}", contact.version)
