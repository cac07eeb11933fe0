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
from contacts_core.rate_limits import policy_context


@observed(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@event_source(data_class=APIGatewayAuthorizerEventV2)
def handler(event: APIGatewayAuthorizerEventV2, context: Any) -> dict[str, Any]:
    header = event.headers.get("authorization")
    org_id = org_for_authorization(header)
    if org_id is None:
        logger.info("refused", decision="deny", route=event.route_key,
                    reason="no Authorization header" if not header
                    else "not a known, active Bearer API key")
        return APIGatewayAuthorizerResponseV2(False).asdict()
    bind_org(org_id)
    logger.info("authorized", decision="allow", route=event.route_key)
    return APIGatewayAuthorizerResponseV2(True, {"org_id": org_id,
                                                 **policy_context(org_id)}).asdict()
