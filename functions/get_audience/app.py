"""GET /v1/audiences/{id} → 200 audience with contact_count, or 404."""

from contacts_core.audiences.operations import get_audience
from contacts_core.http.handler import ApiRequest, ApiResponse, api_handler, json_response


@api_handler
def handler(request: ApiRequest) -> ApiResponse:
    return json_response(200, get_audience(request.org_id, request.path("id")))
