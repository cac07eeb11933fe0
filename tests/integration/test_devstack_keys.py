"""A ``--persist`` local stack keeps its KMS keys across restarts (devstack.keys): moto holds
them in memory only, so without this the webhook secrets a persisted table holds, encrypted
with the old key, could not be decrypted to sign a delivery after ``make dev`` restarts."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from devstack.aws import local_client
from devstack.keys import _moto_key, create_keys, key_materials
from tests.conftest import TEMPLATE


def _forget(ids: dict[str, str]) -> None:
    """What a restart does to moto's keys: they are gone (only this test's keys)."""
    for key_id in ids.values():
        backend, _ = _moto_key(key_id)
        del backend.keys[key_id]


def test_a_restarted_stack_decrypts_what_the_last_run_encrypted(moto_server):
    # Given the template's keys, something encrypted with each, and what a run keeps
    kms = local_client("kms", moto_server)
    first = create_keys(TEMPLATE, moto_server)
    assert first, "the template has KMS keys"
    sealed = {lid: kms.encrypt(KeyId=key_id, Plaintext=b"whsec_x",
                               EncryptionContext={"org_id": "org_a"})["CiphertextBlob"]
              for lid, key_id in first.items()}
    kept = key_materials(first)
    # When the stack restarts (moto forgets its keys) and creates them from what it kept
    _forget(first)
    with pytest.raises(ClientError):
        kms.decrypt(CiphertextBlob=next(iter(sealed.values())),
                    EncryptionContext={"org_id": "org_a"})
    again = create_keys(TEMPLATE, moto_server, kept)
    # Then the keys have their ids back and decrypt the old ciphertexts
    assert again == first
    for blob in sealed.values():
        assert kms.decrypt(CiphertextBlob=blob, EncryptionContext={"org_id": "org_a"}
                           )["Plaintext"] == b"whsec_x"
    # … while a stack that kept nothing gets new keys
    fresh = create_keys(TEMPLATE, moto_server)
    assert set(fresh.values()).isdisjoint(first.values())
