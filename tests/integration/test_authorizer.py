"""API keys and the Lambda REQUEST authorizer (SPEC §4), against DynamoDB Local."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from contacts_core.auth import ApiKeyStore, hash_api_key, mint_api_key
from contacts_core.dynamodb import deserialize
from contacts_core.rate_limits import RatePolicy
from tests.integration.conftest import _Context

SAMPLE = json.loads((Path(__file__).parents[2] / "events" / "authorizer_request_v2.json")
                    .read_text())


def authorize(api, authorization: str | None) -> dict:
    event = copy.deepcopy(SAMPLE)
    event["headers"].pop("authorization")
    if authorization is not None:
        event["headers"]["authorization"] = authorization
        event["identitySource"] = [authorization]
    return api.handler_module(api.repo / "functions" / "authorizer").handler(event, _Context())


def test_minted_key_authorizes_its_org(api, org_id):
    key = mint_api_key(org_id, "ci")
    assert key.startswith("ck_") and len(key) >= 35
    default = RatePolicy.default()
    assert authorize(api, f"Bearer {key}") == {"isAuthorized": True, "context": {
        "org_id": org_id, "rate_limit": default.rate, "rate_burst": default.burst}}


@pytest.mark.parametrize("header", [None, "", "Bearer", "Basic abc",
                                    "Bearer ck_unknown" + "x" * 40, "ck_" + "x" * 43])
def test_missing_malformed_or_unknown_keys_are_refused(api, header):
    assert authorize(api, header) == {"isAuthorized": False}


def test_revoked_key_is_refused(api, org_id, dynamodb):
    key = mint_api_key(org_id)
    store = ApiKeyStore()
    store.client.update_item(TableName=store.table, Key={"key_hash": {"S": hash_api_key(key)}},
                             UpdateExpression="SET revoked = :t",
                             ExpressionAttributeValues={":t": {"BOOL": True}})
    assert authorize(api, f"Bearer {key}") == {"isAuthorized": False}


def test_only_the_sha256_of_a_key_is_stored(api, org_id, dynamodb):
    key = mint_api_key(org_id, "audit")
    store = ApiKeyStore()
    items = [deserialize(i) for i in store.client.scan(TableName=store.table)["Items"]]
    mine = [i for i in items if i["org_id"] == org_id]
    assert [i["key_hash"] for i in mine] == [hash_api_key(key)]
    assert key not in json.dumps(items)


@pytest.mark.parametrize("org", ["acme#external_id", "acme/eu", "acme eu", "", "é", "x" * 65])
def test_an_org_id_that_could_spell_another_orgs_keys_gets_no_key(api, dynamodb, org):
    # Given an org id with a separator (guards are "<org>#<field>#<value>": "acme#external_id"
    # and the external id "email#a@b.c" would spell acme's email guard), blank or too long
    # When a key is minted for it, Then it is refused and nothing is stored
    with pytest.raises(ValueError, match="letters, digits"):
        mint_api_key(org)
    store = ApiKeyStore()
    assert not [i for i in store.client.scan(TableName=store.table)["Items"]
                if deserialize(i)["org_id"] == org]


def test_a_key_stored_for_such_an_org_by_other_means_authorizes_nothing(api, dynamodb):
    # Given a key record written directly (not through mint_api_key) for "acme#external_id"
    key = "ck_" + "H" * 43
    ApiKeyStore().put({"key_hash": hash_api_key(key), "org_id": "acme#external_id",
                       "name": "hand-written", "created_at": "2026-01-01T00:00:00.000Z",
                       "revoked": False})
    # When it is presented, Then the authorizer refuses it
    assert authorize(api, f"Bearer {key}") == {"isAuthorized": False}
