"""Resource ids (prefix + ULID) and API timestamps (ISO 8601 UTC, milliseconds, ``Z``)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

CONTACT_PREFIX = "con_"
AUDIENCE_PREFIX = "aud_"
# A ULID as python-ulid writes it: 26 characters of Crockford's base32 (upper case, no
# I, L, O or U), the first at most 7 because a ULID is 128 bits (ulid/spec, "Encoding").
_ULID = re.compile(r"[0-7][0-9A-HJKMNP-TV-Z]{25}")
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # base32 digits of a ULID


def is_resource_id(value: object, prefix: str) -> bool:
    """True when ``value`` is ``prefix`` followed by a ULID, the only shape of id we issue
    (``con_01JD8Q2M6W3YQ0V4C7N5T9KX2B``).

    Callers answer anything else exactly like an unknown id (404 or ``not_found``) without
    asking DynamoDB, so ids of any length or bytes never reach a key (a key is at most
    1,024 bytes of UTF-8 there, and unpaired surrogates cannot be encoded at all).
    """
    return (isinstance(value, str) and len(value) == len(prefix) + 26
            and value.startswith(prefix) and _ULID.fullmatch(value, len(prefix)) is not None)


def id_millis(resource_id: str, prefix: str) -> int:
    """The creation time of an id we issued (see :func:`is_resource_id`), in epoch
    milliseconds: a ULID's first 10 characters are its 48-bit time (ulid/spec)."""
    value = 0
    for char in resource_id[len(prefix):len(prefix) + 10]:
        value = value * 32 + CROCKFORD.index(char)
    return value


def id_bound(prefix: str, ms: int, *, last: bool) -> str:
    """The first (or, with ``last``, the last) id ``prefix`` + ULID of millisecond ``ms``
    (clamped to a ULID's 48 bits): ids of one creation range are one key range."""
    ms = min(max(ms, 0), 2**48 - 1)
    value = (ms << 80) | ((1 << 80) - 1 if last else 0)
    return prefix + "".join(CROCKFORD[(value >> (5 * i)) & 31] for i in range(25, -1, -1))


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
