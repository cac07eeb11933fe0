"""POST /v1/webhook-endpoints → 201 endpoint with its whsec_ secret (shown only here)."""

from contacts_core.http.handler import ApiRequest, ApiResponse, api_handler, created_response
from contacts_core.http.idempotency import Seal
from contacts_core.webhooks.endpoints import (
    create_endpoint,
    seal_created_secret,
    unseal_created_secret,
)
from contacts_core.webhooks.models import EndpointCreate


# An Idempotency-Key record of this answer keeps the secret only as KMS ciphertext.
@api_handler(seal=Seal(seal_created_secret, unseal_created_secret))
def handler(request: ApiRequest) -> ApiResponse:
    endpoint = create_endpoint(request.org_id, request.body(EndpointCreate))
    return created_response(endpoint, f"/v1/webhook-endpoints/{endpoint.id}")
