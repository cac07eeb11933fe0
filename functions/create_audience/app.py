"""POST /v1/audiences → 201 audience; 409 when the org has an audience of that name."""

from contacts_core.audiences.models import AudienceCreate
from contacts_core.audiences.operations import create_audience
from contacts_core.http.handler import ApiRequest, ApiResponse, api_handler, created_response


@api_handler
def handler(request: ApiRequest) -> ApiResponse:
    audience = create_audience(request.org_id, request.body(AudienceCreate))
    return created_response(audience, f"/v1/audiences/{audience.id}")
