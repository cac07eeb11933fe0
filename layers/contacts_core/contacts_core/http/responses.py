"""Sizing responses to Lambda's limit (HTTP plumbing, no domain rules).

Lambda caps a synchronous response at 6 MB (6,291,456 bytes) *as serialized* (AWS Lambda
quotas, "Invocation payload … synchronous"): a proxy response's ``body`` is a string inside
that JSON, so it counts JSON-escaped — a ``"`` or ``\\`` takes two bytes, a control
character six, a non-ASCII character six (twelve outside the BMP) when the runtime escapes
to ASCII. Sizes here are therefore measured with ``json.dumps`` of the body text, the
largest of those encodings, and :data:`RESPONSE_BUDGET` leaves :data:`HEADROOM` for the
status, the headers and the JSON around the body.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from pydantic import BaseModel

LAMBDA_RESPONSE_LIMIT = 6 * 1024 * 1024  # bytes of the serialized proxy response
HEADROOM = 64 * 1024  # status, headers (Link, cursor), punctuation around the items
RESPONSE_BUDGET = LAMBDA_RESPONSE_LIMIT - HEADROOM  # of the JSON-encoded body


def encoded_size(text: str) -> int:
    """Bytes ``text`` takes as a JSON string in the proxy response (quotes included)."""
    return len(json.dumps(text))


def model_size(model: BaseModel) -> int:
    """Bytes ``model`` adds to a JSON body once that body is escaped into the proxy
    response (its JSON, escaped, plus a separator)."""
    return encoded_size(model.model_dump_json()) - 1


def fitting(models: Sequence[BaseModel], budget: int = RESPONSE_BUDGET) -> int:
    """How many of ``models``, taken in order, fit ``budget`` bytes of encoded body; at
    least one when there is any (a single item is always far below the limit)."""
    used = 0
    for n, model in enumerate(models):
        used += model_size(model)
        if used > budget:
            return max(n, 1)
    return len(models)
