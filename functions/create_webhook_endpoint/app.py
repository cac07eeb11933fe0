"""POST /v1/webhook-endpoints → 201 endpoint with its whsec_ secret (shown only here)."""

from contacts_core.http import ApiRequest, ApiResponse, api_handler, json_response
from contacts_core.webhook_models import EndpointCreate
from contacts_core.webhooks import create_endpoint


@api_handler
def handler(request: ApiRequest) -> ApiResponse:
    return json_response(201, create_endpoint(request.org_id, request.body(EndpointCreate)))
