"""Secrets Manager rotation of the cursor key ring (``CursorKeySecret``): Secrets Manager
calls this function once per step — createSecret, setSecret, testSecret, finishSecret —
with ``{"SecretId", "ClientRequestToken", "Step"}``
(see :func:`contacts_core.keys.rotation_step`)."""

from typing import Any

from contacts_core.keys import rotation_step
from contacts_core.observability import logger, observed


@observed
def handler(event: dict[str, Any], context: Any) -> None:
    logger.info("rotation step", step=event["Step"], version=event["ClientRequestToken"])
    rotation_step(event["SecretId"], event["ClientRequestToken"], event["Step"])
