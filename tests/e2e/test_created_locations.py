"""Every create answers 201 with ``Location``: the new resource's path (RFC 9110 §15.3.2),
which a GET reads back; an upsert that updates answers 200 without one."""

from __future__ import annotations

import uuid

import pytest

CREATES = [
    ("/v1/contacts", {"phone": "+27821234567"}, "/v1/contacts/con_"),
    ("/v1/contacts/upsert", {"email": "naledi@example.com"}, "/v1/contacts/con_"),
    ("/v1/audiences", {"name": "Newsletter"}, "/v1/audiences/aud_"),
    ("/v1/webhook-endpoints", {"url": "https://hooks.example.com/contacts", "events": ["*"]},
     "/v1/webhook-endpoints/"),
    ("/v1/imports", {}, "/v1/imports/"),
]


@pytest.fixture
def client(stack):
    return stack.client(stack.mint_key(f"org_{uuid.uuid4().hex[:10]}"))


@pytest.mark.parametrize(("path", "body", "prefix"), CREATES, ids=[c[0] for c in CREATES])
def test_a_create_answers_201_with_the_location_a_get_reads(client, path, body, prefix):
    # When a resource is created
    created = client.post(path, json=body)
    # Then 201 names its path in Location, and a GET of that path reads it back
    assert created.status_code == 201, created.text
    location = created.headers["Location"]
    resource = created.json().get("contact", created.json())
    assert location.startswith(prefix) and location.endswith("/" + resource["id"])
    read = client.get(location)
    assert read.status_code == 200 and read.json()["id"] == resource["id"], read.text


def test_an_upsert_that_updates_answers_200_without_location(client):
    # Given a contact; When the upsert finds it, Then 200 and no Location
    assert client.post("/v1/contacts", json={"phone": "+27821234567"}).status_code == 201
    updated = client.post("/v1/contacts/upsert", json={"phone": "+27821234567",
                                                      "first_name": "Sam"})
    assert updated.status_code == 200 and "Location" not in updated.headers
