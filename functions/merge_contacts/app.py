"""POST /v1/contacts/{id}/merge {"source_id"} → 200 merged contact; If-Match → 412 when stale."""

from contacts_core.contacts.merge import MergeRequest, merge_contacts
from contacts_core.http.handler import ApiRequest, ApiResponse, api_handler, json_response


@api_handler
def handler(request: ApiRequest) -> ApiResponse:
    contact = merge_contacts(request.org_id, request.path("id"), request.body(MergeRequest),
                             request.if_match())
    return json_response(200, contact, contact.version)
