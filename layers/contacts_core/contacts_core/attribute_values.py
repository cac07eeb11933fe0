"""DynamoDB attribute values (the low-level API's typed JSON, ``{"S": "…"}``, ``{"N": "1"}``…)
to and from the plain values the stores hold, without importing ``boto3``.

The rules are boto3's ``boto3.dynamodb.types.TypeSerializer``/``TypeDeserializer`` (the tests
compare both on generated values, ``tests/unit/test_attribute_values.py``), plus the two the
stores had added on top: a ``float`` is stored as the decimal of its shortest repr, and a
number reads back as ``int`` when whole and within 38 digits, else as ``float``. Importing
``boto3`` at all (any of its modules runs ``boto3/__init__``, which imports s3transfer and
multiprocessing) costs a cold start about 30 ms that no DynamoDB request needs; see the
README's "Cold start".

Numbers follow DynamoDB's rules (Developer Guide, "Supported data types" → Number) as boto3's
``DYNAMODB_CONTEXT`` does: more than 38 significant digits raises ``decimal.Inexact``/
``Rounded``, a number far outside the range ``Overflow``/``Underflow``; the exact range
(1E-130 to below 1E+126) is DynamoDB's to refuse, and the request models keep such numbers
out before any write (``contacts_core.limits``).
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from decimal import Clamped, Context, Decimal, Inexact, Overflow, Rounded, Underflow
from typing import Any

from contacts_core.limits import MAX_INTEGER

# DynamoDB's number range and precision, trapping whatever it would reject or round.
NUMBERS = Context(Emin=-128, Emax=126, prec=38,
                  traps=[Clamped, Overflow, Inexact, Rounded, Underflow])


def _number(value: int | float | Decimal) -> str:
    """The ``N`` string of a number.

    Raises:
        TypeError: NaN or infinity (DynamoDB has neither).
        decimal.DecimalException: outside DynamoDB's precision or range.
    """
    exact = Decimal(repr(value)) if isinstance(value, float) else value
    text = str(NUMBERS.create_decimal(exact))
    if text in ("Infinity", "-Infinity", "NaN", "-NaN", "sNaN", "-sNaN"):
        raise TypeError(f"{text} is not a DynamoDB number")
    return text


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def _set(value: Set[Any]) -> dict[str, list[Any]]:
    members = list(value)
    if not members:
        raise TypeError("DynamoDB has no empty set")
    if all(isinstance(m, str) for m in members):
        return {"SS": members}
    if all(_is_number(m) for m in members):
        return {"NS": [_number(m) for m in members]}
    if all(isinstance(m, bytes | bytearray) for m in members):
        return {"BS": [bytes(m) for m in members]}
    raise TypeError("a set must hold only strings, only numbers or only bytes")


def to_attribute_value(value: Any) -> dict[str, Any]:
    """One plain value → its attribute value: ``None`` → ``NULL``, ``bool`` → ``BOOL``,
    ``int``/``float``/``Decimal`` → ``N``, ``str`` → ``S``, ``bytes`` → ``B``, a set →
    ``SS``/``NS``/``BS``, a list or tuple → ``L``, a mapping (``str`` keys) → ``M``.

    Raises:
        TypeError: another type, a mixed or empty set, NaN or infinity.
        decimal.DecimalException: a number outside DynamoDB's precision or range.
    """
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if _is_number(value):
        return {"N": _number(value)}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, bytes | bytearray):
        return {"B": bytes(value)}
    if isinstance(value, Set):
        return _set(value)
    if isinstance(value, list | tuple):
        return {"L": [to_attribute_value(v) for v in value]}
    if isinstance(value, Mapping):
        return {"M": {str(k): to_attribute_value(v) for k, v in value.items()}}
    raise TypeError(f"{type(value).__name__} is not a DynamoDB type")


def plain_number(text: str) -> int | float:
    """An ``N`` string → ``int`` when whole and within 38 digits (so a stored 9.99E+125
    reads back as a float that can be sent back as it is), else ``float``."""
    number = NUMBERS.create_decimal(text)
    whole = number == number.to_integral_value() and number.copy_abs() <= MAX_INTEGER
    return int(number) if whole else float(number)


def stored_number(value: int | float) -> int | float:
    """``value`` as it reads back once stored (:func:`plain_number` of its ``N`` string):
    ``1E2`` and ``100.0`` → ``100``, ``-0.0`` → ``0``, ``1.50`` → ``1.5``. Write answers carry
    this, so they show a number as every later read and webhook does.

    Raises:
        TypeError, decimal.DecimalException: as :func:`to_attribute_value`.
    """
    return plain_number(_number(value))


def from_attribute_value(value: Mapping[str, Any]) -> Any:
    """One attribute value → its plain value (the inverse of :func:`to_attribute_value`,
    numbers by :func:`plain_number`; ``SS``/``NS``/``BS`` → ``set``).

    Raises:
        TypeError: not a one-member mapping of a known DynamoDB type.
    """
    if len(value) != 1:
        raise TypeError(f"an attribute value has one type, not {sorted(value)}")
    ((kind, inner),) = value.items()
    match kind:
        case "S" | "BOOL":
            return inner
        case "N":
            return plain_number(inner)
        case "NULL":
            return None
        case "B":
            return bytes(inner)
        case "SS":
            return set(inner)
        case "NS":
            return {plain_number(n) for n in inner}
        case "BS":
            return {bytes(b) for b in inner}
        case "L":
            return [from_attribute_value(v) for v in inner]
        case "M":
            return {k: from_attribute_value(v) for k, v in inner.items()}
    raise TypeError(f"{kind!r} is not a DynamoDB type")


def same_value(a: Any, b: Any) -> bool:
    """True when ``a`` and ``b`` are the same plain value as DynamoDB stores it.

    Python's ``==`` holds ``True == 1`` and ``False == 0.0`` (``bool`` is an ``int``), but
    DynamoDB's ``BOOL`` and ``N`` are different types, and so are JSON's ``true`` and ``1``:
    an attribute changed from ``1`` to ``true`` is a change. Here a boolean equals only the
    same boolean, at any depth of maps and lists; numbers compare by value (``1`` and
    ``1.0`` are the same ``N``); maps compare by their keys, in any order.
    """
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(same_value(a[key], b[key]) for key in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)
