"""Signed cursors: round trip, and refusal of tampered, foreign or re-targeted cursors."""

from __future__ import annotations

import json

import pytest

from contacts_core.errors import ValidationFailed
from contacts_core.http.cursor import _b64, _sign, decode_cursor, encode_cursor
from contacts_core.keys import KeyRing, KeyUnavailable, rotated_ring

QUERY = {"search": None, "tag": "vip", "sort": "created_at", "order": "desc"}
KEY = {"org_id": "org_a", "contact_id": "con_01JD8Q2M6W3YQ0V4C7N5T9KX2B"}
RING = KeyRing.from_secret({"current": "s" * 40})
URLSAFE = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def test_round_trip():
    assert decode_cursor(encode_cursor("org_a", QUERY, KEY, RING), "org_a", QUERY, RING) == KEY


@pytest.mark.parametrize("mutate", [
    lambda c: c[:5] + ("A" if c[5] != "A" else "B") + c[6:],
    lambda c: c.split(".")[0],
    lambda c: "%%%." + c.split(".")[1],
    lambda c: "",
    # the same bytes spelled another way: padding, other unused bits in the last
    # character (a 32-byte signature leaves 2), a character outside the alphabet
    lambda c: c + "=",
    lambda c: c[:-1] + URLSAFE[URLSAFE.index(c[-1]) ^ 1],
    lambda c: c[:3] + "!" + c[3:],
])
def test_tampered_cursor_is_refused(mutate):
    with pytest.raises(ValidationFailed) as refused:
        decode_cursor(mutate(encode_cursor("org_a", QUERY, KEY, RING)), "org_a", QUERY, RING)
    assert refused.value.errors[0].field == "cursor"


def test_cursor_of_another_org_or_query_is_refused():
    cursor = encode_cursor("org_a", QUERY, KEY, RING)
    with pytest.raises(ValidationFailed):
        decode_cursor(cursor, "org_b", QUERY, RING)
    with pytest.raises(ValidationFailed):
        decode_cursor(cursor, "org_a", QUERY | {"tag": "other"}, RING)


def test_cursor_signed_with_another_secret_is_refused():
    cursor = encode_cursor("org_a", QUERY, KEY, RING)
    with pytest.raises(ValidationFailed):
        decode_cursor(cursor, "org_a", QUERY, KeyRing.from_secret({"current": "t" * 40}))


def test_rotation_shifts_the_ring_and_keeps_each_key_for_two_rotations():
    # Given a ring as the template creates it (current only)
    created = {"current": "k0" * 20}
    # When it is rotated three times
    first = rotated_ring(created)
    second = rotated_ring(first)
    third = rotated_ring(second)
    # Then the first rotation only announces a next key, later ones shift the ring,
    # and a key leaves the ring two rotations after it started signing
    assert first["current"] == created["current"] and first["next"]
    assert second == {"previous": created["current"], "current": first["next"],
                      "next": second["next"]}
    assert third["previous"] == first["next"] and created["current"] not in third.values()
    assert len(set(third.values())) == 3


def test_a_stale_ring_verifies_cursors_signed_with_the_rotated_ring():
    # Given one container still caching the ring from before a rotation
    before = {"current": "a" * 40, "next": "b" * 40}
    stale, fresh = KeyRing.from_secret(before), KeyRing.from_secret(rotated_ring(before))
    # When another container, which already reads the rotated ring, signs a cursor
    cursor = encode_cursor("org_a", QUERY, KEY, fresh)
    # Then the stale container pages with it, and the reverse holds too
    assert decode_cursor(cursor, "org_a", QUERY, stale) == KEY
    assert decode_cursor(encode_cursor("org_a", QUERY, KEY, stale), "org_a", QUERY, fresh) == KEY


@pytest.mark.parametrize("value", [{}, {"current": "short"}, {"current": "x" * 40, "next": 7},
                                   ["x" * 40]])
def test_a_malformed_ring_is_refused(value):
    with pytest.raises(KeyUnavailable):
        KeyRing.from_secret(value)


def test_a_cursor_carrying_its_query_itself_still_pages():
    # Given a cursor as issued before queries were bound by their SHA-256
    payload = json.dumps({"o": "org_a", "q": QUERY, "k": KEY}, separators=(",", ":"),
                         sort_keys=True).encode()
    cursor = f"{_b64(payload)}.{_b64(_sign(RING.signing, payload))}"
    # When it comes back with its query, or with another
    # Then it resumes where it was, and is refused for another query
    assert decode_cursor(cursor, "org_a", QUERY, RING) == KEY
    with pytest.raises(ValidationFailed):
        decode_cursor(cursor, "org_a", QUERY | {"tag": "other"}, RING)


def test_a_cursor_does_not_grow_with_its_query():
    long_query = QUERY | {"search": "x" * 10_000}
    assert len(encode_cursor("org_a", long_query, KEY, RING)) == \
        len(encode_cursor("org_a", QUERY | {"search": "y"}, KEY, RING))
