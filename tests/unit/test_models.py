"""Request models: normalisation, limits and field-naming errors."""

from __future__ import annotations

import unicodedata

import pytest
from pydantic import ValidationError

from contacts_core.contacts import requests
from contacts_core.contacts.changes import ContactChanges
from contacts_core.contacts.models import ContactItem
from contacts_core.contacts.requests import ContactCreate, ContactPatch
from contacts_core.http.problems import from_validation_error
from contacts_core.names import fold, name_key


def fields_of(exc: ValidationError) -> list[str]:
    return [e.field for e in from_validation_error(exc).errors]


def test_tags_keep_order_and_drop_duplicates():
    assert ContactCreate(email="a@b.co", tags=["b", "a", "b"]).tags == ["b", "a"]


def test_a_tag_typed_composed_or_decomposed_is_one_tag_stored_composed():
    # Given "café" composed (U+00E9) and decomposed (e + U+0301), Then one tag, in NFC
    tags = ContactCreate(email="a@b.co", tags=["cafe\u0301", "caf\u00e9", "x"]).tags
    assert tags == ["caf\u00e9", "x"]


@pytest.mark.parametrize("blank", ["", "   ", "\t"])
def test_a_blank_name_is_no_name(blank):
    # Given empty or blank names, Then they are null: left out on create …
    created = ContactCreate.model_validate(
        {"email": "a@b.co", "first_name": blank, "last_name": blank, "name": blank})
    assert (created.first_name, created.last_name, created.name) == (None, None, None)
    # … and cleared by a PATCH (a blank name follows its parts again)
    patch = ContactPatch.model_validate({"name": blank, "first_name": "Sam"})
    changes = ContactChanges.from_request(patch)
    assert changes.clear == {"name"} and changes.assign["first_name"] == "Sam"


@pytest.mark.parametrize("phone", ["+27821234567 ext. 1234", "+27821234567 x12",
                                   "082 123 4567 ext 9"])
def test_a_phone_with_an_extension_is_refused_not_cut(phone):
    with pytest.raises(ValidationError) as err:
        ContactCreate.model_validate({"phone": phone, "country_code": "ZA"})
    (error,) = from_validation_error(err.value).errors
    assert error.field == "phone" and "extension" in error.message


def test_sixty_tags_with_duplicates_down_to_fifty_are_fine():
    tags = [f"t{i}" for i in range(50)] * 2
    assert len(ContactCreate(email="a@b.co", tags=tags).tags or []) == 50


def test_email_is_stored_lowercase():
    assert ContactCreate(email="Ahmed@Example.COM").email == "ahmed@example.com"


def test_missing_identity_names_phone():
    with pytest.raises(ValidationError) as err:
        ContactCreate(first_name="x")
    assert fields_of(err.value) == ["phone"]


@pytest.mark.parametrize("field", ["email", "external_id"])
def test_an_identifier_sent_as_null_alone_is_the_field_named(field):
    with pytest.raises(ValidationError) as err:
        ContactCreate.model_validate({field: None, "first_name": "x"})
    assert fields_of(err.value) == [field]


def test_patch_cannot_null_suppressed():
    with pytest.raises(ValidationError) as err:
        ContactPatch.model_validate({"suppressed": None})
    assert fields_of(err.value) == ["suppressed"]


def test_patch_knows_null_from_absent():
    changes = ContactChanges.from_request(ContactPatch.model_validate(
        {"email": None, "attributes": {"a": None, "b": 2}, "tags": None}))
    assert changes.clear == {"email"} and changes.assign == {"tags": []}
    assert changes.attributes_remove == {"a"} and changes.attributes_set == {"b": 2}
    assert changes.touches_identity()
    assert ContactChanges.from_request(ContactPatch.model_validate({})).is_empty()


