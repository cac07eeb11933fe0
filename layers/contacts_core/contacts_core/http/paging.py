"""The query of a paged listing (SPEC §4 pagination), shared by every list but contacts'."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from contacts_core.base_model import Model

MAX_CURSOR_LENGTH = 4096
"""Longest ``cursor`` a listing takes: a cursor holds the org, the SHA-256 of the query and
a resume key whose largest part, a ``name-index`` sort key, is ≤ 1,024 bytes (DynamoDB's
sort key limit), so every cursor issued fits with room to spare (:mod:`.cursor`)."""


class PageQuery(Model):
    """``limit`` (1–100, default 20) and ``cursor`` of a paged listing (audiences, their
    members, a contact's audiences, import jobs)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    limit: int = Field(20, ge=1, le=100)
    cursor: str | None = Field(None, max_length=MAX_CURSOR_LENGTH)
