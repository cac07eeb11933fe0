"""AWS access for keys and secrets: the cursor key ring (Secrets Manager) and the webhook
signing secrets (KMS). With ``dynamodb.py`` and the ``*/store.py`` modules, the only code
here that calls AWS for them.

**Cursor key ring.** The secret named by ``CURSOR_KEY_SECRET`` (template: ``CursorKeySecret``)
holds a JSON key ring ``{"previous": …, "current": …, "next": …}`` of HMAC keys (``current``
always; the others once rotated). Cursors are signed with ``current`` and verified against
every key of the ring. :func:`rotation_step` (``RotateCursorKeyFunction``, Secrets Manager's
four rotation steps) shifts it: ``previous ← current ← next ← new key`` (the very first
rotation, with no ``next`` yet, only adds ``next``). So

* a cursor verifies until the second rotation after it was issued (≥ one rotation period);
* a key is in every ring as ``next`` for a whole period before anyone signs with it, so a
  container whose cached ring is a few minutes old still verifies the cursors signed by one
  that already sees the rotated ring.

The ring is read lazily on first use (``GetSecretValue``, cached ``CURSOR_KEY_MAX_AGE``
seconds per warm container), never at import. Not through Powertools' parameters utility:
its package imports boto3 and every provider on the first page of a list, for a cache of one
value (README "Cold start").

**Webhook signing secrets** (``whsec_…``) are stored as KMS ciphertext under the key named by
``WEBHOOK_SECRETS_KEY`` (template: ``WebhookSecretsKey``), with the encryption context
``{"org_id", "endpoint_id"}``: a ciphertext copied to another endpoint or org does not
decrypt. Decrypted secrets are cached per warm container (:func:`decrypt_webhook_secret`).

Endpoints and credentials follow botocore's configuration (``AWS_ENDPOINT_URL_SECRETS_MANAGER`` —
botocore names it after the service id "Secrets Manager" —,
``AWS_ENDPOINT_URL_KMS`` in the local stack and the tests).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import time
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from contacts_core.aws import aws_client

CURSOR_KEY_MAX_AGE = 300  # seconds a warm container reuses the ring (≪ the rotation period)
KEY_BYTES = 48  # random bytes of a new cursor key (64 URL-safe characters)
MIN_KEY_LENGTH = 32
ROTATION_STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")


class KeyUnavailable(Exception):
    """A key or secret could not be read or decrypted (AWS error, malformed key ring,
    ciphertext under another key or encryption context)."""


@dataclass(frozen=True)
class KeyRing:
    """HMAC keys for cursors: ``signing`` signs new cursors; ``verifying`` (signing first)
    are every key a cursor may have been signed with."""

    signing: bytes
    verifying: tuple[bytes, ...]

    @classmethod
    def from_secret(cls, value: Any) -> KeyRing:
        """The ring of a secret value ``{"current": str, "previous"?: str, "next"?: str}``.

        Raises:
            KeyUnavailable: ``current`` missing or any key shorter than 32 characters.
        """
        if not isinstance(value, dict) or not isinstance(value.get("current"), str):
            raise KeyUnavailable("cursor key ring has no current key")
        names = [n for n in ("current", "previous", "next") if value.get(n)]
        keys = [value[n] for n in names]
        if not all(isinstance(k, str) and len(k) >= MIN_KEY_LENGTH for k in keys):
            raise KeyUnavailable("cursor key ring holds a key shorter than 32 characters")
        encoded = tuple(k.encode() for k in keys)
        return cls(signing=encoded[0], verifying=encoded)


_rings: dict[str, tuple[float, KeyRing]] = {}  # secret id → (time.monotonic() read, ring)


def cursor_keys() -> KeyRing:
    """The cursor key ring of ``CURSOR_KEY_SECRET`` (AWSCURRENT version), cached for
    ``CURSOR_KEY_MAX_AGE`` seconds per warm container.

    Raises:
        KeyUnavailable: the secret cannot be read or is not a key ring.
    """
    secret_id = os.environ["CURSOR_KEY_SECRET"]
    read_at, ring = _rings.get(secret_id, (0.0, None))
    if ring is not None and time.monotonic() - read_at < CURSOR_KEY_MAX_AGE:
        return ring
    try:
        value = json.loads(secretsmanager_client().get_secret_value(
            SecretId=secret_id, VersionStage="AWSCURRENT")["SecretString"])
    except (BotoCoreError, ClientError, KeyError, ValueError) as err:
        raise KeyUnavailable(f"cursor key ring unreadable: {err}") from err
    ring = KeyRing.from_secret(value)
    _rings[secret_id] = (time.monotonic(), ring)
    return ring


def new_cursor_key() -> str:
    """A fresh random cursor key (64 URL-safe characters)."""
    return secrets.token_urlsafe(KEY_BYTES)


def rotated_ring(ring: dict[str, str]) -> dict[str, str]:
    """The ring after one rotation: ``previous ← current ← next ← new``; a ring without
    ``next`` (never rotated) keeps ``previous``/``current`` and gains ``next``."""
    if not ring.get("next"):
        return {k: v for k, v in ring.items() if k in ("previous", "current")} | {
            "next": new_cursor_key()}
    return {"previous": ring["current"], "current": ring["next"], "next": new_cursor_key()}


@cache
def secretsmanager_client() -> Any:
    """The process-wide Secrets Manager client (endpoint from botocore's configuration, or a
    non-empty ``SECRETS_MANAGER_ENDPOINT_URL``: a template variable, empty on AWS, that
    ``sam local --env-vars .dev/env.json`` points at the local stack)."""
    return aws_client("secretsmanager", "SECRETS_MANAGER_ENDPOINT_URL")


def forget_cursor_keys() -> None:
    """Drop the cached key ring, as if ``CURSOR_KEY_MAX_AGE`` had passed."""
    _rings.clear()


def rotation_step(secret_id: str, token: str, step: str, client: Any | None = None) -> None:
    """One step of Secrets Manager's rotation of the cursor key ring; each is idempotent.

    * ``createSecret``: unless version ``token`` already has a value, put the rotated ring
      (:func:`rotated_ring` of AWSCURRENT) as ``token`` with the stage AWSPENDING.
    * ``setSecret``: nothing — the keys are used only by this service.
    * ``testSecret``: the pending value must be a valid key ring.
    * ``finishSecret``: move AWSCURRENT to ``token`` (Secrets Manager moves AWSPREVIOUS).

    Raises:
        ValueError: unknown ``step``.
        KeyUnavailable: the pending ring is not valid (``testSecret``).
        botocore.exceptions.ClientError: Secrets Manager refused a call.
    """
    sm = client or secretsmanager_client()
    if step == "createSecret":
        try:
            sm.get_secret_value(SecretId=secret_id, VersionId=token, VersionStage="AWSPENDING")
            return
        except ClientError as err:
            if err.response["Error"]["Code"] != "ResourceNotFoundException":
                raise
        current = json.loads(sm.get_secret_value(SecretId=secret_id,
                                                 VersionStage="AWSCURRENT")["SecretString"])
        sm.put_secret_value(SecretId=secret_id, ClientRequestToken=token,
                            SecretString=json.dumps(rotated_ring(current)),
                            VersionStages=["AWSPENDING"])
    elif step == "setSecret":
        return
    elif step == "testSecret":
        pending = sm.get_secret_value(SecretId=secret_id, VersionId=token,
                                      VersionStage="AWSPENDING")["SecretString"]
        KeyRing.from_secret(json.loads(pending))
    elif step == "finishSecret":
        stages = sm.describe_secret(SecretId=secret_id)["VersionIdsToStages"]
        current = next(v for v, labels in stages.items() if "AWSCURRENT" in labels)
        if current != token:
            sm.update_secret_version_stage(SecretId=secret_id, VersionStage="AWSCURRENT",
                                           MoveToVersionId=token, RemoveFromVersionId=current)
    else:
        raise ValueError(f"unknown rotation step {step!r}")


@cache
def kms_client() -> Any:
    """The process-wide KMS client (endpoint from botocore's configuration, or a non-empty
    ``KMS_ENDPOINT_URL``, like :func:`secretsmanager_client`)."""
    return aws_client("kms", "KMS_ENDPOINT_URL")


def _context(org_id: str, endpoint_id: str) -> dict[str, str]:
    return {"org_id": org_id, "endpoint_id": endpoint_id}


def encrypt_webhook_secret(secret: str, org_id: str, endpoint_id: str) -> str:
    """Base64 of the KMS ciphertext of ``secret`` under ``WEBHOOK_SECRETS_KEY``, bound to
    the encryption context ``{"org_id", "endpoint_id"}``.

    Raises:
        KeyUnavailable: KMS refused (e.g. no permission, key disabled).
    """
    try:
        blob = kms_client().encrypt(KeyId=os.environ["WEBHOOK_SECRETS_KEY"],
                                    Plaintext=secret.encode(),
                                    EncryptionContext=_context(org_id, endpoint_id))
    except ClientError as err:
        raise KeyUnavailable(f"cannot encrypt the webhook secret: {err}") from err
    return base64.b64encode(blob["CiphertextBlob"]).decode()


@lru_cache(maxsize=1024)
def decrypt_webhook_secret(ciphertext: str, org_id: str, endpoint_id: str) -> str:
    """The ``whsec_`` secret in ``ciphertext`` (from :func:`encrypt_webhook_secret`), decrypted
    under ``WEBHOOK_SECRETS_KEY`` with the endpoint's encryption context; cached per warm
    container (a ciphertext never changes meaning).

    Raises:
        KeyUnavailable: KMS refused — wrong key or encryption context, tampered ciphertext,
            no permission, throttling.
    """
    try:
        plain = kms_client().decrypt(CiphertextBlob=base64.b64decode(ciphertext),
                                     KeyId=os.environ["WEBHOOK_SECRETS_KEY"],
                                     EncryptionContext=_context(org_id, endpoint_id))
    except ClientError as err:
        raise KeyUnavailable(f"cannot decrypt the webhook secret: {err}") from err
    return bytes(plain["Plaintext"]).decode()
