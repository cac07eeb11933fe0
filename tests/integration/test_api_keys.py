"""Listing and revoking API keys by their public id, and the ``contacts-api-key`` CLI
(``mint``, ``list``, ``revoke``; the original ``--org`` form), against DynamoDB Local."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from contacts_core.auth import (
    ApiKeyStore,
    hash_api_key,
    key_id_for,
    list_api_keys,
    mint_api_key,
    revoke_api_key,
)
from devstack import api_keys as cli
from tests.integration.conftest import _Context

SAMPLE = json.loads((Path(__file__).parents[2] / "events" / "authorizer_request_v2.json")
                    .read_text())
KEY_ID = re.compile(r"^key_[0-9a-f]{16}$")


def authorize(api: Any, key: str) -> dict[str, Any]:
    """The authorizer's answer to the sample event carrying ``Bearer key``."""
    event = copy.deepcopy(SAMPLE)
    event["headers"]["authorization"] = f"Bearer {key}"
    event["identitySource"] = [f"Bearer {key}"]
    result: dict[str, Any] = api.handler_module(api.repo / "functions" / "authorizer").handler(
        event, _Context())
    return result


def test_listed_keys_show_ids_names_and_status_never_the_hash(dynamodb, org_id):
    # Given two keys minted for an org and one for another org
    first, second = mint_api_key(org_id, "ci"), mint_api_key(org_id, "zapier")
    mint_api_key(org_id + "_other", "elsewhere")
    # When the org's keys are listed
    keys = list_api_keys(org_id)
    # Then both appear, oldest first, by id, unrevoked, and nothing secret is shown
    assert [k["name"] for k in keys] == ["ci", "zapier"]
    assert [k["key_id"] for k in keys] == [key_id_for(hash_api_key(first)),
                                           key_id_for(hash_api_key(second))]
    assert all(KEY_ID.match(k["key_id"]) and k["revoked"] is False for k in keys)
    text = json.dumps(keys)
    assert first not in text and hash_api_key(first) not in text


def test_revoked_key_is_refused_by_the_authorizer_and_listed_as_revoked(api, org_id):
    # Given a working key
    key = mint_api_key(org_id, "laptop")
    allowed = authorize(api, key)
    assert allowed["isAuthorized"] is True and allowed["context"]["org_id"] == org_id
    key_id = list_api_keys(org_id)[0]["key_id"]
    # When it is revoked by its id
    revoked = revoke_api_key(key_id)
    # Then the authorizer refuses it and the listing says when it was revoked
    assert revoked is not None and revoked["org_id"] == org_id and revoked["revoked"] is True
    assert authorize(api, key) == {"isAuthorized": False}
    (listed,) = list_api_keys(org_id)
    assert listed["revoked"] is True and listed["revoked_at"] == revoked["revoked_at"]


def test_revoking_twice_keeps_the_first_time_and_other_keys_keep_working(api, org_id):
    # Given two keys of an org, one revoked
    kept, gone = mint_api_key(org_id, "kept"), mint_api_key(org_id, "gone")
    first = revoke_api_key(key_id_for(hash_api_key(gone)))
    # When it is revoked again
    again = revoke_api_key(key_id_for(hash_api_key(gone)))
    # Then nothing changes, and the other key still authorizes
    assert first is not None and again is not None
    assert again["revoked_at"] == first["revoked_at"]
    assert authorize(api, kept)["isAuthorized"] is True


@pytest.mark.parametrize("key_id", ["key_0000000000000000", "key_xyz", "", "ck_abc"])
def test_unknown_or_malformed_key_id_revokes_nothing(dynamodb, key_id):
    assert revoke_api_key(key_id) is None


def test_key_minted_before_ids_existed_is_listed_and_revocable(api, org_id):
    # Given a key stored the old way, without a key_id attribute
    key = "ck_" + "L" * 43
    ApiKeyStore().put({"key_hash": hash_api_key(key), "org_id": org_id, "name": "legacy",
                       "created_at": "2026-01-01T00:00:00.000Z", "revoked": False})
    # When the org's keys are listed and the shown id is revoked
    (listed,) = list_api_keys(org_id)
    assert listed["key_id"] == key_id_for(hash_api_key(key))
    assert revoke_api_key(listed["key_id"]) is not None
    # Then the key no longer authorizes
    assert authorize(api, key) == {"isAuthorized": False}


def test_cli_mints_in_the_original_form_and_lists_and_revokes(api, org_id, capsys):
    # Given the table in API_KEYS_TABLE (as on AWS; the fixture points boto3 at DynamoDB Local)
    # When a key is minted with the original command line
    assert cli.main(["--org", org_id, "--name", "ci"]) == 0
    out = capsys.readouterr()
    key = out.out.strip()
    key_id = key_id_for(hash_api_key(key))
    # Then stdout is the key alone, and stderr names its id
    assert key.startswith("ck_") and key_id in out.err
    # When the org's keys are listed, Then the id is there, active
    assert cli.main(["list", org_id, "--json"]) == 0
    assert [(k["key_id"], k["revoked"]) for k in json.loads(capsys.readouterr().out)] == [
        (key_id, False)]
    # When it is revoked, Then the authorizer refuses it
    assert cli.main(["revoke", key_id]) == 0
    assert json.loads(capsys.readouterr().out)["revoked"] is True
    assert authorize(api, key) == {"isAuthorized": False}
    # And an unknown id is an error
    assert cli.main(["revoke", "key_0000000000000000"]) == 1


def test_cli_refuses_an_org_id_with_a_separator_with_a_usage_error(api, capsys):
    # When a key is minted for an org id holding "#", Then exit 2 with the rule, no key
    assert cli.main(["--org", "acme#external_id"]) == 2
    out = capsys.readouterr()
    assert out.out == "" and "letters, digits" in out.err
