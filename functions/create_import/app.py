"""POST /v1/imports (body optional) → 201 import job ``awaiting_upload`` with its presigned
``upload_url``."""

from contacts_core.http.handler import ApiRequest, ApiResponse, api_handler, created_response
from contacts_core.imports.models import ImportCreate
from contacts_core.imports.operations import create_import


@api_handler
def handler(request: ApiRequest) -> ApiResponse:
    body = request.body(ImportCreate, optional=True)
    job = create_import(request.org_id, body)
    return created_response(job, f"/v1/imports/{job.id}")
