"""Resource ids (prefix + ULID) and API timestamps (ISO 8601 UTC, milliseconds, ``Z``)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

CONTACT_PREFIX = "con_"
# A ULID as python-ulid writes it: 26 characters of Crockford's base32 (upper case, no
# I, L, O or U), the first at most 7 because a ULID is 128 bits (ulid/spec, "Encoding").
_ULID = re.compile(r"[0-7][0-9A-HJKMNP-TV-Z]{25}")


def is_resource_id(value: object, prefix: str) -> bool:
    """True when ``value`` is ``prefix`` followed by a ULID, the only shape of id we issue
    (``con_01JD8Q2M6W3YQ0V4C7N5T9KX2B``).

    Callers answer anything else exactly like an unknown id (404 or ``not_found``) without
    asking DynamoDB, so ids of any length or bytes never reach a key (a key is at most
    1,024 bytes of UTF-8 there, and unpaired surrogates cannot be encoded at all).
    """
    return (isinstance(value, str) and len(value) == len(prefix) + 26
            and value.startswith(prefix) and _ULID.fullmatch(value, len(prefix)) is not None)


def iso_timestamp(moment: datetime) -> str:
    """Format ``moment`` as ``2026-05-22T10:30:00.000Z`` (UTC, millisecond precision)."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def now() -> str:
    """The current time as an API timestamp."""
    return iso_timestamp(datetime.now(UTC))


def new_contact_id() -> tuple[str, str]:
    """A fresh ``con_<ULID>`` and its creation timestamp, taken from the ULID itself.

    Because the ULID's first 48 bits are its millisecond timestamp, sorting contacts by id
    is sorting them by ``created_at``; the list operation relies on that.
    """
    # Imported here: python-ulid reads its version from the installed distributions when
    # imported, which only the functions that create contacts need to pay for (issue 11).
    from ulid import ULID

    ulid = ULID()
    return f"{CONTACT_PREFIX}{ulid}", iso_timestamp(ulid.datetime)
