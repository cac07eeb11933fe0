"""GET /v1/webhook-endpoints/{id} → 200 endpoint (no secret), or 404."""

from contacts_core.http.handler import ApiRequest, ApiResponse, api_handler, json_response
from contacts_core.webhooks.endpoints import get_endpoint


@api_handler
def handler(request: ApiRequest) -> ApiResponse:
    return json_response(200, get_endpoint(request.org_id, request.path("id")))
