"""Rules for the free text any aggregate stores (contact names, tags and attribute keys,
audience names and descriptions, webhook endpoint descriptions)."""

from __future__ import annotations

import unicodedata
from typing import Any

NO_CONTROL_CHARACTERS_PATTERN = "^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f]*$"
""":func:`no_control_characters` as a JSON Schema ``pattern`` (ECMA-262), for the document."""


def no_control_characters(value: Any) -> Any:
    """``value`` unchanged, or ValueError when it is a string holding a C0 control character
    other than tab, line feed and carriage return, or DEL (U+0000–U+0008, U+000B, U+000C,
    U+000E–U+001F, U+007F): they cannot be typed, break terminals and spreadsheets, and
    hide one value behind another. Line breaks stay (a CSV cell may hold them). Checked on
    the text as sent, before surrounding whitespace is trimmed (Python counts U+000B,
    U+000C and U+001C–U+001F as whitespace), so the rule is the document's ``pattern``
    exactly. Anything but a string is left to the type check."""
    if isinstance(value, str) and any(
            (ord(char) < 0x20 and char not in "\t\n\r") or char == "\x7f" for char in value):
        raise ValueError("must not contain control characters other than tab and line breaks")
    return value


def composed(value: Any) -> Any:
    """A string in Unicode normalisation form NFC (UAX #15), anything else unchanged: text
    that is matched or deduplicated as a label (tags, attribute keys) is one value however
    the client's keyboard or platform encoded it — ``café`` typed composed (U+00E9) or
    decomposed (``e`` + U+0301) is one tag. Identifiers the client owns
    (``external_id``) are kept exactly as sent instead."""
    return unicodedata.normalize("NFC", value) if isinstance(value, str) else value


def blank_is_null(value: str | None) -> str | None:
    """An empty (or, once trimmed, blank) optional text is ``null``, as Stripe reads an
    empty string: left out on a create, cleared on an update — never stored as ``""``."""
    return value or None


def shortened(text: str, limit: int) -> str:
    """``text`` as an error message shows it: whole up to ``limit`` characters, else its
    first ``limit`` and "…" (a member name or message of a request may be megabytes)."""
    return text if len(text) <= limit else text[:limit] + "…"
