"""Reading headers of an API Gateway HTTP API event (payload 2.0), with no dependency, so
the authorizer and the API handlers share it at no import cost."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def header_value(event: Mapping[str, Any], name: str) -> str | None:
    """The value of header ``name`` in ``event["headers"]``, case-insensitively (HTTP APIs
    lower-case header names already, other callers may not); of names that differ only in
    case, the last one given. None when absent."""
    wanted = name.lower()
    headers = event.get("headers") or {}
    return next((v for k, v in reversed(headers.items()) if k.lower() == wanted), None)
