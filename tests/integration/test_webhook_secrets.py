"""Webhook signing secrets at rest: KMS ciphertext bound to the org and endpoint (moto KMS),
while deliveries stay verifiable with the secret the API returned once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from contacts_core.dynamodb import deserialize, dynamodb_client
from contacts_core.keys import KeyUnavailable, decrypt_webhook_secret, encrypt_webhook_secret
from contacts_core.webhooks.delivery import DeliveryFailed, signing_secret
from contacts_core.webhooks.endpoints import new_secret
from contacts_core.webhooks.models import EndpointItem
from contacts_core.webhooks.store import EndpointStore
from devstack.receiver import WebhookReceiver, verify

pytestmark = pytest.mark.usefixtures("sqs")


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    server = WebhookReceiver().start()
    yield server
    server.stop()


def register(api, org_id: str, url: str) -> dict:
    created = api.request("POST", "/v1/webhook-endpoints", org_id=org_id,
                          json_body={"url": url, "events": ["contact.created"]})
    assert created.status == 201, created.body
    return dict(created.body)


def stored(org_id: str, endpoint_id: str) -> dict:
    store = EndpointStore()
    raw = dynamodb_client().get_item(TableName=store.table, ConsistentRead=True, Key={
        "org_id": {"S": org_id}, "endpoint_id": {"S": endpoint_id}})["Item"]
    return deserialize(raw)


def test_the_stored_endpoint_holds_no_clear_secret(api, org_id, receiver):
    # Given an endpoint registered through the API
    hook = register(api, org_id, receiver.url + "/ok")
    # When its DynamoDB item is read raw
    item = stored(org_id, hook["id"])
    # Then no attribute holds the secret (nor a whsec_ value), only its ciphertext
    assert "secret" not in item
    assert hook["secret"] not in str(item) and "whsec_" not in str(item)
    assert decrypt_webhook_secret(item["secret_ciphertext"], org_id, hook["id"]) == hook["secret"]


def test_deliveries_are_signed_with_the_secret_the_api_returned(api, org_id, pipeline,
                                                                receiver):
    # Given an endpoint whose secret is stored encrypted
    hook = register(api, org_id, receiver.url + "/ok")
    # When a contact is created
    api.request("POST", "/v1/contacts", org_id=org_id, json_body={"email": "kms@example.com"})
    pipeline.pump(lambda: len(receiver.on("/ok")) >= 1)
    # Then the delivery verifies with the secret shown at creation
    (request,) = receiver.on("/ok")
    assert verify(request, hook["secret"])["data"]["object"]["email"] == "kms@example.com"


def test_a_ciphertext_under_another_endpoint_or_org_does_not_decrypt(api, org_id, receiver):
    # Given an endpoint's ciphertext
    hook = register(api, org_id, receiver.url + "/ok")
    ciphertext = stored(org_id, hook["id"])["secret_ciphertext"]
    # When it is decrypted with another endpoint's or another org's encryption context
    # Then KMS refuses, and a delivery with it fails (to be retried) instead of signing
    for other_org, other_endpoint in ((org_id, "whe_01JD8Q2M6W3YQ0V4C7N5T9KX2B"),
                                      ("org_other", hook["id"])):
        with pytest.raises(KeyUnavailable):
            decrypt_webhook_secret(ciphertext, other_org, other_endpoint)
        copied = EndpointItem(**stored(org_id, hook["id"]) | {
            "org_id": other_org, "endpoint_id": other_endpoint})
        with pytest.raises(DeliveryFailed):
            signing_secret(copied)


def test_an_endpoint_stored_in_clear_before_encryption_still_delivers(api, org_id, pipeline,
                                                                      receiver):
    # Given an endpoint item written before secrets were encrypted (clear "secret")
    hook = register(api, org_id, receiver.url + "/ok")
    legacy = new_secret()
    item = stored(org_id, hook["id"])
    del item["secret_ciphertext"]
    EndpointStore().delete(org_id, hook["id"])
    EndpointStore().put(EndpointItem(**item, secret=legacy))
    # When a contact is created
    api.request("POST", "/v1/contacts", org_id=org_id, json_body={"email": "old@example.com"})
    pipeline.pump(lambda: len(receiver.on("/ok")) >= 1)
    # Then the delivery is signed with the clear secret of that item
    (request,) = receiver.on("/ok")
    assert verify(request, legacy)["data"]["object"]["email"] == "old@example.com"


def test_encryption_binds_the_org_and_endpoint(dynamodb):
    # Given a secret encrypted for one endpoint
    secret = new_secret()
    ciphertext = encrypt_webhook_secret(secret, "org_a", "whe_1")
    # Then it is not the secret, and decrypts only with that endpoint's context
    assert secret not in ciphertext
    assert decrypt_webhook_secret(ciphertext, "org_a", "whe_1") == secret
    with pytest.raises(KeyUnavailable):
        decrypt_webhook_secret(ciphertext, "org_b", "whe_1")
