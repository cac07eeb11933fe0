"""Contacts' stored DynamoDB item and API output models, and the contact limits and field
rules every writer shares. The request bodies are in :mod:`contacts_core.contacts.requests`,
so a function that only reads contacts builds none of them (issue 11, cold start).

Limits come from SPEC §5/§7: tags ≤ 50 of 1–64 characters, attributes ≤ 50 keys with
values ≤ 1 KB (UTF-8), one contact ≤ 16 KB as sent. Attribute numbers must fit a DynamoDB
number (see :func:`number_problem`).
"""

from __future__ import annotations

import json
import math
from typing import Any, Literal

from pydantic import (
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
)

from contacts_core.base_model import Model
from contacts_core.contacts.output import ConsentStatus, contact_object, default_consent
from contacts_core.limits import MAX_INTEGER, MAX_MAGNITUDE, MIN_MAGNITUDE
from contacts_core.names import display_name

MAX_TAGS = 50
MAX_TAG_LENGTH = 64
MAX_ATTRIBUTES = 50
MAX_ATTRIBUTE_VALUE_BYTES = 1024
MAX_ATTRIBUTE_KEY_LENGTH = 100
# A name is searched by its folded form, a DynamoDB index sort key of at most 1,024 bytes
# (folded name, "#", contact id). NFKD can grow a character into many ("ﷺ" folds to 18),
# so first_name's and last_name's folded forms are held to 480 bytes each, and ``name`` to
# what their default "first last" can be: 961 bytes, + "#con_…" fits.
MAX_FOLDED_NAME_BYTES = 480
MAX_FOLDED_DISPLAY_NAME_BYTES = 2 * MAX_FOLDED_NAME_BYTES + 1
MAX_CONTACT_BYTES = 16 * 1024  # SPEC §7: one contact is at most 16 KB

AttributeValue = StrictBool | StrictInt | StrictFloat | StrictStr
# The identifiers a contact is found and kept unique by (each has a guard item, I1/I2).
IDENTITY_FIELDS = ("phone", "email", "external_id")
MAX_EXTERNAL_ID_LENGTH = 255  # SPEC §9.2


def number_problem(value: int | float) -> str | None:
    """Why ``value`` cannot be stored as a DynamoDB number, or None when it can.

    ``NaN``/``Infinity`` (which Python's JSON parser accepts) and ``1e400`` (parsed as
    infinity, as :mod:`contacts_core.http` also reads integers over 4,300 digits) are not
    finite; integers have at most 38 digits; other numbers are zero or of magnitude
    1E-130 ≤ |x| < 1E+38 (so ``1e50`` is refused as its 51 digits are:
    :mod:`contacts_core.limits`).
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        if abs(value) > MAX_INTEGER:
            return "integer out of range: at most 38 digits"
        return None
    if math.isnan(value):
        return "must be a finite number (NaN is not a JSON number)"
    if math.isinf(value):
        return "must be a finite number (Infinity, or a number beyond ±1.8E+308)"
    if value != 0 and not MIN_MAGNITUDE <= abs(value) < MAX_MAGNITUDE:
        return "number out of range: zero, or a magnitude from 1E-130 to below 1E+38 " \
            "(whole numbers have at most 38 digits)"
    return None


class FieldRuleError(ValueError):
    """A rule about one field, raised from a model-level validator so the error names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def normalise_email(value: str) -> str:
    """``value`` as stored and matched: syntax-checked (email-validator, no DNS) and lower
    case.

    Raises:
        ValueError: not a valid address; the message says why.
    """
    # Imported on the first address checked: its syntax tables cost every function that
    # imports the models, most of which never see an email address (issue 11).
    from email_validator import EmailNotValidError, validate_email

    try:
        checked = validate_email(value, check_deliverability=False)
    except EmailNotValidError as err:
        raise ValueError(str(err)) from err
    return checked.normalized.lower()


