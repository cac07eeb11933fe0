"""GET /v1/contacts?limit&cursor&search&tag&sort&order → 200 page."""

from contacts_core.contacts.operations import ListQuery, list_contacts
from contacts_core.http.handler import ApiRequest, ApiResponse, api_handler, json_response


@api_handler
def handler(request: ApiRequest) -> ApiResponse:
    return json_response(200, list_contacts(request.org_id, request.query_model(ListQuery)))
