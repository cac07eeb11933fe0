"""GET /v1/contacts/export[?cursor] → 200 text/csv; ``Link: <…>; rel="next"`` while more."""

from urllib.parse import quote

from contacts_core.contacts.exports import ExportQuery, export_contacts
from contacts_core.http.handler import ApiRequest, ApiResponse, api_handler


@api_handler
def handler(request: ApiRequest) -> ApiResponse:
    query = request.query_model(ExportQuery)
    text, next_cursor = export_contacts(request.org_id, query.cursor)
    headers = {"Content-Type": "text/csv; charset=utf-8",
               "Content-Disposition": 'attachment; filename="contacts.csv"'}
    if next_cursor:
        headers["Link"] = f'</v1/contacts/export?cursor={quote(next_cursor)}>; rel="next"'
    return ApiResponse(200, headers=headers, text=text)
