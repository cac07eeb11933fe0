"""Name folding and words: the `name-index` sort key and word-prefix search (SPEC §9.3)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable


def fold(text: str) -> str:
    """Lower-case, strip accents (NFKD, drop combining marks) and collapse whitespace.

    ``"  Zoë  ÅSE "`` → ``"zoe ase"``. Used for both stored keys and search prefixes so
    that ``search=zoe`` finds ``Zoë``.
    """
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(stripped.casefold().split())


# Latin letters NFKD keeps whole (a stroke, a ligature or a dotless i is part of the letter,
# not a combining mark), folded as their base letters, after case folding.
_LETTERS = str.maketrans({"ø": "o", "ł": "l", "đ": "d", "ð": "d", "ħ": "h", "ŧ": "t",
                          "ı": "i", "ŀ": "l", "ƀ": "b", "ƶ": "z", "ɨ": "i", "ʉ": "u",
                          "æ": "ae", "œ": "oe", "þ": "th"})


def search_fold(text: str) -> str:
    """:func:`fold` without invisible format characters, then the Latin letters NFKD does
    not take apart as their base letters: ``ø``→``o``, ``ł``→``l``, ``đ``/``ð``→``d``,
    ``ı``→``i``, ``æ``→``ae``, ``œ``→``oe``, ``þ``→``th`` (and ``ħ ŧ ŀ ƀ ƶ ɨ ʉ``).
    ``"Søren Łukasz"`` → ``"soren lukasz"``, so that ``search=soren`` finds "Søren" as
    ``search=zoe`` finds "Zoë" (SPEC §9.3: accent-insensitive).

    Format characters (Unicode category ``Cf``: zero-width space and joiners, soft hyphen,
    bidirectional marks, byte order mark) are dropped first: they show nothing, so a name
    pasted with one (``"Ah\u200bmed"``) is the word a user types ("ahmed"), not two words.

    The fold of a contact's names: its search words and its ``name-index`` key (audience
    names are keyed by :func:`audience_name_key`). Versions before this one indexed names
    with :func:`fold`; ``contacts-reindex-names`` re-indexes them.
    """
    return fold(_without_format(text)).translate(_LETTERS)


def _without_format(text: str) -> str:
    """``text`` without Unicode format characters (category ``Cf``)."""
    return "".join(ch for ch in text if unicodedata.category(ch) != "Cf")


def visible(text: str) -> str:
    """``text`` without invisible format characters (Unicode category ``Cf``: zero-width
    space, joiners, soft hyphen, bidirectional marks, byte order mark, word joiner,
    language tags) and variation selectors (U+FE00–FE0F, U+E0100–E01EF), which show
    nothing by themselves."""
    return "".join(ch for ch in _without_format(text)
                   if not ("\ufe00" <= ch <= "\ufe0f" or "\U000e0100" <= ch <= "\U000e01ef"))


def audience_name_key(name: str) -> str:
    """The key that makes audience names unique per org: :func:`fold` (case, accents,
    compatibility forms, whitespace) of the name's :func:`visible` characters, so names
    that look the same are one name (``"News\u200bletter"`` is ``"Newsletter"``, and a
    name copied from a file with a byte order mark is the name without it). Empty for a
    name of nothing visible, which the request models refuse.

    A name made only of spacing accents (``"´"``, ``"¸"``: they fold to a space, as their
    compatibility forms are a space and a combining mark) is visible all the same: it is
    keyed by its own characters (NFC, without combining marks, case-folded, trimmed)
    instead of nothing; a combining mark alone stays nothing visible. Such names were
    refused before, so no guard has that key yet.

    Versions before this one keyed the guards by :func:`fold` alone; the audience store
    checks and releases that earlier key too (README "Upgrading").
    """
    shown = visible(name)
    return fold(shown) or "".join(
        char for char in unicodedata.normalize("NFC", shown)
        if not unicodedata.category(char).startswith("M")).casefold().strip()


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


NAME_KEY_SEPARATOR = "\x1f"  # below " ": a name sorts before the longer ones it begins
NO_NAME = "\U0010ffff"  # the last code point: contacts without a name sort after every name


def name_key(name: str | None, contact_id: str) -> str:
    """Sort key of the ``name-index``: folded name, a separator, contact id (unique).

    The folded name loses its control characters, so the separator (U+001F) is below every
    character left and ``"ahmed"`` sorts before ``"ahmed van der berg"`` (DynamoDB orders
    sort keys by their UTF-8 bytes). A contact without a name gets :data:`NO_NAME`, above
    every name: nameless contacts come last in ascending order and first in descending,
    as SQL's default ``NULLS LAST``/``NULLS FIRST`` put them. Ties order by contact id.
    """
    folded = "".join(ch for ch in search_fold(name or "") if ch >= " ")
    return f"{folded or NO_NAME}{NAME_KEY_SEPARATOR}{contact_id}"


def display_name(first_name: str | None, last_name: str | None) -> str | None:
    """The default display name: ``"first last"`` without blanks, or None when both are empty."""
    joined = " ".join(part.strip() for part in (first_name, last_name) if part and part.strip())
    return joined or None


MAX_NAME_WORDS = 10  # name words indexed per contact (each one item in NameWords)
MAX_WORD_LENGTH = 64  # characters of a word that are indexed (and of a search prefix)
_WORD = re.compile(r"\w+")


def words(text: str, folding: Callable[[str], str] | None = None) -> list[str]:
    """The words of ``text`` folded by ``folding`` (default :func:`search_fold`) in order,
    duplicates dropped, each cut to 64 characters.

    Words are runs of Unicode letters and digits (``\\w``), so punctuation separates them:
    ``"Jean-Luc O'Brien"`` → ``["jean", "luc", "o", "brien"]``.
    """
    folded = (folding or search_fold)(text)
    return list(dict.fromkeys(w[:MAX_WORD_LENGTH] for w in _WORD.findall(folded)))


def name_words(first_name: str | None, last_name: str | None, name: str | None,
               folding: Callable[[str], str] | None = None) -> list[str]:
    """The words a contact is found by (SPEC §9.3): those of ``first_name``, ``last_name``
    and ``name`` in that order, duplicates dropped, at most :data:`MAX_NAME_WORDS` (words
    past the tenth are not searchable). ``folding`` as in :func:`words`; :func:`fold`
    gives the words earlier versions indexed."""
    joined = " ".join(p for p in (first_name, last_name, name) if p)
    return words(joined, folding)[:MAX_NAME_WORDS]


def matches_words(prefixes: list[str], held: list[str]) -> bool:
    """True when every search prefix starts some word in ``held`` (SPEC §9.3 AND rule)."""
    return all(any(w.startswith(p) for w in held) for p in prefixes)


def follows_parts(name: str | None, first_name: str | None, last_name: str | None) -> bool:
    """True when ``name`` is the default built from ``first_name``/``last_name`` (or
    absent), so it follows them when they change (SPEC §9.3). A name the client set to
    something else stays as set."""
    return name is None or name == display_name(first_name, last_name)
