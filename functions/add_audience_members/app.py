"""POST /v1/audiences/{id}/contacts and the seed route POST /v1/contacts/add-to-audience
→ 200 {added, already_members, not_found, contact_count}."""

from contacts_core.audiences.models import AddToAudienceRequest, MembersRequest
from contacts_core.audiences.operations import add_members
from contacts_core.http.handler import ApiRequest, ApiResponse, api_handler, json_response

BODY_LIMIT = 128 * 1024  # 1000 ids


@api_handler
def handler(request: ApiRequest) -> ApiResponse:
    if "id" in request.path_parameters:
        audience_id = request.path("id")
        contact_ids = request.body(MembersRequest, BODY_LIMIT).contact_ids
    else:
        body = request.body(AddToAudienceRequest, BODY_LIMIT)
        audience_id, contact_ids = body.audience_id, body.contact_ids
    return json_response(200, add_members(request.org_id, audience_id, contact_ids))
