"""Shared fixtures: one DynamoDB Local per test session, tables created from template.yaml,
and one moto server (KMS, Secrets Manager, S3; SQS for the integration tests) holding the
template's keys, secrets and buckets.

Functions get their configuration from template.yaml's environment; the tests derive the
same variables from the template (``Ref`` to a table → its local name, the logical id; to
a key or secret → its id/ARN on moto; to a bucket → its local name), so nothing about
tables, keys or buckets is written twice.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from moto.server import ThreadedMotoServer

from devstack.buckets import create_buckets, s3_environment
from devstack.dynamodb_local import DynamoDBLocal
from devstack.keys import create_keys, create_secrets, endpoint_environment
from devstack.queues import resolve_queue_refs
from devstack.tables import create_tables, load_template

REPO = Path(__file__).resolve().parent.parent
TEMPLATE = REPO / "template.yaml"


def template_environment(parameters: dict[str, str] | None = None) -> dict[str, str]:
    """Environment every function gets from template.yaml, Refs resolved as the local stack does.

    SAM merges ``Globals`` into each function; the union over functions (their own
    variables included, e.g. ``IMPORTS_BUCKET``) is returned.
    """
    template = load_template(TEMPLATE, parameters)
    env: dict[str, str] = {}
    for resource in template["Resources"].values():
        if resource.get("Type") == "AWS::Serverless::Function":
            variables = (resource["Properties"].get("Environment") or {}).get("Variables", {})
            env |= {k: str(v) for k, v in variables.items()}
    return env


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """Endpoint of one moto server for the session (KMS, Secrets Manager, S3, SQS)."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="session")
def aws_keys(moto_server: str) -> dict[str, str]:
    """The template's KMS keys and secrets on the session's moto server:
    ``{logical_id: key id | secret ARN}`` (the cursor key ring as created, never rotated)."""
    return {**create_keys(TEMPLATE, moto_server), **create_secrets(TEMPLATE, moto_server)}


@pytest.fixture(scope="session")
def buckets(moto_server: str) -> dict[str, str]:
    """The template's S3 buckets on the session's moto server: ``{logical_id: name}``."""
    return create_buckets(TEMPLATE, moto_server)


@pytest.fixture(scope="session")
def dynamodb(moto_server: str, aws_keys: dict[str, str],
             buckets: dict[str, str]) -> Iterator[str]:
    """Endpoint of a fresh in-memory DynamoDB Local with every table of template.yaml.

    Also points boto3 (and so the domain's data-access modules) at it, and at the moto
    server for KMS, Secrets Manager and S3 (path-style), with fake credentials; bucket
    variables (``IMPORTS_BUCKET``) name the local buckets.
    """
    with DynamoDBLocal() as ddb:
        create_tables(TEMPLATE, ddb.endpoint_url)
        env = resolve_queue_refs(template_environment(), {**aws_keys, **buckets})
        env |= endpoint_environment(moto_server) | s3_environment(moto_server)
        # In-process tests call handlers faster than an org's 100/s would allow; the
        # rate-limit tests set their own policies (tests/integration/test_rate_limits.py).
        env |= {"RATE_LIMIT_PER_SECOND": "100000", "RATE_LIMIT_BURST": "100000000"}
        env |= {"AWS_ENDPOINT_URL_DYNAMODB": ddb.endpoint_url, "AWS_ACCESS_KEY_ID": "test",
                "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_REGION": "us-east-1"}
        with pytest.MonkeyPatch.context() as patch:
            for key, value in env.items():
                patch.setenv(key, value)
            yield ddb.endpoint_url


@pytest.fixture
def org_id() -> str:
    """A fresh tenant per test, so tests never see each other's contacts."""
    return f"org_{uuid.uuid4().hex[:12]}"
