"""How an ``Idempotency-Key`` record keeps a response: large bodies compressed
(:func:`contacts_core.http.idempotency.packed`), every response given back as it was."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from contacts_core.http.idempotency import PACKED_FROM_BYTES, packed, recorded_size, unpacked

responses = st.fixed_dictionaries({
    "statusCode": st.sampled_from([200, 201, 204, 404, 409]),
    "headers": st.dictionaries(st.sampled_from(["ETag", "Content-Type", "Location"]),
                               st.text(max_size=40)),
}, optional={"body": st.one_of(
    st.text(max_size=200),
    st.text(min_size=1, max_size=30).map(lambda t: t * (PACKED_FROM_BYTES // len(t) + 1)),
)})


@given(responses)
def test_a_recorded_response_is_given_back_as_it_was(response):
    # Given any response, small or large, of any text
    # When it is recorded and read back
    # Then it is the same response
    assert unpacked(packed(response)) == response


@given(st.text(min_size=1, max_size=30))
def test_a_large_body_is_recorded_smaller_and_a_small_one_as_it_is(unit):
    # Given a repetitive body at the packing threshold, and one just under it
    large = {"statusCode": 200, "headers": {}, "body": unit * (PACKED_FROM_BYTES // len(unit) + 1)}
    small = {"statusCode": 200, "headers": {}, "body": "x" * (PACKED_FROM_BYTES - 1)}
    # When they are recorded
    # Then the large one takes a fraction of its size, the small one is kept unchanged
    assert recorded_size(packed(large)) < recorded_size(large) // 4
    assert packed(small) == small
