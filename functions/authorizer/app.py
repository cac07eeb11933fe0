"""Lambda REQUEST authorizer (HTTP API, payload 2.0, simple responses): API key → org_id.

Logs its decision (``allow`` with the org, or ``deny``) under the request id, never the key.

The event is read by its keys and the simple response written as the two-member dict
API Gateway documents (``isAuthorized``, ``context``), not through Powertools'
``APIGatewayAuthorizerEventV2``/``APIGatewayAuthorizerResponseV2``: importing those imports
every event class of ``aws_lambda_powertools.utilities.data_classes``, a cost every cold
start of the function that fronts every request would pay (issue 11). Source: "Working
with AWS Lambda authorizers for HTTP APIs", payload format 2.0 and simple responses.
"""

from typing import Any

from aws_lambda_powertools.logging import correlation_paths

from contacts_core.auth import org_for_authorization
from contacts_core.http.headers import header_value
from contacts_core.observability import bind_org, logger, observed
from contacts_core.rate_limits import policy_context


@observed(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """``{"isAuthorized": true, "context": {"org_id", …rate policy}}`` for an active
    ``Bearer`` API key, else ``{"isAuthorized": false}`` (API Gateway then answers 403)."""
    header = header_value(event, "authorization")
    route = event.get("routeKey")
    org_id = org_for_authorization(header)
    if org_id is None:
        logger.info("refused", decision="deny", route=route,
                    reason="no Authorization header" if not header
                    else "not a known, active Bearer API key")
        return {"isAuthorized": False}
    bind_org(org_id)
    logger.info("authorized", decision="allow", route=route)
    return {"isAuthorized": True, "context": {"org_id": org_id, **policy_context(org_id)}}
