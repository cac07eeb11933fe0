"""Phone normalisation against libphonenumber's own metadata (issue outcome 5)."""

from __future__ import annotations

import phonenumbers
import pytest

from contacts_core.contacts.phones import InvalidPhone, normalise_phone
from contacts_core.contacts.requests import ContactCreate


def _example_mobiles() -> list[tuple[str, str, str]]:
    cases = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        number = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
        if number is None:  # a few territories publish no mobile example
            continue
        national = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
        e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        cases.append((region, national, e164))
    return cases


EXAMPLES = _example_mobiles()


def test_examples_cover_nearly_every_region():
    assert len(EXAMPLES) >= 0.95 * len(phonenumbers.SUPPORTED_REGIONS)


@pytest.mark.parametrize(("region", "national", "e164"), EXAMPLES,
                         ids=[case[0] for case in EXAMPLES])
def test_national_example_mobile_normalises_to_libphonenumbers_e164(region, national, e164):
    # Given the region's example mobile number written the way locals write it
    # When it is sent with that country_code as the hint
    contact = ContactCreate(phone=national, country_code=region.lower())
    # Then it is stored as the E.164 libphonenumber gives, and reads back as that region's
    assert contact.phone == e164
    assert normalise_phone(e164).e164 == e164


def test_seed_examples():
    assert normalise_phone("082 123 4567", "ZA").e164 == "+27821234567"
    assert normalise_phone("+971 50 123 4567").region == "AE"
    assert normalise_phone("098765 43210", "IN").e164 == "+919876543210"


@pytest.mark.parametrize(("raw", "region", "reason"), [
    ("+2782", None, "too short"),
    ("+27 82 123 4567 8901", None, "too long"),
    ("082 123 4567", None, "country_code"),
    ("hello", "ZA", "not"),
    ("+999 1234567", None, ""),
    ("+1 555 0100 123", None, ""),
])
def test_invalid_numbers_are_refused_with_a_reason(raw, region, reason):
    with pytest.raises(InvalidPhone) as refused:
        normalise_phone(raw, region)
    assert reason in str(refused.value)


@pytest.mark.parametrize(("raw", "region"), [
    ("+27 82 123 45O8", None),  # O typed for 0: libphonenumber drops it, +2782123458 is valid
    ("082 l23 4599", "ZA"),  # l typed for 1
    ("+27 82 765 OOO2", None),  # three letters: read as keypad digits
    ("+1-800-FLOWERS", None),  # a vanity number
])
def test_a_number_with_letters_is_refused_not_stored_as_another_number(raw, region):
    # Given a number with letters in it, When it is normalised, Then it is refused, naming them
    with pytest.raises(InvalidPhone, match="has letters"):
        normalise_phone(raw, region)


@pytest.mark.parametrize("raw", ["tel:+27-82-123-4567", "TEL:+27821234567",
                                 "tel:+27821234567;phone-context=example.com",
                                 "+27\u00a082\u00a0123\u00a04567", "+\uff12\uff17821234567"])
def test_tel_uris_and_other_digits_are_still_numbers(raw):
    assert normalise_phone(raw).e164 == "+27821234567"
