"""Per-org rate limits (SPEC §9.4) against DynamoDB Local: the GCRA bucket against a
model, 429 problems with Retry-After and RateLimit headers, one org never starving
another, per-org policies through the authorizer, failing open."""

from __future__ import annotations

import copy
import json
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contacts_core.auth import mint_api_key
from contacts_core.rate_limits import MICROS, RateLimitStore, RatePolicy
from tests.integration.conftest import _Context
from tests.support.invariants import assert_consistent

AUTH_SAMPLE = json.loads((Path(__file__).parents[2] / "events" / "authorizer_request_v2.json")
                         .read_text())
START = 1_800_000_000 * MICROS  # a fixed clock (µs): the store takes ``now`` explicitly


@dataclass
class Bucket:
    """The model: a token bucket with ``burst`` tokens, refilled at ``rate`` per second,
    counted in fractions of a token (microsecond credit)."""

    policy: RatePolicy
    credit: int = -1  # µs of credit; -1 = never used (full)
    at: int = 0

    def take(self, now: int) -> bool:
        cap = self.policy.tolerance
        credit = cap if self.credit < 0 else min(cap, self.credit + (now - self.at))
        self.at = now
        if credit >= self.policy.interval:
            self.credit = credit - self.policy.interval
            return True
        self.credit = credit
        return False


def fresh_org() -> str:
    return f"org_{uuid.uuid4().hex[:12]}"


@settings(max_examples=40, deadline=None)
@given(rate=st.integers(1, 50), burst=st.integers(1, 20),
       gaps=st.lists(st.integers(0, 400_000), min_size=1, max_size=60))
def test_the_bucket_in_dynamodb_decides_like_a_token_bucket(dynamodb, rate, burst, gaps):
    # Given an org's bucket with a random policy, and requests at random moments
    policy, store, org = RatePolicy(rate, burst), RateLimitStore(), fresh_org()
    model, now = Bucket(policy), START
    for gap in gaps:
        now += gap
        # When each request takes from the bucket
        decision = store.take(org, policy, now=now)
        # Then DynamoDB's answer is the model's, and what it advertises is coherent
        assert decision.allowed == model.take(now), (now - START, decision)
        if decision.allowed:
            assert 0 <= decision.remaining < burst and decision.retry_after == 0
        else:
            assert decision.remaining == 0 and decision.retry_after >= 1
            # and waiting Retry-After is enough
            assert Bucket(policy, model.credit, now).take(now + decision.retry_after * MICROS)


def test_an_idle_org_gets_its_burst_at_once_then_its_rate(dynamodb):
    # Given the default policy (100/s, burst 200 in template.yaml) and an idle org
    policy, store, org = RatePolicy(100, 200), RateLimitStore(), fresh_org()
    # When 250 requests arrive in the same instant
    decisions = [store.take(org, policy, now=START) for _ in range(250)]
    # Then exactly the burst is served; the rest must wait one emission interval
    assert sum(d.allowed for d in decisions) == 200
    refused = decisions[-1]
    assert refused.retry_after == 1 and refused.headers()["RateLimit"] == '"org";r=0;t=2'
    # And one second later, 100 more are served and the 101st is not
    later = [store.take(org, policy, now=START + MICROS) for _ in range(101)]
    assert [d.allowed for d in later] == [True] * 100 + [False]


def test_a_burst_from_one_org_gets_429_while_another_org_is_served(api):
    # Given two orgs with the same small policy (as the authorizer hands it over)
    context = {"rate_limit": 2, "rate_burst": 5}
    noisy, quiet = fresh_org(), fresh_org()
    # When the first sends 12 creates back to back
    answers = [api.request("POST", "/v1/contacts", org_id=noisy, authorizer=context,
                           json_body={"email": f"n{i}@example.com"}) for i in range(12)]
    # Then it is served its burst and then refused with 429 rate_limited problems
    statuses = [a.status for a in answers]
    assert statuses[:5] == [201] * 5 and statuses.count(429) >= 6, statuses
    refused = next(a for a in answers if a.status == 429)
    assert refused.body["code"] == "rate_limited" and refused.body["status"] == 429
    assert refused.headers["Content-Type"] == "application/problem+json"
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.headers["RateLimit-Policy"] == '"org";q=2;w=1;burst=5'
    assert refused.headers["RateLimit"].startswith('"org";r=0;t=')
    # And a refused create changed nothing
    assert len(assert_consistent(noisy).contacts) == statuses.count(201)
    # And meanwhile the other org is served in full, with its own budget advertised
    served = api.request("GET", "/v1/contacts", org_id=quiet, authorizer=context)
    assert served.status == 200 and served.headers["RateLimit"] == '"org";r=4;t=1'


