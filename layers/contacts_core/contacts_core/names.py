"""Display-name folding for the ``name-index`` GSI (case- and accent-insensitive prefix search)."""

from __future__ import annotations

import unicodedata


def fold(text: str) -> str:
    """Lower-case, strip accents (NFKD, drop combining marks) and collapse whitespace.

    ``"  Zoë  ÅSE "`` → ``"zoe ase"``. Used for both stored keys and search prefixes so
    that ``search=zoe`` finds ``Zoë``.
    """
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(stripped.casefold().split())


def name_key(name: str | None, contact_id: str) -> str:
    """Sort key of the ``name-index``: folded name, ``#``, contact id (unique, never empty)."""
    return f"{fold(name or '')}#{contact_id}"


def display_name(first_name: str | None, last_name: str | None) -> str | None:
    """The default display name: ``"first last"`` without blanks, or None when both are empty."""
    joined = " ".join(part.strip() for part in (first_name, last_name) if part and part.strip())
    return joined or None
