"""Attribute values (``contacts_core.attribute_values``) against boto3's own rules.

The stores once used ``boto3.dynamodb.types.TypeSerializer``/``TypeDeserializer`` with two
rules of ours on top (a float is stored as the decimal of its repr; a number reads back as
``int`` when whole within 38 digits, else ``float``); the module replaced them to keep boto3
out of cold starts. boto3's classes stay the reference here: on any value DynamoDB can hold,
both give the same attribute value, and reading it back gives the same plain value.
"""

from __future__ import annotations

import decimal
from decimal import Decimal
from typing import Any

import pytest
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from hypothesis import given
from hypothesis import strategies as st

from contacts_core.attribute_values import from_attribute_value, same_value, to_attribute_value
from contacts_core.limits import MAX_INTEGER


def _boto3_plain(value: Any) -> Any:
    """The stores' old rules on boto3's output: Decimal → int (whole, ≤ 38 digits) or
    float (boto3's Binary equals, and hashes as, its bytes)."""
    if isinstance(value, Decimal):
        whole = value == value.to_integral_value() and value.copy_abs() <= MAX_INTEGER
        return int(value) if whole else float(value)
    if isinstance(value, dict):
        return {k: _boto3_plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_boto3_plain(v) for v in value]
    if isinstance(value, set):
        return {_boto3_plain(v) for v in value}
    return value


def _boto3_value(value: Any) -> Any:
    """The stores' old float rule before boto3's serializer (which refuses floats)."""
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {k: _boto3_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_boto3_value(v) for v in value]
    return value


def _boto3_accepts(value: float | Decimal) -> bool:
    """boto3's serializer takes the number (as the stores hand it over)."""
    try:
        TypeSerializer().serialize(_boto3_value(value))
    except decimal.DecimalException:
        return False
    return True


numbers = st.one_of(
    st.integers(min_value=-MAX_INTEGER, max_value=MAX_INTEGER),
    st.floats(allow_nan=False, allow_infinity=False).filter(_boto3_accepts),
    st.decimals(allow_nan=False, allow_infinity=False).filter(_boto3_accepts))
scalars = st.one_of(st.none(), st.booleans(), numbers, st.text(), st.binary(min_size=1))
sets = st.one_of(st.frozensets(st.text(), min_size=1).map(set),
                 st.frozensets(st.integers(-10**6, 10**6), min_size=1).map(set))
values = st.recursive(scalars | sets, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)


@given(values)
def test_every_storable_value_serialises_as_boto3_does_and_reads_back_the_same(value: Any) -> None:
    # Given a value DynamoDB can hold
    # When it is turned into an attribute value, by ours and by boto3's serializer
    ours = to_attribute_value(value)
    theirs = TypeSerializer().serialize(_boto3_value(value))
    # Then both are the same attribute value
    assert ours == theirs
    # And reading it back gives what boto3's deserializer (with the stores' rules) gives
    assert from_attribute_value(ours) == _boto3_plain(TypeDeserializer().deserialize(theirs))


@pytest.mark.parametrize("number", [10**38 + 1, Decimal("1." + "0" * 38 + "1"),
                                    Decimal("1e-400"), 1e-320])
def test_numbers_dynamodb_cannot_hold_exactly_raise_as_boto3s_do(number: Any) -> None:
    # Given a number DynamoDB cannot hold exactly (39 digits, or far too small)
    # When either serializer meets it
    with pytest.raises(decimal.DecimalException) as ours:
        to_attribute_value(number)
    with pytest.raises(decimal.DecimalException) as theirs:
        TypeSerializer().serialize(_boto3_value(number))
    # Then both refuse it the same way
    assert type(ours.value) is type(theirs.value)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), Decimal("NaN"), Decimal("-Infinity"),
                                   {1, "a"}, set(), object()])
def test_what_dynamodb_cannot_hold_is_a_type_error(value: Any) -> None:
    with pytest.raises((TypeError, decimal.DecimalException)):
        to_attribute_value(value)


@pytest.mark.parametrize("raw", [{}, {"S": "a", "N": "1"}, {"X": 1}])
def test_a_malformed_attribute_value_is_a_type_error(raw: dict[str, Any]) -> None:
    with pytest.raises(TypeError):
        from_attribute_value(raw)


@pytest.mark.parametrize(("a", "b", "same"), [
    (1, True, False), (0, False, False), (0.0, False, False), (True, True, True),
    (1, 1.0, True), ("1", 1, False), (None, False, False), (None, None, True),
    ({"x": 1, "y": "k"}, {"y": "k", "x": 1}, True), ({"x": 1}, {"x": True}, False),
    ({"x": 1}, {"x": 1, "y": None}, False), ([1, True], [1, 1], False), ([1], (1,), True)])
def test_same_value_tells_booleans_from_numbers_as_dynamodb_does(a, b, same):
    # DynamoDB's BOOL and N are different types (so are JSON's true and 1); Python's ==
    # holds True == 1
    assert same_value(a, b) is same and same_value(b, a) is same
