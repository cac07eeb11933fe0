"""The process-wide SQS client (webhook deliveries, import jobs)."""

from __future__ import annotations

import os
from functools import cache
from typing import Any

import boto3


@cache
def sqs_client() -> Any:
    """The process-wide SQS client (endpoint from boto3 config, e.g. AWS_ENDPOINT_URL_SQS, or
    a non-empty ``SQS_ENDPOINT_URL``: see ``contacts_core.dynamodb.dynamodb_client``)."""
    return boto3.client("sqs", endpoint_url=os.environ.get("SQS_ENDPOINT_URL") or None)
