"""PATCH /v1/webhook-endpoints/{id} → 200 endpoint (url, events, enabled, description)."""

from contacts_core.http.handler import ApiRequest, ApiResponse, api_handler, json_response
from contacts_core.webhooks.endpoints import update_endpoint
from contacts_core.webhooks.models import EndpointPatch


@api_handler
def handler(request: ApiRequest) -> ApiResponse:
    body = request.body(EndpointPatch, optional=True)  # none: "No valid fields to update"
    endpoint = update_endpoint(request.org_id, request.path("id"), body)
    return json_response(200, endpoint)
