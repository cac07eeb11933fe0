"""KMS keys and Secrets Manager secrets of template.yaml on a local endpoint (moto server).

* ``AWS::KMS::Key``: created with the template's description, key spec, usage and key
  policy; key rotation enabled when ``EnableKeyRotation`` says so.
* ``AWS::SecretsManager::Secret``: named by its logical id; ``SecretString`` as given, or
  generated as the template's ``GenerateSecretString`` says (``GetRandomPassword`` with its
  options, put under ``GenerateStringKey`` of ``SecretStringTemplate``).
* Across restarts (``make dev --persist``): :func:`key_materials` and
  :func:`secret_values` say what to keep, and :func:`create_keys` / :func:`create_secrets`
  take it back, so what the persisted tables hold (webhook secrets encrypted with the key,
  cursors signed with the ring) still works.
* ``AWS::SecretsManager::RotationSchedule``: :func:`rotation_schedules` says which function
  rotates which secret, and whether at once (``RotateImmediatelyOnUpdate``, the default, as
  CloudFormation does on deploy); :func:`rotate_secret` makes Secrets Manager's calls.

SAM resolves ``!Ref Key``/``!Ref Secret`` in environment variables to the logical id; the
returned ``{logical_id: local key id / secret ARN}`` turns those into the local values
(:func:`devstack.queues.resolve_queue_refs` takes them like queue URLs).
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from devstack.aws import local_client
from devstack.tables import load_template

KEY_TYPE = "AWS::KMS::Key"
SECRET_TYPE = "AWS::SecretsManager::Secret"
ROTATION_TYPE = "AWS::SecretsManager::RotationSchedule"
ROTATION_STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")
# GenerateSecretString properties that GetRandomPassword takes as they are.
_PASSWORD_OPTIONS = ("PasswordLength", "ExcludeCharacters", "ExcludeNumbers",
                     "ExcludePunctuation", "ExcludeUppercase", "ExcludeLowercase",
                     "IncludeSpace", "RequireEachIncludedType")

Invoke = Callable[[str, dict[str, Any]], Any]


def _of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {lid: r.get("Properties") or {} for lid, r in template["Resources"].items()
            if r.get("Type") == kind}


def _logical_id(reference: Any) -> str:
    """``{"Ref": X}`` / ``{"Fn::GetAtt": [X, ...]}`` / ``X`` (as SAM resolved it) → ``X``."""
    if isinstance(reference, dict):
        target = reference.get("Ref") or reference.get("Fn::GetAtt")
        return str(target[0] if isinstance(target, list) else target)
    return str(reference).rsplit(":", 1)[-1]


def _moto_key(key_id: str) -> tuple[Any, Any]:
    """(backend, key) of ``key_id`` in this process's moto KMS (the stack's moto server runs
    in this process, :class:`devstack.stack.SqsServer`)."""
    from moto.kms.models import kms_backends

    for regions in kms_backends.values():
        for backend in regions.values():
            if key_id in backend.keys:
                return backend, backend.keys[key_id]
    raise KeyError(f"KMS key {key_id} is not in this process's moto")


def key_materials(ids: dict[str, str]) -> dict[str, dict[str, str]]:
    """``{logical_id: {"key_id", "material"}}`` (material base64) of the keys ``ids`` names
    (:func:`create_keys`' answer): what :func:`create_keys` needs to bring them back after
    a restart, so ciphertexts made before it (webhook secrets kept in a ``--persist``
    DynamoDB Local) still decrypt. moto keeps keys in memory only, and KMS has no way to
    set a symmetric key's material, hence moto's own objects."""
    return {logical_id: {"key_id": key_id, "material": base64.b64encode(
        _moto_key(key_id)[1].key_material).decode()} for logical_id, key_id in ids.items()}


def _restore(key_id: str, saved: dict[str, str]) -> str:
    """Give the new moto key ``key_id`` the id and material of a saved one; its id."""
    backend, key = _moto_key(key_id)
    del backend.keys[key_id]
    key.id, key.key_material = saved["key_id"], base64.b64decode(saved["material"])
    key.arn = f"{key.arn.rsplit('/', 1)[0]}/{key.id}"
    backend.keys[key.id] = key
    return str(key.id)


def create_keys(template_path: Path, endpoint_url: str,
                saved: dict[str, dict[str, str]] | None = None) -> dict[str, str]:
    """Create the template's KMS keys; returns ``{logical_id: key id}``. A key ``saved``
    holds (:func:`key_materials` of an earlier run) comes back with its id and material."""
    client = local_client("kms", endpoint_url)
    ids: dict[str, str] = {}
    for logical_id, props in _of_type(load_template(template_path), KEY_TYPE).items():
        request: dict[str, Any] = {k: props[k] for k in ("Description", "KeySpec", "KeyUsage")
                                   if k in props}
        if props.get("KeyPolicy"):
            request["Policy"] = json.dumps(props["KeyPolicy"])
        key_id = client.create_key(**request)["KeyMetadata"]["KeyId"]
        if saved and logical_id in saved:
            key_id = _restore(key_id, saved[logical_id])
        if props.get("EnableKeyRotation"):
            client.enable_key_rotation(KeyId=key_id)
        ids[logical_id] = key_id
    return ids


def _initial_value(client: Any, props: dict[str, Any]) -> str:
    if "SecretString" in props:
        return str(props["SecretString"])
    generate = props.get("GenerateSecretString") or {}
    password = client.get_random_password(
        **{k: generate[k] for k in _PASSWORD_OPTIONS if k in generate})["RandomPassword"]
    if "SecretStringTemplate" not in generate:
        return str(password)
    value = json.loads(generate["SecretStringTemplate"])
    value[generate["GenerateStringKey"]] = password
    return json.dumps(value)


def create_secrets(template_path: Path, endpoint_url: str,
                   saved: dict[str, str] | None = None) -> dict[str, str]:
    """Create the template's secrets, named by logical id (idempotent); returns
    ``{logical_id: secret ARN}``. A secret ``saved`` holds (:func:`secret_values` of an
    earlier run) starts with that value instead of a new one."""
    client = local_client("secretsmanager", endpoint_url)
    arns: dict[str, str] = {}
    for logical_id, props in _of_type(load_template(template_path), SECRET_TYPE).items():
        value = (saved or {}).get(logical_id) or _initial_value(client, props)
        try:
            arns[logical_id] = client.create_secret(
                Name=logical_id, Description=props.get("Description", ""),
                SecretString=value)["ARN"]
        except ClientError as err:
            if err.response["Error"]["Code"] != "ResourceExistsException":
                raise
            arns[logical_id] = client.describe_secret(SecretId=logical_id)["ARN"]
    return arns


def secret_values(arns: dict[str, str], endpoint_url: str) -> dict[str, str]:
    """``{logical_id: current SecretString}`` of the secrets ``arns`` names."""
    client = local_client("secretsmanager", endpoint_url)
    return {logical_id: client.get_secret_value(SecretId=arn)["SecretString"]
            for logical_id, arn in arns.items()}


def rotation_schedules(template_path: Path) -> dict[str, tuple[str, bool]]:
    """``{secret logical id: (rotation function logical id, rotates immediately)}`` of the
    template's rotation schedules (``RotateImmediatelyOnUpdate`` defaults to true)."""
    return {_logical_id(props["SecretId"]): (_logical_id(props["RotationLambdaARN"]),
                                             bool(props.get("RotateImmediatelyOnUpdate", True)))
            for props in _of_type(load_template(template_path), ROTATION_TYPE).values()}


def rotate_secret(secret_arn: str, function_id: str, invoke: Invoke) -> str:
    """Rotate a secret as Secrets Manager does: one new version token, then the rotation
    function invoked for each step (createSecret, setSecret, testSecret, finishSecret).
    Returns the token (the new AWSCURRENT version id); the function's errors propagate."""
    token = str(uuid.uuid4())
    for step in ROTATION_STEPS:
        invoke(function_id, {"SecretId": secret_arn, "ClientRequestToken": token, "Step": step})
    return token


def endpoint_environment(endpoint_url: str) -> dict[str, str]:
    """The variables that point boto3's KMS and Secrets Manager clients at ``endpoint_url``
    (botocore names the latter after its service id, "Secrets Manager")."""
    return {"AWS_ENDPOINT_URL_KMS": endpoint_url,
            "AWS_ENDPOINT_URL_SECRETS_MANAGER": endpoint_url}


def local_environment(template_path: Path, endpoint_url: str,
                      environment: dict[str, str]) -> dict[str, str]:
    """Create the template's keys and secrets at ``endpoint_url``; ``environment`` (template
    variables, ``!Ref`` resolved to logical ids) with those references replaced by the local
    key ids / ARNs, plus :func:`endpoint_environment`."""
    local = {**create_keys(template_path, endpoint_url),
             **create_secrets(template_path, endpoint_url)}
    return {k: local.get(v, v) for k, v in environment.items()} | endpoint_environment(
        endpoint_url)
