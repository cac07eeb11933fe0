"""Lambda event filtering (``FilterCriteria``) for the local event source mappings.

Supports the subset of AWS's pattern syntax the template uses and then some: exact values,
``prefix``, ``suffix``, ``anything-but``, ``exists`` and ``equals-ignore-case``, nested
objects, several filters (a record passes when any filter matches). See
https://docs.aws.amazon.com/lambda/latest/dg/invocation-eventfiltering.html.
"""

from __future__ import annotations

import json
from typing import Any

_MISSING = object()


def _matches_value(value: Any, rule: Any) -> bool:
    if not isinstance(rule, dict):
        return value is not _MISSING and value == rule
    if "exists" in rule:
        return (value is not _MISSING) == bool(rule["exists"])
    if value is _MISSING:
        return False
    if "prefix" in rule:
        return isinstance(value, str) and value.startswith(rule["prefix"])
    if "suffix" in rule:
        return isinstance(value, str) and value.endswith(rule["suffix"])
    if "equals-ignore-case" in rule:
        return isinstance(value, str) and value.lower() == str(rule["equals-ignore-case"]).lower()
    if "anything-but" in rule:
        excluded = rule["anything-but"]
        excluded = excluded if isinstance(excluded, list) else [excluded]
        return value not in excluded
    raise ValueError(f"unsupported filter rule {rule!r}")


def _matches(data: Any, pattern: dict[str, Any]) -> bool:
    for key, rule in pattern.items():
        value = data.get(key, _MISSING) if isinstance(data, dict) else _MISSING
        if isinstance(rule, dict):
            if not _matches(value if isinstance(value, dict) else {}, rule):
                return False
        elif isinstance(rule, list):
            if not any(_matches_value(value, r) for r in rule):
                return False
        else:
            raise ValueError(f"pattern values must be objects or arrays, got {rule!r}")
    return True


class FilterCriteria:
    """Compiled ``FilterCriteria.Filters``: ``passes(record)`` is what Lambda would decide."""

    def __init__(self, filters: list[dict[str, str]] | None) -> None:
        self.patterns = [json.loads(f["Pattern"]) for f in filters or []]

    def passes(self, record: dict[str, Any]) -> bool:
        """True when there are no filters or any of them matches ``record``."""
        return not self.patterns or any(_matches(record, p) for p in self.patterns)
