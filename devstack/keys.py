"""KMS keys and Secrets Manager secrets of template.yaml on a local endpoint (moto server).

* ``AWS::KMS::Key``: created with the template's description, key spec, usage and key
  policy; key rotation enabled when ``EnableKeyRotation`` says so.
* ``AWS::SecretsManager::Secret``: named by its logical id; ``SecretString`` as given, or
  generated as the template's ``GenerateSecretString`` says (``GetRandomPassword`` with its
  options, put under ``GenerateStringKey`` of ``SecretStringTemplate``).
* ``AWS::SecretsManager::RotationSchedule``: :func:`rotation_schedules` says which function
  rotates which secret, and whether at once (``RotateImmediatelyOnUpdate``, the default, as
  CloudFormation does on deploy); :func:`rotate_secret` makes Secrets Manager's calls.

SAM resolves ``!Ref Key``/``!Ref Secret`` in environment variables to the logical id; the
returned ``{logical_id: local key id / secret ARN}`` turns those into the local values
(:func:`devstack.queues.resolve_queue_refs` takes them like queue URLs).
"""

from __future__ import annotations

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


def create_keys(template_path: Path, endpoint_url: str) -> dict[str, str]:
    """Create the template's KMS keys; returns ``{logical_id: key id}``."""
    client = local_client("kms", endpoint_url)
    ids: dict[str, str] = {}
    for logical_id, props in _of_type(load_template(template_path), KEY_TYPE).items():
        request: dict[str, Any] = {k: props[k] for k in ("Description", "KeySpec", "KeyUsage")
                                   if k in props}
        if props.get("KeyPolicy"):
            request["Policy"] = json.dumps(props["KeyPolicy"])
        key_id = client.create_key(**request)["KeyMetadata"]["KeyId"]
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


def create_secrets(template_path: Path, endpoint_url: str) -> dict[str, str]:
    """Create the template's secrets, named by logical id (idempotent); returns
    ``{logical_id: secret ARN}``."""
    client = local_client("secretsmanager", endpoint_url)
    arns: dict[str, str] = {}
    for logical_id, props in _of_type(load_template(template_path), SECRET_TYPE).items():
        try:
            arns[logical_id] = client.create_secret(
                Name=logical_id, Description=props.get("Description", ""),
                SecretString=_initial_value(client, props))["ARN"]
        except ClientError as err:
            if err.response["Error"]["Code"] != "ResourceExistsException":
                raise
            arns[logical_id] = client.describe_secret(SecretId=logical_id)["ARN"]
    return arns


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
