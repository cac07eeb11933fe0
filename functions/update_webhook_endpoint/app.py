"""PATCH /v1/webhook-endpoints/{id} → 200 endpoint (url, events, enabled, description)."""

from contacts_core.http import ApiRequest, ApiResponse, api_handler, json_response
from contacts_core.webhook_models import EndpointPatch
from contacts_core.webhooks import update_endpoint


@api_handler
def handler(request: ApiRequest) -> ApiResponse:
    endpoint = update_endpoint(request.org_id, request.path("id"), request.body(EndpointPatch))
    return json_response(200, endpoint)