def test_apply_is_a_merge_patch():
    then, later = "2026-01-01T00:00:00.000Z", "2026-01-02T00:00:00.000Z"
    item = ContactItem(org_id="o", contact_id="con_1", version=3, created_at=then,
                       updated_at=then, name_key=name_key("Sam", "con_1"), name="Sam",
                       phone="+27821234567", email="sam@example.com", attributes={"a": 1, "b": 2})
    patch = ContactPatch.model_validate({"phone": None, "name": "Zoë",
                                         "attributes": {"a": None, "c": True}})
    after = ContactChanges.from_request(patch).apply(item, later)
    assert after.phone is None and after.country_code is None
    assert after.attributes == {"b": 2, "c": True}
    assert after.name_key == "zoe\x1fcon_1" and after.version == 4 and after.updated_at == later
    # and a write stamped before the stored time leaves updated_at where it was
    assert ContactChanges.from_request(patch).apply(after, then).updated_at == later


def test_fold_strips_case_accents_and_spacing():
    assert fold("  Zoë   ÅSE ") == "zoe ase"


@pytest.mark.parametrize("model", [ContactCreate, ContactPatch])
@pytest.mark.parametrize("field", ["source", "suppressed", "consent"])
def test_fields_every_contact_has_cannot_be_null(model, field):
    with pytest.raises(ValidationError) as err:
        model.model_validate({"email": "a@b.co", field: None})
    assert fields_of(err.value) == [field]


def test_a_name_is_bounded_by_its_folded_search_key():
    # "ﷺ" is one character that folds to 18 (33 bytes of UTF-8): 14 fit, 256 do not
    with pytest.raises(ValidationError) as err:
        ContactCreate(email="a@b.co", name="ﷺ" * 14, first_name="ﷺ" * 256)
    assert fields_of(err.value) == ["first_name"]
    assert ContactCreate(email="a@b.co", name="ﷺ" * 14).name == "ﷺ" * 14


@pytest.mark.parametrize(("first", "last"), [("a" * 256, "b" * 256), ("ﷺ" * 14, "ﷺ" * 14)])
def test_the_longest_default_name_can_be_sent_back_as_name(first, last):
    # Given the longest parts (in characters; in folded bytes), whose default name is longer
    # than either part may be
    created = ContactCreate(email="a@b.co", first_name=first, last_name=last)
    item = ContactChanges.from_request(created).apply(
        ContactItem(org_id="o", contact_id="con_1", version=0, created_at="t", updated_at="t",
                    name_key=""), "t")
    # When a client sends the contact back as it reads it (a re-sync of a GET)
    again = ContactCreate(email="a@b.co", first_name=first, last_name=last, name=item.name)
    # Then the name is taken as it is, and its index key fits DynamoDB's 1,024 bytes
    assert again.name == item.name == f"{first} {last}"
    assert len(name_key(again.name, "con_01JD8Q2M6W3YQ0V4C7N5T9KX2B").encode()) <= 1024
    # And a name longer than any default is still refused, naming it
    with pytest.raises(ValidationError) as err:
        ContactCreate(email="a@b.co", name="n" * 514)
    assert fields_of(err.value) == ["name"]


def test_booleans_are_attributes_not_out_of_range_numbers():
    assert ContactCreate(email="a@b.co", attributes={"vip": True, "n": -0.0}).attributes == {
        "vip": True, "n": 0.0}


@pytest.mark.parametrize(("body", "field"), [
    ({"first_name": "Sam\x00"}, "first_name"), ({"name": "a\x1bb"}, "name"),
    ({"tags": ["ok", "x\x7fy"]}, "tags.1"), ({"attributes": {"a\x1fb": 1}}, "attributes")])
def test_control_characters_are_refused_in_names_tags_and_attribute_keys(body, field):
    with pytest.raises(ValidationError) as err:
        ContactPatch.model_validate(body)
    assert fields_of(err.value) == [field]
    assert "control characters" in from_validation_error(err.value).errors[0].message
    # tab and line breaks are not refused (a CSV cell may hold them)
    assert ContactPatch.model_validate({"last_name": "Multi\nLine\tName"}).last_name


@pytest.mark.parametrize(("model", "body", "field"), [
    ("AudienceCreate", {"name": "x\x00y"}, "name"),
    ("AudienceCreate", {"name": "VIP", "description": "a\x07b"}, "description"),
    ("AudiencePatch", {"name": "\x1b[31mred"}, "name"),
    ("EndpointCreate", {"url": "https://hooks.example.com/", "description": "\x00"},
     "description"),
    ("EndpointPatch", {"description": "a\x7f"}, "description")])
