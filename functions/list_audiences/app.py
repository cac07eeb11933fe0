"""GET /v1/audiences?limit&cursor → 200 page of audiences."""

from contacts_core.audiences.operations import PageQuery, list_audiences
from contacts_core.http.handler import ApiRequest, ApiResponse, api_handler, json_response


@api_handler
def handler(request: ApiRequest) -> ApiResponse:
    return json_response(200, list_audiences(request.org_id, request.query_model(PageQuery)))
