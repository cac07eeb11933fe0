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
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

# Error codes AWS answers when the service, not the request, is at fault: throttling and
# server errors that the SDK's own retries (standard mode) did not outlast. From botocore's
# retry rules (``botocore/data/_retry.json``: throttling and transient errors) and the
# DynamoDB API reference's "Common errors"; ``LimitExceededException`` is KMS's request
# quota (webhook secrets). ``TransactionInProgressException`` is mostly caught earlier as
# contention (409, contacts_core.dynamodb.retryable); a call that is not retried there
# is answered 503.
_UNAVAILABLE_CODES = frozenset({
    "ProvisionedThroughputExceededException", "RequestLimitExceeded", "ThrottlingException",
    "Throttling", "TooManyRequestsException", "InternalServerError", "InternalFailure",
    "ServiceUnavailable", "ServiceUnavailableException", "TransactionInProgressException",
    "LimitExceededException"})
_UNREACHABLE = (ConnectionClosedError, ConnectTimeoutError, EndpointConnectionError,
                ReadTimeoutError)


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


def service_unavailable(err: BaseException) -> bool:
    """Whether ``err``, or an error it was raised from (``__cause__``/``__context__``),
    is AWS being unavailable rather than the request being wrong: a throttling or server
    error code after the SDK's retries, or no connection / no answer in time. Such a
    request can be retried as it is (``contacts_core.errors.ServiceUnavailable``)."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, _UNREACHABLE):
            return True
        if isinstance(current, ClientError) and \
                current.response.get("Error", {}).get("Code") in _UNAVAILABLE_CODES:
            return True
        current = current.__cause__ or current.__context__
    return False
