"""GET /v1/audiences/{id}/contacts?limit&cursor → 200 page of contact objects."""

from contacts_core.audiences.operations import PageQuery, list_members
from contacts_core.http.handler import ApiRequest, ApiResponse, api_handler, json_response


@api_handler
def handler(request: ApiRequest) -> ApiResponse:
    page = list_members(request.org_id, request.path("id"), request.query_model(PageQuery))
    return json_response(200, page)
