"""POST /v1/contacts/bulk {"contacts": [...≤1000]} → 200 per-item results in input order."""

from contacts_core.contacts.bulk import BulkUpsertRequest, bulk_upsert
from contacts_core.http.handler import ApiRequest, ApiResponse, api_handler, json_response

BODY_LIMIT = 6 * 1024 * 1024  # Lambda's synchronous payload limit (SPEC §7)


@api_handler
def handler(request: ApiRequest) -> ApiResponse:
    body = request.body(BulkUpsertRequest, BODY_LIMIT)
    return json_response(200, bulk_upsert(request.org_id, body.contacts, mode=body.mode,
                                          deadline=request.deadline))
