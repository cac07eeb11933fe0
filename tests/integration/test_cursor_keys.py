"""Cursor keys in Secrets Manager (moto): rotation by the template's rotation function keeps
live cursors paging during the overlap, and refuses them once their key left the ring; a
container reads the ring once per ``CURSOR_KEY_MAX_AGE``."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from contacts_core import keys
from contacts_core.keys import (
    CURSOR_KEY_MAX_AGE,
    cursor_keys,
    forget_cursor_keys,
    rotation_step,
    secretsmanager_client,
)
from devstack.keys import rotate_secret, rotation_schedules

from .conftest import REPO, _Context, function_code

SECRET = "CursorKeySecret"


@pytest.fixture
def rotate(api, aws_keys) -> Iterator:
    """``rotate()`` rotates the cursor key ring as Secrets Manager does (the template's
    rotation function, four steps), then lets this container's cache expire."""
    function_id, _ = rotation_schedules(REPO / "template.yaml")[SECRET]
    module = api.handler_module(function_code(function_id))

    def rotate() -> None:
        rotate_secret(aws_keys[SECRET], function_id,
                      lambda _fn, event: module.handler(event, _Context()))
        forget_cursor_keys()  # as if max_age had passed

    ring = json.loads(secretsmanager_client().get_secret_value(
        SecretId=aws_keys[SECRET], VersionStage="AWSCURRENT")["SecretString"])
    if "next" not in ring:
        rotate()  # the ring as deployed: rotated once on creation (RotateImmediatelyOnUpdate)
    yield rotate
    forget_cursor_keys()


def first_page(call) -> dict:
    for n in range(3):
        call.create({"email": f"page{n}@example.com"})
    page = call("GET", "/v1/contacts", query={"limit": "1"})
    assert page.status == 200 and page.body["next_cursor"], page.body
    return page.body


def test_a_cursor_issued_before_a_rotation_pages_after_it(call, rotate):
    # Given a cursor issued with the current key
    cursor = first_page(call)["next_cursor"]
    # When the key ring rotates
    rotate()
    # Then the cursor still pages, and the next cursor (new key) pages too
    second = call("GET", "/v1/contacts", query={"limit": "1", "cursor": cursor})
    assert second.status == 200 and len(second.body["data"]) == 1
    third = call("GET", "/v1/contacts", query={"limit": "1", "cursor": second.body["next_cursor"]})
    assert third.status == 200 and len(third.body["data"]) == 1


def test_a_cursor_answers_400_once_its_key_left_the_ring(call, rotate):
    # Given a cursor issued with the current key
    cursor = first_page(call)["next_cursor"]
    # When the ring rotates twice (its key is previous, then gone)
    rotate()
    rotate()
    # Then the cursor is refused like a tampered one
    refused = call("GET", "/v1/contacts", query={"limit": "1", "cursor": cursor})
    assert refused.status == 400
    assert refused.body["code"] == "validation_error"
    assert refused.body["errors"][0]["field"] == "cursor"


def test_a_tampered_cursor_answers_400(call, rotate):
    # Given a valid cursor with one signature character changed
    cursor = first_page(call)["next_cursor"]
    body, signature = cursor.split(".")
    tampered = f"{body}.{('A' if signature[0] != 'A' else 'B')}{signature[1:]}"
    # When it is used
    refused = call("GET", "/v1/contacts", query={"limit": "1", "cursor": tampered})
    # Then it answers 400 on cursor
    assert refused.status == 400 and refused.body["errors"][0]["field"] == "cursor"


def test_rotation_steps_are_idempotent(aws_keys, rotate):
    # Given a rotation whose createSecret step runs twice (Secrets Manager retries steps)
    secret = aws_keys[SECRET]
    sm = secretsmanager_client()
    before = json.loads(sm.get_secret_value(SecretId=secret,
                                            VersionStage="AWSCURRENT")["SecretString"])
    token = "0" * 8 + "-rotation-test-token-" + "1" * 12
    for step in ("createSecret", "createSecret", "setSecret", "testSecret", "finishSecret",
                 "finishSecret"):
        rotation_step(secret, token, step)
    # Then one new version is current, shifted once from the ring before
    after = json.loads(sm.get_secret_value(SecretId=secret,
                                           VersionStage="AWSCURRENT")["SecretString"])
    assert after["previous"] == before["current"] and after["current"] == before["next"]
    assert sm.describe_secret(SecretId=secret)["VersionIdsToStages"][token].count(
        "AWSCURRENT") == 1
    forget_cursor_keys()


class _CountingSecrets:
    """Secrets Manager client that counts ``GetSecretValue`` calls."""

    def __init__(self) -> None:
        self.client, self.reads = secretsmanager_client(), 0

    def get_secret_value(self, **params: str) -> dict:
        self.reads += 1
        return self.client.get_secret_value(**params)


def test_the_ring_is_read_once_per_max_age(dynamodb, monkeypatch):
    # Given a container that has not read the ring yet
    counting = _CountingSecrets()
    monkeypatch.setattr(keys, "secretsmanager_client", lambda: counting)
    forget_cursor_keys()
    started = keys.time.monotonic()
    # When it signs and checks cursors within CURSOR_KEY_MAX_AGE
    first = cursor_keys()
    monkeypatch.setattr(keys.time, "monotonic", lambda: started + CURSOR_KEY_MAX_AGE - 1)
    again = cursor_keys()
    # Then Secrets Manager is read once
    assert counting.reads == 1 and again == first
    # And once CURSOR_KEY_MAX_AGE has passed it is read again
    monkeypatch.setattr(keys.time, "monotonic", lambda: started + CURSOR_KEY_MAX_AGE + 1)
    assert cursor_keys() == first and counting.reads == 2
    forget_cursor_keys()
