"""Resource ids (prefix + ULID) and API timestamps (ISO 8601 UTC, milliseconds, ``Z``)."""

from __future__ import annotations

from datetime import UTC, datetime

from ulid import ULID

CONTACT_PREFIX = "con_"


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
    ulid = ULID()
    return f"{CONTACT_PREFIX}{ulid}", iso_timestamp(ulid.datetime)
