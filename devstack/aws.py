"""boto3 clients for the local endpoints, with fake credentials (never real AWS)."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

FAKE_CREDENTIALS = {
    "aws_access_key_id": "test",
    "aws_secret_access_key": "test",
    "region_name": "us-east-1",
}


def local_client(service: str, endpoint_url: str, config: Config | None = None) -> Any:
    """A ``service`` client bound to ``endpoint_url`` with the fake ``test`` credentials."""
    return boto3.client(service, endpoint_url=endpoint_url,  # type: ignore[call-overload]
                        config=config, **FAKE_CREDENTIALS)
