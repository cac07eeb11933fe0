"""Signed cursors: round trip, and refusal of tampered, foreign or re-targeted cursors."""

from __future__ import annotations

import pytest

from contacts_core.errors import ValidationFailed
from contacts_core.http.cursor import decode_cursor, encode_cursor

QUERY = {"search": None, "tag": "vip", "sort": "created_at", "order": "desc"}
KEY = {"org_id": "org_a", "contact_id": "con_01JD8Q2M6W3YQ0V4C7N5T9KX2B"}


@pytest.fixture(autouse=True)
def secret(monkeypatch):
    monkeypatch.setenv("CURSOR_SECRET", "s" * 40)


def test_round_trip():
    assert decode_cursor(encode_cursor("org_a", QUERY, KEY), "org_a", QUERY) == KEY


@pytest.mark.parametrize("mutate", [
    lambda c: c[:5] + ("A" if c[5] != "A" else "B") + c[6:],
    lambda c: c.split(".")[0],
    lambda c: "%%%." + c.split(".")[1],
    lambda c: "",
])
def test_tampered_cursor_is_refused(mutate):
    with pytest.raises(ValidationFailed) as refused:
        decode_cursor(mutate(encode_cursor("org_a", QUERY, KEY)), "org_a", QUERY)
    assert refused.value.errors[0].field == "cursor"


def test_cursor_of_another_org_or_query_is_refused():
    cursor = encode_cursor("org_a", QUERY, KEY)
    with pytest.raises(ValidationFailed):
        decode_cursor(cursor, "org_b", QUERY)
    with pytest.raises(ValidationFailed):
        decode_cursor(cursor, "org_a", QUERY | {"tag": "other"})


def test_cursor_signed_with_another_secret_is_refused(monkeypatch):
    cursor = encode_cursor("org_a", QUERY, KEY)
    monkeypatch.setenv("CURSOR_SECRET", "t" * 40)
    with pytest.raises(ValidationFailed):
        decode_cursor(cursor, "org_a", QUERY)