class ContactItem(Model):
    """A contact as stored in the Contacts table (PK ``org_id``, SK ``contact_id``).

    ``name_key`` is the sort key of ``name-index`` (see :func:`contacts_core.names.name_key`),
    ``updated_at`` that of ``updated-index``; unset optional fields are absent, never
    empty. ``version`` starts at 1 and grows by one per write.
    """

    model_config = ConfigDict(extra="ignore")

    org_id: str
    contact_id: str
    version: int
    created_at: str
    updated_at: str
    name_key: str
    first_name: str | None = None
    last_name: str | None = None
    name: str | None = None
    phone: str | None = None
    email: str | None = None
    external_id: str | None = None
    country_code: str | None = None
    language: str | None = None
    tags: list[str] = Field(default_factory=list)
    attributes: dict[str, Any] = Field(default_factory=dict)
    consent: dict[str, ConsentStatus] = Field(default_factory=lambda: default_consent())
    suppressed: bool = False
    source: str = "api"
    # Bookkeeping, never in the API: audiences this contact belongs to, and a counter bumped
    # by every membership change so a delete can be conditioned on them (I5).
    audience_ids: set[str] = Field(default_factory=set)
    membership_rev: int = 0
    # At least the contact's content_size(): exact after a write that read the contact,
    # grown by a bound after one that did not (ContactChanges.growth_bound); None on items
    # written before it was kept. A write that cannot prove room by it reads the contact.
    content_bytes: int | None = None

    def identities(self) -> dict[str, str]:
        """The identity values this contact holds, e.g. ``{"phone": e164, "email": address,
        "external_id": "crm-42"}`` (fields it does not hold are left out)."""
        return {f: v for f in IDENTITY_FIELDS if (v := getattr(self, f))}


def content_size(item: ContactItem) -> int:
    """UTF-8 bytes of ``item`` as a client would send it to create it again: compact JSON
    of the fields it holds — identifiers, name parts, ``name`` unless it is their default,
    ``language``, ``tags``, ``attributes``, each ``consent`` that is not ``unknown``,
    ``suppressed`` when true and ``source`` unless ``"api"``. SPEC §7 holds it to
    :data:`MAX_CONTACT_BYTES`, like a contact as sent, so a contact cannot grow past the
    limit one PATCH at a time."""
    fields: dict[str, Any] = {f: v for f in ("first_name", "last_name", "phone", "email",
                                              "external_id", "language")
                              if (v := getattr(item, f)) is not None}
    if item.name is not None and item.name != display_name(item.first_name, item.last_name):
        fields["name"] = item.name
    consent = {c: s for c, s in item.consent.items() if s != "unknown"}
    fields |= {k: v for k, v in (("tags", item.tags), ("attributes", item.attributes),
                                 ("consent", consent)) if v}
    if item.suppressed:
        fields["suppressed"] = True
    if item.source != "api":
        fields["source"] = item.source
    return json_size(fields)


def json_size(value: Any) -> int:
    """UTF-8 bytes of ``value`` as compact JSON (how one contact as sent is measured)."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode(
        errors="surrogatepass"))


class Channels(Model):
    """Deliverability flags derived server-side from the identifiers on the record."""

    has_whatsapp: bool
    has_sms: bool
    has_voice: bool
    has_email: bool


class Consent(Model):
    """Consent per channel: ``opted_in``, ``opted_out`` or ``unknown``."""

    whatsapp: ConsentStatus = "unknown"
    sms: ConsentStatus = "unknown"
    email: ConsentStatus = "unknown"
    voice: ConsentStatus = "unknown"


class Contact(Model):
    """A contact as the API returns it (SPEC §5 Contact object)."""

    id: str
    first_name: str | None
    last_name: str | None
    name: str | None
    phone: str | None
    email: str | None
    external_id: str | None
    country_code: str | None
    language: str | None
    tags: list[str]
    attributes: dict[str, AttributeValue]
    channels: Channels
    consent: Consent
    suppressed: bool
    source: str
    version: int
    created_at: str
    updated_at: str

    @classmethod
    def from_item(cls, item: ContactItem) -> Contact:
        """Render a stored item (:func:`contacts_core.contacts.output.contact_object`, the
        rule webhook events use too)."""
        return cls.model_validate(contact_object(vars(item)))


class UpsertResult(Model):
    """Answer of upsert: what happened, what matched, and the contact as it now is."""

    result: Literal["created", "updated", "unchanged"]
    matched_on: Literal["external_id", "phone", "email", "phone_and_email"] | None
    contact: Contact


class ContactPage(Model):
    """One page of a list: pass ``next_cursor`` back as ``cursor``; ``null`` on the last page."""

    data: list[Contact]
    next_cursor: str | None


class ProblemFieldError(Model):
    """One invalid field of a validation problem."""

    field: str
    message: str


class Problem(Model):
    """RFC 9457 problem details (``application/problem+json``) with our extension members."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    code: str
    request_id: str | None = None
    errors: list[ProblemFieldError] | None = None
