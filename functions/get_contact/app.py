"""GET /v1/contacts/{id} → 200 contact with ETag, or 404."""

from contacts_core.contacts.operations import get_contact
from contacts_core.http.handler import ApiRequest, ApiResponse, api_handler, json_response


@api_handler
def handler(request: ApiRequest) -> ApiResponse:
    contact = get_contact(request.org_id, request.path("id"))
    return json_response(200, contact, contact.version)