def test_control_characters_are_refused_in_audience_and_endpoint_text(model, body, field):
    from contacts_core.audiences import models as audiences
    from contacts_core.webhooks import models as webhooks

    kind = getattr(audiences, model, None) or getattr(webhooks, model)
    with pytest.raises(ValidationError) as err:
        kind.model_validate(body)
    assert fields_of(err.value) == [field]
    assert "control characters" in from_validation_error(err.value).errors[0].message


@pytest.mark.parametrize("key", ["", "k" * 101])
def test_a_bad_attribute_key_names_attributes_and_quotes_the_key_short(key):
    with pytest.raises(ValidationError) as err:
        ContactPatch.model_validate({"attributes": {key: "v"}})
    (error,) = from_validation_error(err.value).errors
    assert error.field == "attributes"
    assert error.message.startswith(f'key "{key[:40]}') and len(error.message) < 120


@pytest.mark.parametrize("model", ["ContactCreate", "ContactUpsert", "ContactPatch"])
@pytest.mark.parametrize("keys", [("tier", "tier "), (" a", "a\t"), ("x", "\u3000x"),
                                  ("caf\u00e9", "cafe\u0301")])
def test_attribute_keys_that_are_one_once_trimmed_are_refused_not_merged(model, keys):
    # Given two attribute keys that differ only by surrounding whitespace
    body = {"email": "a@b.co", "attributes": {keys[0]: "gold", keys[1]: "silver"}}
    if model == "ContactPatch":
        del body["email"]
    # When a request body holds both, Then it is a 400 naming attributes (no value dropped)
    with pytest.raises(ValidationError) as err:
        getattr(requests, model).model_validate(body)
    assert fields_of(err.value) == ["attributes"]
    assert "same key once trimmed" in from_validation_error(err.value).errors[0].message
    # ... while one such key alone is trimmed, as every string is
    body["attributes"] = {keys[1]: "silver"}
    assert getattr(requests, model).model_validate(body).attributes == {
        unicodedata.normalize("NFC", keys[1].strip()): "silver"}


@pytest.mark.parametrize("code", ["ZZ", "UK", "XX"])
def test_a_country_code_libphonenumber_does_not_know_is_named(code):
    with pytest.raises(ValidationError) as err:
        ContactCreate.model_validate({"email": "a@b.co", "country_code": code})
    assert fields_of(err.value) == ["country_code"]
    assert ContactCreate.model_validate({"phone": "082 123 4567", "country_code": "za"}
                                        ).phone == "+27821234567"


@pytest.mark.parametrize(("body", "field", "message"), [
    ({"tags": ["x" * 65]}, "tags.0", "must be at most 64 characters"),
    ({"tags": [""]}, "tags.0", "must be at least 1 character"),
    ({"first_name": "x" * 257}, "first_name", "must be at most 256 characters"),
    ({"x" * 5500: 1}, "x" * 64 + "…", "unknown field"),
])
def test_length_errors_count_characters_and_unknown_members_are_named_short(body, field,
                                                                            message):
    # Given a body with a string of the wrong length, or an unknown member with a huge name
    with pytest.raises(ValidationError) as err:
        ContactCreate.model_validate({"email": "a@b.co", **body})
    # Then the problem names the field (cut short) and says what is wrong in characters
    (error,) = from_validation_error(err.value).errors
    assert (error.field, error.message) == (field, message)


def test_a_body_with_many_bad_members_lists_the_first_and_counts_the_rest():
    # Given 45 unknown members
    with pytest.raises(ValidationError) as err:
        ContactCreate.model_validate({"email": "a@b.co", **{f"extra{n}": 1 for n in range(45)}})
    # Then the problem lists 20 of them and says how many more there are
    problem = from_validation_error(err.value)
    assert [e.field for e in problem.errors] == [f"extra{n}" for n in range(20)]
    assert problem.detail.endswith("; and 25 more")
