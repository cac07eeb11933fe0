"""Local event filtering follows Lambda's pattern rules for the cases the template uses."""

from __future__ import annotations

import json

import pytest

from devstack.filters import FilterCriteria

CONTACT = {"eventName": "MODIFY", "dynamodb": {"Keys": {"contact_id": {"S": "con_01"}}}}
GUARD = {"eventName": "INSERT", "dynamodb": {"Keys": {"audience_id": {"S": "name#vip"}}}}


def criteria(*patterns):
    return FilterCriteria([{"Pattern": json.dumps(p)} for p in patterns])


def test_prefix_on_keys():
    only_contacts = criteria({"dynamodb": {"Keys": {"contact_id": {"S": [{"prefix": "con_"}]}}}})
    assert only_contacts.passes(CONTACT)
    assert not only_contacts.passes(GUARD)


def test_exact_values_and_any_filter():
    inserts = criteria({"eventName": ["INSERT", "REMOVE"]})
    assert inserts.passes(GUARD) and not inserts.passes(CONTACT)
    either = criteria({"eventName": ["REMOVE"]}, {"eventName": ["MODIFY"]})
    assert either.passes(CONTACT)


@pytest.mark.parametrize(("rule", "expected"), [
    ({"anything-but": ["INSERT"]}, True), ({"anything-but": "MODIFY"}, False),
    ({"exists": True}, True), ({"suffix": "FY"}, True), ({"equals-ignore-case": "modify"}, True),
])
def test_operators(rule, expected):
    assert criteria({"eventName": [rule]}).passes(CONTACT) is expected


def test_no_filters_pass_everything():
    assert FilterCriteria(None).passes(GUARD)
