"""Create the template's DynamoDB tables in DynamoDB Local.

Every ``AWS::DynamoDB::Table`` of ``template.yaml`` is created with its key schema,
attribute definitions, global/local secondary indexes, billing mode, stream
specification and TTL. The local table name is the resource's logical id (what
``!Ref`` resolves to in the local stack). Nothing about tables is written here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from samcli.lib.providers.sam_base_provider import SamBaseProvider
from samcli.yamlhelper import parse_yaml_file

from devstack.dynamodb_local import local_client

TABLE_TYPE = "AWS::DynamoDB::Table"
_INDEX_KEYS = (
    "IndexName", "KeySchema", "Projection", "ProvisionedThroughput", "OnDemandThroughput",
)


def load_template(template_path: Path, parameter_overrides: dict[str, str] | None = None) -> dict:
    """Parse a SAM/CloudFormation template (``!Ref``/``!GetAtt`` tags understood).

    Parameters (defaults, then ``parameter_overrides``) and pseudo parameters are
    substituted where they can be; unresolvable intrinsics are left as they are.
    """
    template = parse_yaml_file(str(template_path))
    return SamBaseProvider.get_template(template, parameter_overrides)


def local_table(variable: str, template_path: Path) -> str:
    """Local name of the table the functions know as ``variable`` (e.g. ``API_KEYS_TABLE``):
    its ``!Ref``'s logical id, as the local stack names tables.

    Raises:
        LookupError: no function of the template has that variable.
    """
    for resource in load_template(template_path)["Resources"].values():
        variables = ((resource.get("Properties") or {}).get("Environment") or {}).get(
            "Variables") or {}
        if resource.get("Type") == "AWS::Serverless::Function" and isinstance(
                variables.get(variable), str):
            return str(variables[variable])
    raise LookupError(f"no function has {variable} in {template_path.name}")


def table_definitions(template: dict) -> dict[str, dict[str, Any]]:
    """Map each ``AWS::DynamoDB::Table`` logical id to its ``Properties`` dict."""
    return {
        logical_id: resource.get("Properties") or {}
        for logical_id, resource in (template.get("Resources") or {}).items()
        if isinstance(resource, dict) and resource.get("Type") == TABLE_TYPE
    }


def create_table_request(table_name: str, props: dict[str, Any]) -> dict[str, Any]:
    """Translate CloudFormation table ``Properties`` into a ``CreateTable`` request.

    CloudFormation-only settings (point-in-time recovery, SSE, tags, deletion
    protection, contributor insights) have no local meaning and are dropped.
    """
    billing = props.get("BillingMode", "PROVISIONED")
    request: dict[str, Any] = {
        "TableName": table_name,
        "KeySchema": props["KeySchema"],
        "AttributeDefinitions": props["AttributeDefinitions"],
        "BillingMode": billing,
    }
    if billing == "PROVISIONED":
        request["ProvisionedThroughput"] = _throughput(props.get("ProvisionedThroughput"))
    for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        if props.get(key):
            request[key] = [_index(index, billing, key) for index in props[key]]
    stream = props.get("StreamSpecification")
    if stream and stream.get("StreamViewType"):
        request["StreamSpecification"] = {
            "StreamEnabled": True,
            "StreamViewType": stream["StreamViewType"],
        }
    return request


def create_tables(
    template_path: Path,
    endpoint_url: str,
    parameter_overrides: dict[str, str] | None = None,
) -> dict[str, str]:
    """Create every template table in the DynamoDB endpoint at ``endpoint_url``.

    Idempotent: tables that already exist (e.g. with ``--persist``) are left alone.
    Returns ``{logical_id: table_name}`` (the two are equal locally). Uses fake
    credentials; raises botocore errors if a definition is rejected.
    """
    template = load_template(Path(template_path), parameter_overrides)
    client = local_client(endpoint_url)
    existing = set(_all_table_names(client))
    names: dict[str, str] = {}
    for logical_id, props in table_definitions(template).items():
        names[logical_id] = logical_id
        if logical_id in existing:
            continue
        client.create_table(**create_table_request(logical_id, props))
        client.get_waiter("table_exists").wait(
            TableName=logical_id, WaiterConfig={"Delay": 0.2, "MaxAttempts": 100}
        )
        ttl = props.get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled"):
            client.update_time_to_live(
                TableName=logical_id,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]},
            )
    return names


def _throughput(value: dict[str, Any] | None) -> dict[str, int]:
    value = value or {}
    return {
        "ReadCapacityUnits": int(value.get("ReadCapacityUnits", 5)),
        "WriteCapacityUnits": int(value.get("WriteCapacityUnits", 5)),
    }


def _index(index: dict[str, Any], billing: str, kind: str) -> dict[str, Any]:
    out = {key: index[key] for key in _INDEX_KEYS if key in index}
    if kind == "GlobalSecondaryIndexes" and billing == "PROVISIONED":
        out["ProvisionedThroughput"] = _throughput(index.get("ProvisionedThroughput"))
    elif billing != "PROVISIONED":
        out.pop("ProvisionedThroughput", None)
    if kind == "LocalSecondaryIndexes":
        out.pop("ProvisionedThroughput", None)
    return out


def _all_table_names(client: Any) -> list[str]:
    names: list[str] = []
    for page in client.get_paginator("list_tables").paginate():
        names.extend(page.get("TableNames", []))
    return names
