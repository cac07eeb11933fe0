"""Phone number normalisation to E.164 with Google's libphonenumber data (phonenumbers).

``phonenumbers`` is imported on the first number parsed, not with this module: functions
that never parse a number (reads, lists without a phone search) do not load it (issue 11).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache


@cache
def _reasons() -> dict[int, str]:
    """Why a number is not valid, by libphonenumber's ``ValidationResult``."""
    from phonenumbers import ValidationResult

    return {
        ValidationResult.INVALID_COUNTRY_CODE: "unknown country calling code",
        ValidationResult.TOO_SHORT: "too short",
        ValidationResult.TOO_LONG: "too long",
        ValidationResult.INVALID_LENGTH: "invalid length for the region",
        ValidationResult.IS_POSSIBLE_LOCAL_ONLY: "a local-only number; add the area code",
    }


class InvalidPhone(ValueError):
    """The input is not a valid phone number; ``str(err)`` is a human-readable reason."""


def _letters(raw: str) -> str:
    """The letters of a number as sent, leaving out a ``tel:`` URI's scheme and parameters
    (RFC 3966: ``tel:+27-82-123-4567;phone-context=…``)."""
    text = raw.strip()
    if text[:4].lower() == "tel:":
        text = text[4:].split(";", 1)[0]
    return "".join(ch for ch in text if ch.isalpha())


@dataclass(frozen=True)
class NormalisedPhone:
    """A valid number: ``e164`` like ``"+27821234567"`` and its ISO 3166-1 alpha-2
    ``region`` (``"ZA"``; None for a non-geographic number such as ``+800`` freephone)."""

    e164: str
    region: str | None


def normalise_phone(raw: str, country_code: str | None = None) -> NormalisedPhone:
    """Parse ``raw`` (E.164, international or national format) into E.164.

    ``country_code`` is the ISO 3166-1 alpha-2 region used to read national formats
    (``"082 123 4567"`` + ``"ZA"`` → ``+27821234567``); it is ignored for input that starts
    with ``+``. Validity is libphonenumber's ``is_valid_number``.

    Raises:
        InvalidPhone: unparseable, impossible, not valid for its region, with an
            extension (``ext. 12``, ``x12``), or with letters; the message says why.
    """
    import phonenumbers
    from phonenumbers import NumberParseException

    region = country_code.upper() if country_code else None
    try:
        number = phonenumbers.parse(raw, region)
    except NumberParseException as err:
        if err.error_type == NumberParseException.INVALID_COUNTRY_CODE and not region:
            raise InvalidPhone(
                "not in E.164; give a leading + and country code, or a country_code"
            ) from err
        raise InvalidPhone(str(err.args[0] if err.args else err).rstrip(".").lower()) from err
    if number.extension:
        # E.164 has no extension, and no message reaches one: dropping it would store
        # another number than the one sent, and make "ext. 2" and "ext. 3" one contact
        raise InvalidPhone(f"has an extension ({number.extension}), which E.164 numbers "
                           "cannot hold: send the number without it")
    if letters := _letters(raw):
        # libphonenumber drops a stray letter and reads three or more as keypad digits:
        # "+27 82 123 45O8" (O for 0) would be stored as +2782123458, another number
        raise InvalidPhone(f"has letters ({letters[:8]}): send the number in digits "
                           "(letters are neither dropped nor read as keypad digits)")
    if not phonenumbers.is_valid_number(number):
        reason = phonenumbers.is_possible_number_with_reason(number)
        why = _reasons().get(reason, "not a valid number for its region")
        raise InvalidPhone(f"not a valid phone number ({why})")
    region = phonenumbers.region_code_for_number(number)
    return NormalisedPhone(
        e164=phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164),
        # libphonenumber names non-geographic numbers (+800 freephone, +882 networks)
        # "001" and unknown ones "ZZ": neither is an ISO 3166-1 alpha-2 country
        region=region if region and region.isalpha() and region != "ZZ" else None,
    )


def is_region(country_code: str) -> bool:
    """True when libphonenumber reads national numbers of ``country_code`` (ISO 3166-1
    alpha-2, any case): ``ZA``, ``gb``; not ``ZZ`` or ``UK``."""
    import phonenumbers

    return country_code.upper() in phonenumbers.SUPPORTED_REGIONS


def looks_like_phone(text: str) -> bool:
    """True when ``text`` is made of phone characters and holds at least five digits."""
    digits = sum(ch.isdigit() for ch in text)
    return digits >= 5 and all(ch.isdigit() or ch in "+-(). " for ch in text.strip())
