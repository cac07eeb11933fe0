"""GET /v1/contacts — a page of contacts: search, filters, sort, incremental sync (SPEC §9.3)."""

from contacts_core.contacts.search import ListQuery, list_contacts
from contacts_core.http.handler import ApiRequest, ApiResponse, api_handler, json_response


@api_handler
def handler(request: ApiRequest) -> ApiResponse:
    return json_response(200, list_contacts(request.org_id, request.query_model(ListQuery)))
