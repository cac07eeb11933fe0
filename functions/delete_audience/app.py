"""DELETE /v1/audiences/{id} → 204; memberships go, contacts stay."""

from contacts_core.audiences import delete_audience
from contacts_core.http import ApiRequest, ApiResponse, api_handler


@api_handler
def handler(request: ApiRequest) -> ApiResponse:
    delete_audience(request.org_id, request.path("id"))
    return ApiResponse(204)
