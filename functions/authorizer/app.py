"""Lambda REQUEST authorizer (HTTP API, payload 2.0, simple responses): API key → org_id."""

from typing import Any

from aws_lambda_powertools.utilities.data_classes import event_source
from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import (
    APIGatewayAuthorizerEventV2,
    APIGatewayAuthorizerResponseV2,
)

from contacts_core.auth import org_for_authorization
from contacts_core.rate_limits import policy_context


@event_source(data_class=APIGatewayAuthorizerEventV2)
def handler(event: APIGatewayAuthorizerEventV2, context: Any) -> dict[str, Any]:
    org_id = org_for_authorization(event.headers.get("authorization"))
    allowed = org_id is not None
    context = {"org_id": org_id, **policy_context(org_id)} if org_id is not None else None
    return APIGatewayAuthorizerResponseV2(allowed, context).asdict()
