"""GET /v1/contacts/{id}/audiences?limit&cursor → 200 page of the contact's audiences."""

from contacts_core.audiences.operations import PageQuery, list_contact_audiences
from contacts_core.http.handler import ApiRequest, ApiResponse, api_handler, json_response


@api_handler
def handler(request: ApiRequest) -> ApiResponse:
    page = list_contact_audiences(request.org_id, request.path("id"),
                                  request.query_model(PageQuery))
    return json_response(200, page)
