"""GET /v1/imports/{id} → 200 import job (status, counts, progress, errors_url), or 404."""

from contacts_core.http.handler import ApiRequest, ApiResponse, api_handler, json_response
from contacts_core.imports.operations import get_import


@api_handler
def handler(request: ApiRequest) -> ApiResponse:
    return json_response(200, get_import(request.org_id, request.path("id")))
