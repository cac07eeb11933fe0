"""The query of a paged listing (SPEC §4 pagination), shared by every list but contacts'."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from contacts_core.base_model import Model


class PageQuery(Model):
    """``limit`` (1–100, default 20) and ``cursor`` of a paged listing (audiences, their
    members, a contact's audiences, import jobs)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    limit: int = Field(20, ge=1, le=100)
    cursor: str | None = Field(None, max_length=2048)
