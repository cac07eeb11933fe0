"""PATCH /v1/audiences/{id} → 200 audience; 409 when the new name is taken."""

from contacts_core.audiences.models import AudiencePatch
from contacts_core.audiences.operations import update_audience
from contacts_core.http.handler import ApiRequest, ApiResponse, api_handler, json_response


@api_handler
def handler(request: ApiRequest) -> ApiResponse:
    body = request.body(AudiencePatch, optional=True)  # none: "No valid fields to update"
    audience = update_audience(request.org_id, request.path("id"), body)
    return json_response(200, audience)
