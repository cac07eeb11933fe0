"""POST /v1/audiences → 201 audience; 409 when the org has an audience of that name."""

from contacts_core.audiences.models import AudienceCreate
from contacts_core.audiences.operations import create_audience
from contacts_core.http.handler import ApiRequest, ApiResponse, api_handler, json_response


@api_handler
def handler(request: ApiRequest) -> ApiResponse:
    return json_response(201, create_audience(request.org_id, request.body(AudienceCreate)))
