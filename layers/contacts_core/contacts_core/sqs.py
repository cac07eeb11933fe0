"""The process-wide SQS client (webhook deliveries, import jobs)."""

from __future__ import annotations

from functools import cache
from typing import Any

from contacts_core.aws import aws_client


@cache
def sqs_client() -> Any:
    """The process-wide SQS client (endpoint from botocore's configuration, e.g.
    ``AWS_ENDPOINT_URL_SQS``, or a non-empty ``SQS_ENDPOINT_URL``: see
    :func:`contacts_core.aws.aws_client`)."""
    return aws_client("sqs", "SQS_ENDPOINT_URL")
