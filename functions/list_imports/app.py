"""GET /v1/imports?limit&cursor → 200 page of import jobs, newest first."""

from contacts_core.http.handler import ApiRequest, ApiResponse, api_handler, json_response
from contacts_core.http.paging import PageQuery
from contacts_core.imports.operations import list_imports


@api_handler
def handler(request: ApiRequest) -> ApiResponse:
    return json_response(200, list_imports(request.org_id, request.query_model(PageQuery)))
