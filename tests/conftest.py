"""Shared fixtures: one DynamoDB Local per test session, tables created from template.yaml.

Functions get their configuration from template.yaml's environment; the tests derive the
same variables from the template (``Ref`` to a table → its local name, the logical id),
so nothing about tables is written twice.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.dynamodb_local import DynamoDBLocal
from devstack.tables import create_tables, load_template

REPO = Path(__file__).resolve().parent.parent
TEMPLATE = REPO / "template.yaml"


def template_environment(parameters: dict[str, str]) -> dict[str, str]:
    """Environment every function gets from template.yaml, Refs resolved as the local stack does.

    SAM merges ``Globals`` into each function; the union over functions is returned.
    """
    template = load_template(TEMPLATE, parameters)
    env: dict[str, str] = {}
    for resource in template["Resources"].values():
        if resource.get("Type") == "AWS::Serverless::Function":
            variables = (resource["Properties"].get("Environment") or {}).get("Variables", {})
            env |= {k: str(v) for k, v in variables.items()}
    return env


@pytest.fixture(scope="session")
def dynamodb() -> Iterator[str]:
    """Endpoint of a fresh in-memory DynamoDB Local with every table of template.yaml.

    Also points boto3 (and so the domain's data-access module) at it with fake credentials.
    """
    with DynamoDBLocal() as ddb:
        create_tables(TEMPLATE, ddb.endpoint_url)
        env = template_environment({"CursorSecret": secrets.token_urlsafe(36)})
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
