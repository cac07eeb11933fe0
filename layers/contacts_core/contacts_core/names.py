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


def check_foldable(value: str, limit: int) -> str:
    """``value`` unchanged, when its folded form (the part of an index key it becomes) is
    at most ``limit`` bytes of UTF-8 — DynamoDB index keys hold at most 1,024 bytes, and
    NFKD can grow one character into many (``"ﷺ"`` folds to 18).

    Raises:
        ValueError: over the limit (pydantic reports it on the field).
    """
    if len(fold(value).encode(errors="surrogatepass")) > limit:
        raise ValueError(f"too long to search by: over {limit} bytes of UTF-8 once case and "
                         "accents are folded")
    return value


def name_key(name: str | None, contact_id: str) -> str:
    """Sort key of the ``name-index``: folded name, ``#``, contact id (unique, never empty)."""
    return f"{fold(name or '')}#{contact_id}"


def display_name(first_name: str | None, last_name: str | None) -> str | None:
    """The default display name: ``"first last"`` without blanks, or None when both are empty."""
    joined = " ".join(part.strip() for part in (first_name, last_name) if part and part.strip())
    return joined or None
