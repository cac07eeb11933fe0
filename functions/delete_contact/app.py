"""DELETE /v1/contacts/{id} → 204; a second delete → 404; If-Match → 412 when stale."""

from contacts_core.contacts.operations import delete_contact
from contacts_core.http.handler import ApiRequest, ApiResponse, api_handler


@api_handler
def handler(request: ApiRequest) -> ApiResponse:
    delete_contact(request.org_id, request.path("id"), request.if_match())
    return ApiResponse(204)
