"""Lambda REQUEST authorizer (HTTP API, payload 2.0, simple responses): API key → org_id."""

from typing import Any

from aws_lambda_powertools.utilities.data_classes import (
    APIGatewayAuthorizerEventV2,
    event_source,
)
from contacts_core.auth import org_for_authorization


@event_source(data_class=APIGatewayAuthorizerEventV2)
def handler(event: APIGatewayAuthorizerEventV2, context: Any) -> dict[str, Any]:
    org_id = org_for_authorization((event.headers or {}).get("authorization"))
    if org_id is None:
        return {"isAuthorized": False}
    return {"isAuthorized": True, "context": {"org_id": org_id}}
