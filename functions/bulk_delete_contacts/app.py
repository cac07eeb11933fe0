"""POST /v1/contacts/bulk-delete {"contact_ids": [...≤1000]} → 200 {deleted, not_found}."""

from contacts_core.contacts.bulk import BulkDeleteRequest, bulk_delete
from contacts_core.http.handler import ApiRequest, ApiResponse, api_handler, json_response

BODY_LIMIT = 128 * 1024  # 1000 ids


@api_handler
def handler(request: ApiRequest) -> ApiResponse:
    body = request.body(BulkDeleteRequest, BODY_LIMIT)
    return json_response(200, bulk_delete(request.org_id, body.contact_ids,
                                          deadline=request.deadline))
