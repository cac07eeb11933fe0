"""Pydantic models of audiences and memberships: requests, stored item, API output."""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import AfterValidator, ConfigDict, Field, StrictStr, model_validator

from contacts_core.base_model import Model, PlainText, without_null
from contacts_core.contacts.models import FieldRuleError
from contacts_core.names import audience_name_key
from contacts_core.text import blank_is_null

MAX_MEMBERS_PER_REQUEST = 1000  # SPEC §7
# The name guard's sort key is "name#" + the name's key: at most 1,024 bytes on DynamoDB.
MAX_FOLDED_AUDIENCE_NAME_BYTES = 1000


def _keyable(name: str) -> str:
    """``name`` unchanged when its :func:`~contacts_core.names.audience_name_key` has
    something visible and fits a DynamoDB sort key.

    Raises:
        ValueError: nothing visible (only format characters, marks or variation
            selectors: it would look blank), or a key over
            :data:`MAX_FOLDED_AUDIENCE_NAME_BYTES` bytes of UTF-8.
    """
    key = audience_name_key(name)
    if not key:
        raise ValueError("must have a visible character")
    if len(key.encode(errors="surrogatepass")) > MAX_FOLDED_AUDIENCE_NAME_BYTES:
        raise ValueError(f"too long to key by: over {MAX_FOLDED_AUDIENCE_NAME_BYTES} bytes "
                         "of UTF-8 once case and accents are folded")
    return name


AudienceName = Annotated[
    StrictStr, Field(min_length=1, max_length=128), AfterValidator(_keyable), PlainText()]
Description = Annotated[StrictStr, Field(max_length=1024), AfterValidator(blank_is_null),
                        PlainText()]
# Any string is taken as an id: one that is not a contact id (``con_`` + ULID) is listed
# in ``not_found``, like an unknown one, as batch get and bulk delete do, and never reaches
# DynamoDB (contacts_core.ids.is_resource_id).
ContactIds = Annotated[list[StrictStr], Field(min_length=1, max_length=MAX_MEMBERS_PER_REQUEST)]

_STRICT = ConfigDict(extra="forbid", str_strip_whitespace=True)
# Ids are taken exactly as sent, as on every other route: " con_…" is not a contact id.
_IDS = ConfigDict(extra="forbid")


class AudienceCreate(Model):
    """Body of ``POST /v1/audiences``; ``name`` is unique per org (case- and accent-insensitive)."""

    model_config = _STRICT

    name: AudienceName
    description: Description | None = None


class AudiencePatch(Model):
    """Body of ``PATCH /v1/audiences/{id}``: rename and/or describe (``null`` clears it);
    ``{}`` is a 400 ("No valid fields to update"), as the document's ``minProperties``
    says."""

    model_config = ConfigDict(**_STRICT, json_schema_extra={"minProperties": 1})

    name: AudienceName | None = Field(None, json_schema_extra=without_null)
    description: Description | None = None

    @model_validator(mode="after")
    def _name_not_null(self) -> Self:
        if "name" in self.model_fields_set and self.name is None:
            raise FieldRuleError("name", "cannot be null")
        return self


class MembersRequest(Model):
    """Body of ``POST /v1/audiences/{id}/contacts`` and ``…/contacts/remove`` (≤ 1000 ids,
    taken exactly as sent: one with spaces around it is not a contact id)."""

    model_config = _IDS

    contact_ids: ContactIds


class AddToAudienceRequest(MembersRequest):
    """Body of the seed route ``POST /v1/contacts/add-to-audience``."""

    audience_id: StrictStr  # not an audience id → 404, as on the by-id routes


class AudienceItem(Model):
    """An audience as stored (Audiences table, PK ``org_id``, SK ``audience_id``).

    ``contact_count`` is changed only in the transactions that add or remove memberships
    (I5). ``deleting`` is set while a delete removes the memberships.
    """

    model_config = ConfigDict(extra="ignore")

    org_id: str
    audience_id: str
    name: str
    description: str | None = None
    contact_count: int = 0
    created_at: str
    updated_at: str
    deleting: bool = False


class Audience(Model):
    """An audience as the API returns it."""

    id: str
    name: str
    description: str | None
    contact_count: int
    created_at: str
    updated_at: str

    @classmethod
    def from_item(cls, item: AudienceItem) -> Audience:
        """Render a stored audience."""
        return cls(id=item.audience_id, name=item.name, description=item.description,
                   contact_count=item.contact_count, created_at=item.created_at,
                   updated_at=item.updated_at)


class AudiencePage(Model):
    """One page of audiences, oldest first; ``next_cursor`` is ``null`` on the last page."""

    data: list[Audience]
    next_cursor: str | None


class MembersAdded(Model):
    """Outcome of adding contacts: counts, the ids that are not contacts of the org, and
    the audience's ``contact_count`` afterwards."""

    added: int
    already_members: int
    not_found: list[str]
    contact_count: int


class MembersRemoved(Model):
    """Outcome of removing contacts from an audience."""

    removed: int
    not_members: int
    not_found: list[str]
    contact_count: int
