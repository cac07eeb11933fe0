"""The query of a paged listing (SPEC §4 pagination), shared by every list but contacts'."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator, ConfigDict, Field

from contacts_core.base_model import Model

MAX_CURSOR_LENGTH = 4096
"""Longest ``cursor`` a listing takes: a cursor holds the org, the SHA-256 of the query and
a resume key whose largest part, a ``name-index`` sort key, is ≤ 1,024 bytes (DynamoDB's
sort key limit), so every cursor issued fits with room to spare (:mod:`.cursor`)."""


_DIGITS = re.compile(r"[0-9]+")


def _whole_number(value: Any) -> Any:
    """A query string's ``limit`` as plain decimal digits only: pydantic's lax integers
    would also read ``+5``, `` 5``, ``1_0`` and ``5.0``."""
    if isinstance(value, str) and not _DIGITS.fullmatch(value):
        raise ValueError("expected a whole number from 1 to 100 (digits only)")
    return value


PageLimit = Annotated[int, Field(ge=1, le=100), BeforeValidator(_whole_number)]
"""``limit`` of every listing (SPEC §4): 1–100, written as decimal digits."""

Cursor = Annotated[str, Field(min_length=1, max_length=MAX_CURSOR_LENGTH)]
"""``cursor`` of every listing: a ``next_cursor`` as issued. Empty (``cursor=``) is a 400,
not the first page: a client whose own cursor variable went blank would otherwise start
over silently and walk the same pages again (leave the parameter out for the first page)."""


class PageQuery(Model):
    """``limit`` (1–100, default 20) and ``cursor`` of a paged listing (audiences, their
    members, a contact's audiences, import jobs)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    limit: PageLimit = 20
    cursor: Cursor | None = None
