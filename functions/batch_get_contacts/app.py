"""POST /v1/contacts/batch-get {"ids": [...1–100]} → 200 {data, not_found, not_returned}."""

from contacts_core.contacts.operations import BatchGetRequest, batch_get_contacts
from contacts_core.http.handler import ApiRequest, ApiResponse, api_handler, json_response


@api_handler
def handler(request: ApiRequest) -> ApiResponse:
    body = request.body(BatchGetRequest)
    return json_response(200, batch_get_contacts(request.org_id, body.ids))
