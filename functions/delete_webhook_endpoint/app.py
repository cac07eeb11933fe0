"""DELETE /v1/webhook-endpoints/{id} → 204, or 404."""

from contacts_core.http.handler import ApiRequest, ApiResponse, api_handler
from contacts_core.webhooks.endpoints import delete_endpoint


@api_handler
def handler(request: ApiRequest) -> ApiResponse:
    delete_endpoint(request.org_id, request.path("id"))
    return ApiResponse(204)
