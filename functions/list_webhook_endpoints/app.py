"""GET /v1/webhook-endpoints → 200 {data: [...], next_cursor: null} (no secrets)."""

from contacts_core.http.handler import ApiRequest, ApiResponse, api_handler, json_response
from contacts_core.webhooks.endpoints import list_endpoints


@api_handler
def handler(request: ApiRequest) -> ApiResponse:
    return json_response(200, list_endpoints(request.org_id))
