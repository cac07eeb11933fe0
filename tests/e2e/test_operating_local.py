"""Operating features over HTTP on the local stack (SPEC §9.4): the per-org rate limit is
enforced there too, and Idempotency-Key replays a create."""

from __future__ import annotations

import http.client
import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import boto3
import pytest

from contacts_core.rate_limits import RateLimitStore, RatePolicy
from tests.conftest import template_environment


@pytest.fixture
def policies(stack) -> RateLimitStore:
    """The stack's rate-limit table, as an operator would reach it."""
    client = boto3.client("dynamodb", endpoint_url=stack.dynamodb_endpoint,
                          region_name="us-east-1", aws_access_key_id="test",
                          aws_secret_access_key="test")
    table = template_environment()["RATE_LIMITS_TABLE"]
    return RateLimitStore(client, table)


def test_a_burst_from_one_org_gets_429_while_another_org_is_served(stack, policies):
    # Given an org limited to 1 request/s with a burst of 3, and another org on the default
    noisy, quiet = (f"org_{uuid.uuid4().hex[:10]}" for _ in range(2))
    policies.set_policy(noisy, RatePolicy(1, 3))
    noisy_client = stack.client(stack.mint_key(noisy))
    quiet_client = stack.client(stack.mint_key(quiet))
    # When the first fires 16 requests at once
    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: noisy_client.get("/v1/contacts"), range(16)))
    elapsed = time.monotonic() - started
    # Then it gets its burst (plus 1/s while they ran), and 429 rate_limited problems with
    # the headers for the rest
    statuses = sorted(a.status_code for a in answers)
    assert statuses.count(200) <= 3 + int(elapsed) + 1, (statuses, elapsed)
    assert statuses.count(429) >= 1 and set(statuses) == {200, 429}, statuses
    refused = next(a for a in answers if a.status_code == 429)
    assert refused.headers["Content-Type"] == "application/problem+json"
    assert refused.json()["code"] == "rate_limited"
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.headers["RateLimit-Policy"] == '"org";q=1;w=1;burst=3'
    # And the other org is served, under the default policy of template.yaml (100/s, 200)
    served = quiet_client.get("/v1/contacts")
    assert served.status_code == 200
    assert served.headers["RateLimit-Policy"] == '"org";q=100;w=1;burst=200'


def test_a_retried_create_with_an_idempotency_key_is_replayed(stack):
    # Given a create sent with an Idempotency-Key
    client = stack.client(stack.mint_key(f"org_{uuid.uuid4().hex[:10]}"))
    headers = {"Idempotency-Key": str(uuid.uuid4())}
    body = {"phone": "+27821234567", "first_name": "Sam"}
    first = client.post("/v1/contacts", json=body, headers=headers)
    # When it is retried, then retried with another body
    again = client.post("/v1/contacts", json=body, headers=headers)
    other = client.post("/v1/contacts", json={"phone": "+27821234568"}, headers=headers)
    # Then the retry replays the 201, and the other body is refused with 422
    assert (first.status_code, again.status_code, other.status_code) == (201, 201, 422)
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    assert other.json()["code"] == "idempotency_key_reused"
    assert len(client.get("/v1/contacts").json()["data"]) == 1


def test_an_idempotency_key_header_sent_twice_is_a_400_and_creates_nothing(stack):
    # Given a create carrying two Idempotency-Key headers (HTTP joins them with a comma)
    api_key = stack.mint_key(f"org_{uuid.uuid4().hex[:10]}")
    base = urlsplit(stack.base_url)
    connection = http.client.HTTPConnection(base.hostname or "", base.port, timeout=30)
    body = json.dumps({"phone": "+27821234567"}).encode()
    connection.putrequest("POST", "/v1/contacts")
    for name, value in [("Authorization", f"Bearer {api_key}"),
                        ("Content-Type", "application/json"),
                        ("Content-Length", str(len(body))),
                        ("Idempotency-Key", str(uuid.uuid4())),
                        ("Idempotency-Key", str(uuid.uuid4()))]:
        connection.putheader(name, value)
    # When it is sent
    connection.endheaders(body)
    response = connection.getresponse()
    problem = json.loads(response.read())
    connection.close()
    # Then 400 names the header, and nothing was created
    assert response.status == 400
    assert problem["errors"][0]["field"] == "Idempotency-Key"
    assert stack.client(api_key).get("/v1/contacts").json()["data"] == []
