"""Request bodies as I-JSON (RFC 7493): parsed with :func:`parse_json`, checked with
:func:`json_problem`. Used by the handler for whole bodies and by bulk upsert for each
item, so a bad item fails alone (SPEC §5)."""

from __future__ import annotations

import json
import math
from typing import Any

from contacts_core.errors import FieldError

MAX_JSON_DEPTH = 32  # the deepest body we take is 4 levels (bulk → contact → attributes)
_INT_MAX_DIGITS = 4300  # Python's default limit on int("…") (sys.int_info)


class _RepeatedMember(dict[str, Any]):
    """A parsed JSON object that named the member ``repeated`` twice (the path is known
    only once the whole body is parsed: :func:`json_problem` reports it)."""

    repeated: str


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``json.loads``' object hook: the object, or a :class:`_RepeatedMember` marking the
    first member name it holds twice."""
    data = dict(pairs)
    if len(data) != len(pairs):
        seen: set[str] = set()
        for name, _ in pairs:
            if name in seen:
                marked = _RepeatedMember(data)
                marked.repeated = name
                return marked
            seen.add(name)
    return data


def _parse_int(literal: str) -> int | float:
    """JSON integers; one too long for ``int()`` becomes ±infinity, as ``json`` already
    reads ``1e400``, so the models refuse it naming its field instead of the whole body
    failing to parse."""
    if len(literal.lstrip("-")) <= _INT_MAX_DIGITS:
        return int(literal)
    return float("-inf") if literal.startswith("-") else float("inf")


def _parse_float(literal: str) -> float:
    """JSON numbers with a fraction or exponent, as doubles (I-JSON, RFC 7493 §2.2: more
    precision than a double is not interoperable). One too small for a double
    (``1e-400``) would read as zero and be stored so: it becomes the smallest double of
    its sign instead, which the models refuse naming its field, as they refuse ``1e-200``."""
    value = float(literal)
    mantissa = literal.lower().partition("e")[0]
    if value == 0 and mantissa.strip("-+0.") != "":
        return math.copysign(5e-324, value)
    return value


class TooDeep(ValueError):
    """JSON nested too deep for the parser itself (far beyond :data:`MAX_JSON_DEPTH`)."""


def parse_json(text: str) -> Any:
    """``text`` parsed as JSON, objects naming a member twice marked for
    :func:`json_problem`, numbers as :func:`_parse_int` and :func:`_parse_float` read them.

    Raises:
        TooDeep: nested too deep for the parser (Python's recursion limit).
        json.JSONDecodeError: malformed JSON.
    """
    try:
        return json.loads(text, parse_int=_parse_int, parse_float=_parse_float,
                          object_pairs_hook=_unique_members)
    except RecursionError as err:
        raise TooDeep(f"JSON nested deeper than {MAX_JSON_DEPTH} levels") from err


def unencodable(text: str) -> bool:
    """True when ``text`` holds an unpaired surrogate, which has no UTF-8 encoding."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return True
    return False


def json_problem(data: Any, items_alone: str | None = None) -> FieldError | None:
    """The first place where parsed JSON is not I-JSON we can store (RFC 7493 §2.1):
    nested deeper than :data:`MAX_JSON_DEPTH`, or a member name or string with an unpaired
    surrogate (``"\\ud800"``), or an object naming a member twice (RFC 7493 §2.3: which
    one a parser keeps is undefined), reported at the member's path
    (``attributes.tier``). Within the items of the top-level list ``items_alone`` only the
    depth is checked: the caller checks each item on its own (bulk upsert's ``contacts``,
    where such an item fails alone). Iterative, so no depth is too deep for the check."""
    stack: list[tuple[Any, tuple[str, ...], bool]] = [(data, (), False)]
    while stack:
        value, path, depth_only = stack.pop()
        where = ".".join(path) or "body"
        if len(path) > MAX_JSON_DEPTH:
            return FieldError("body", f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
        if not depth_only and isinstance(value, str) and unencodable(value):
            return FieldError(where, "not valid Unicode (unpaired surrogate)")
        if not depth_only and isinstance(value, _RepeatedMember):
            return FieldError(".".join((*path, value.repeated)),
                              "this member appears twice in one object (I-JSON, RFC 7493 §2.3)")
        if isinstance(value, dict):
            for key, item in value.items():
                if not depth_only and unencodable(key):
                    return FieldError(where, "member name is not valid Unicode "
                                             "(unpaired surrogate)")
                stack.append((item, (*path, key), depth_only))
        elif isinstance(value, list):
            inner = depth_only or (items_alone is not None and path == (items_alone,))
            stack.extend((item, (*path, str(n)), inner) for n, item in enumerate(value))
    return None
