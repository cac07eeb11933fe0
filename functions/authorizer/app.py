"""Lambda REQUEST authorizer (HTTP API, payload 2.0, simple responses): API key → org_id.

Logs its decision (``allow`` with the org, or ``deny``) under the request id, never the key.
"""

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.data_classes import event_source
from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import (
    APIGatewayAuthorizerEventV2,
    APIGatewayAuthorizerResponseV2,
)

from contacts_core.auth import org_for_authorization
from contacts_core.observability import bind_org, logger, observed


@observed(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@event_source(data_class=APIGatewayAuthorizerEventV2)
def handler(event: APIGatewayAuthorizerEventV2, context: Any) -> dict[str, Any]:
    header = event.headers.get("authorization")
    org_id = org_for_authorization(header)
    allowed = org_id is not None
    if org_id is not None:
        bind_org(org_id)
        logger.info("authorized", decision="allow", route=event.route_key)
    else:
        logger.info("refused", decision="deny", route=event.route_key,
                    reason="no Authorization header" if not header
                    else "not a known, active Bearer API key")
    return APIGatewayAuthorizerResponseV2(allowed, {"org_id": org_id} if allowed else None).asdict()
