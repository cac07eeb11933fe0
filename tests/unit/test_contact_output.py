"""The Contact object of a stored contact: one rule for the API and the webhook events.

The API renders a ``ContactItem`` (defaults applied by the model); the stream emitter renders
the stream image as it is, without any model (issue 11, cold start). Both go through
``contact_object``, and the property here is that they cannot disagree, whatever fields a
stored item has or lacks, and that the result is exactly the ``Contact`` schema (SPEC §5).
"""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from contacts_core.contacts.models import Contact, ContactItem
from contacts_core.contacts.output import CHANNELS, contact_object

TEXT = st.text(max_size=8)
VALUES = st.one_of(st.booleans(), st.integers(-10**6, 10**6),
                   st.floats(allow_nan=False, allow_infinity=False, width=32), TEXT)
OPTIONAL = {
    "first_name": TEXT, "last_name": TEXT, "name": TEXT, "phone": st.just("+27821234567"),
    "email": st.just("sam@example.com"), "external_id": TEXT, "country_code": st.just("ZA"),
    "language": st.just("en"), "tags": st.lists(TEXT, max_size=3),
    "attributes": st.dictionaries(TEXT, VALUES, max_size=3),
    # stored consent may name only some channels (written before a channel existed)
    "consent": st.dictionaries(st.sampled_from(CHANNELS),
                               st.sampled_from(["opted_in", "opted_out", "unknown"])),
    "suppressed": st.booleans(), "source": st.sampled_from(["api", "import", "bulk"]),
    # bookkeeping the API never shows
    "audience_ids": st.sets(st.just("aud_1")), "membership_rev": st.integers(0, 9),
    "added_at#aud_1": st.just("2026-11-22T10:00:00.000Z"), "last_merged_id": st.just("con_2"),
    "content_bytes": st.integers(0, 999), "name_key": TEXT,
}


@st.composite
def stored_items(draw: st.DrawFn) -> dict[str, Any]:
    """A Contacts table item as plain values: the required keys, and any of the others."""
    present = draw(st.sets(st.sampled_from(sorted(OPTIONAL))))
    return {"org_id": "org_1", "contact_id": "con_1", "version": draw(st.integers(1, 99)),
            "created_at": "2026-11-22T10:00:00.000Z", "updated_at": "2026-11-22T10:00:01.000Z",
            "name_key": "", **{key: draw(OPTIONAL[key]) for key in sorted(present)}}


@given(stored_items())
def test_the_emitter_and_the_api_render_a_stored_contact_alike(item):
    # Given a stored contact, with or without each optional field and bookkeeping
    # When the emitter renders its stream image, and the API renders it as a ContactItem
    from_image = contact_object(item)
    from_model = Contact.from_item(ContactItem(**item)).model_dump(mode="json")
    # Then both are the same Contact object, in the schema's order, and nothing else
    assert from_image == from_model
    assert list(from_image) == list(Contact.model_fields)
    assert list(from_image["consent"]) == list(CHANNELS)
    assert Contact.model_validate(from_image).model_dump(mode="json") == from_image


def test_channels_follow_the_identifiers_and_absent_fields_take_the_defaults():
    # Given a stored contact with an email and nothing else optional
    item = {"contact_id": "con_1", "version": 3, "created_at": "t0", "updated_at": "t1",
            "email": "sam@example.com", "consent": {"email": "opted_in"}}
    # When it is rendered
    rendered = contact_object(item)
    # Then email is its only channel, consent defaults per channel, and absent fields are
    # null or empty as SPEC §5 shows them
    assert rendered["channels"] == {"has_whatsapp": False, "has_sms": False,
                                    "has_voice": False, "has_email": True}
    assert rendered["consent"] == {"whatsapp": "unknown", "sms": "unknown",
                                   "email": "opted_in", "voice": "unknown"}
    assert (rendered["phone"], rendered["tags"], rendered["attributes"]) == (None, [], {})
    assert (rendered["suppressed"], rendered["source"], rendered["id"]) == (False, "api", "con_1")
