"""GET /v1/webhook-endpoints?limit&cursor → 200 page of endpoints, oldest first (no secrets)."""

from contacts_core.http.handler import ApiRequest, ApiResponse, api_handler, json_response
from contacts_core.http.paging import PageQuery
from contacts_core.webhooks.endpoints import list_endpoints


@api_handler
def handler(request: ApiRequest) -> ApiResponse:
    return json_response(200, list_endpoints(request.org_id, request.query_model(PageQuery)))
