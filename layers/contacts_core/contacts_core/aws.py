"""The functions' AWS service clients: botocore clients on one process-wide botocore session.

boto3's ``boto3.client`` is this same botocore client made through boto3's default session;
going to botocore directly leaves out boto3's package import (s3transfer, multiprocessing:
about 30 ms of every cold start, see the README's "Cold start"), which no DynamoDB, SQS,
Secrets Manager or KMS call needs. Configuration is botocore's, as boto3's is: region and
credentials from the environment (``AWS_REGION``/``AWS_DEFAULT_REGION``, the Lambda role's
``AWS_ACCESS_KEY_ID``…), service endpoints from ``AWS_ENDPOINT_URL_<SERVICE>``. S3 keeps
boto3 (``contacts_core.imports.files``): its managed transfers are boto3's.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

import botocore.session
from botocore.config import Config


@cache
def _session() -> botocore.session.Session:
    return botocore.session.get_session()


def aws_client(service: str, endpoint_variable: str, config: Config | None = None) -> Any:
    """A new client of ``service`` (botocore's service name, e.g. ``"dynamodb"``).

    A non-empty environment variable ``endpoint_variable`` (a template variable, empty on
    AWS: ``sam local`` can override template variables only) is the endpoint; otherwise
    botocore's configuration decides. Callers cache the client per process.
    """
    return _session().create_client(service, endpoint_url=os.environ.get(endpoint_variable) or None,
                                    config=config)