def test_every_response_advertises_the_org_policy_and_what_is_left(api):
    # Given an org with a policy of 10/s, burst 20
    org, context = fresh_org(), {"rate_limit": 10, "rate_burst": 20}
    # When it makes three requests, one of them a 404
    answers = [api.request("GET", "/v1/contacts/con_01JD8Q2M6W3YQ0V4C7N5T9KX2B", org_id=org,
                           authorizer=context) for _ in range(3)]
    # Then each says the policy and counts down what is left
    assert [a.status for a in answers] == [404] * 3
    assert {a.headers["RateLimit-Policy"] for a in answers} == {'"org";q=10;w=1;burst=20'}
    remaining = [int(a.headers["RateLimit"].split("r=")[1].split(";")[0]) for a in answers]
    assert remaining == [19, 18, 17]


def test_an_org_policy_reaches_the_functions_through_the_authorizer(api):
    # Given an org with its own policy, and an API key of it
    org = fresh_org()
    RateLimitStore().set_policy(org, RatePolicy(3, 4))
    event = copy.deepcopy(AUTH_SAMPLE)
    event["headers"]["authorization"] = f"Bearer {mint_api_key(org)}"
    # When the authorizer admits the key, and the context it returns reaches a function
    answer = api.handler_module(api.repo / "functions" / "authorizer").handler(event, _Context())
    context = {k: v for k, v in answer["context"].items() if k != "org_id"}
    statuses = [api.request("GET", "/v1/contacts", org_id=org, authorizer=context).status
                for _ in range(6)]
    # Then the org's own limit applies
    assert answer["context"] == {"org_id": org, "rate_limit": 3, "rate_burst": 4}
    assert statuses[:4] == [200] * 4 and 429 in statuses[4:]
    # And back to the default once the policy is removed
    RateLimitStore().set_policy(org, None)
    again = api.handler_module(api.repo / "functions" / "authorizer").handler(event, _Context())
    default = RatePolicy.default()
    assert again["context"]["rate_limit"] == default.rate


def test_the_limiter_fails_open_when_its_table_cannot_be_reached(api, monkeypatch):
    # Given a limiter whose table is missing (DynamoDB answers ResourceNotFound)
    from contacts_core.http import handler

    monkeypatch.setattr(handler, "rate_store", lambda: RateLimitStore(table="missing"))
    # When a request comes
    answer = api.request("GET", "/v1/contacts", org_id=fresh_org(),
                         authorizer={"rate_limit": 1, "rate_burst": 1})
    # Then it is served, without rate-limit headers (nothing to advertise)
    assert answer.status == 200 and "RateLimit" not in answer.headers


@pytest.mark.parametrize("rate,burst", [(0, 1), (1, 0)])
def test_a_policy_needs_at_least_one_request(rate, burst):
    with pytest.raises(ValueError):
        RatePolicy(rate, burst)


def test_the_operator_cli_sets_shows_and_drops_an_org_policy(dynamodb, capsys):
    from devstack.rate_limits import main

    org = fresh_org()
    # When an operator gives the org 5/s with a burst of 9
    assert main([org, "--rate", "5", "--burst", "9"]) == 0
    # Then the store holds it and the CLI says so
    assert RateLimitStore().policy(org) == RatePolicy(5, 9)
    assert f"{org}: 5/s, burst 9 (its own policy)" in capsys.readouterr().out
    # And --default drops it again
    assert main([org, "--default"]) == 0
    assert RateLimitStore().policy(org) is None
    assert "(the default)" in capsys.readouterr().out
    # And a half-given policy is bad usage
    with pytest.raises(SystemExit):
        main([org, "--rate", "5"])


def test_a_new_container_serves_an_idle_org_with_one_write(dynamodb):
    # Given an org that was served a minute ago (its bucket is idle again), and a brand-new
    # org, each met by a container that has never seen them (a cold start)
    policy, served_before, brand_new = RatePolicy(100, 200), fresh_org(), fresh_org()
    assert RateLimitStore().take(served_before, policy, now=START).allowed
    cold = RateLimitStore()
    calls: list[str] = []

    def count(model, **_):
        calls.append(model.name)

    later = START + 60 * MICROS
    # When each takes one request (counted on the process-wide client, then unhooked)
    cold.client.meta.events.register("before-call.dynamodb", count)
    try:
        decisions = [cold.take(org, policy, now=later) for org in (served_before, brand_new)]
    finally:
        cold.client.meta.events.unregister("before-call.dynamodb", count)
    # Then both are served, one conditional UpdateItem each (the idle guess held)
    assert all(d.allowed for d in decisions)
    assert calls == ["UpdateItem", "UpdateItem"]
