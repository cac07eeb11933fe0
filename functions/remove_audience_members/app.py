"""POST /v1/audiences/{id}/contacts/remove → 200 {removed, not_members, not_found,
contact_count}."""

from contacts_core.audiences.models import MembersRequest
from contacts_core.audiences.operations import remove_members
from contacts_core.http.handler import ApiRequest, ApiResponse, api_handler, json_response

BODY_LIMIT = 128 * 1024  # 1000 ids


@api_handler
def handler(request: ApiRequest) -> ApiResponse:
    body = request.body(MembersRequest, BODY_LIMIT)
    return json_response(200, remove_members(request.org_id, request.path("id"),
                                             body.contact_ids))
