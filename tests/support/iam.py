"""A function's IAM statements as template.yaml grants them, read raw (``GetAtt`` unresolved).

API functions carry them inline (``Policies``, in SAM's generated role, some through a
managed policy of the template such as ``RateLimitPolicy``); event functions
name an explicit role (``Role: !GetAtt <Role>.Arn``) whose inline policies hold them.
"""

from __future__ import annotations

from typing import Any


def function_statements(resources: dict[str, Any], function_id: str) -> list[dict[str, Any]]:
    """Every policy statement that applies to ``function_id``."""
    props = resources[function_id]["Properties"]
    role = props.get("Role")
    if role is None:  # inline statements, or a managed policy of the template (!Ref)
        return [s for policy in props["Policies"] for s in (
            resources[policy["Ref"]]["Properties"]["PolicyDocument"] if "Ref" in policy
            else policy)["Statement"]]
    role_id = role["Fn::GetAtt"][0]
    return [s for policy in resources[role_id]["Properties"]["Policies"]
            for s in policy["PolicyDocument"]["Statement"]]


def as_list(value: Any) -> list[Any]:
    """``Action``/``Resource`` may be one value or a list."""
    return value if isinstance(value, list) else [value]
