"""DELETE /v1/audiences/{id} → 204; memberships go, contacts stay.

The audience is flagged ``deleting`` at once (404 from then on); this request removes up to
980 members itself and FinishAudienceDeleteFunction, fed by the Audiences stream, finishes
whatever is left, also after a crash here.
"""

from contacts_core.audiences.operations import delete_audience
from contacts_core.http.handler import ApiRequest, ApiResponse, api_handler


@api_handler
def handler(request: ApiRequest) -> ApiResponse:
    delete_audience(request.org_id, request.path("id"))
    return ApiResponse(204)
