"""Pydantic models by role: request bodies, the stored DynamoDB item, and API output.

Limits come from SPEC §5/§7: tags ≤ 50 of 1–64 characters, attributes ≤ 50 keys with
values ≤ 1 KB (UTF-8), one contact ≤ 16 KB as sent. Attribute numbers must fit a DynamoDB
number (see :func:`number_problem`).

The request models' JSON Schema (and so ``openapi.json``) describes what they accept:
create/upsert require ``phone``, ``email`` or ``external_id``, PATCH at least one field,
attribute numbers are finite and within DynamoDB's range.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal, Self

from pydantic import (
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from contacts_core.base_model import Model
from contacts_core.contacts.phones import InvalidPhone, normalise_phone
from contacts_core.limits import MAX_INTEGER, MAX_MAGNITUDE, MIN_MAGNITUDE
from contacts_core.names import check_foldable

MAX_TAGS = 50
MAX_TAG_LENGTH = 64
MAX_ATTRIBUTES = 50
MAX_ATTRIBUTE_VALUE_BYTES = 1024
MAX_ATTRIBUTE_KEY_LENGTH = 100
# A name is searched by its folded form, a DynamoDB index sort key of at most 1,024 bytes
# (folded name, "#", contact id). NFKD can grow a character into many ("ﷺ" folds to 18),
# so each name field's folded form is held to 480 bytes: "first last" + "#con_…" fits.
MAX_FOLDED_NAME_BYTES = 480
MAX_CONTACT_BYTES = 16 * 1024  # SPEC §7: one contact is at most 16 KB

ConsentStatus = Literal["opted_in", "opted_out", "unknown"]
CHANNELS = ("whatsapp", "sms", "email", "voice")
AttributeValue = StrictBool | StrictInt | StrictFloat | StrictStr
Tag = Annotated[StrictStr, Field(min_length=1, max_length=MAX_TAG_LENGTH)]
AttributeKey = Annotated[str, Field(min_length=1, max_length=MAX_ATTRIBUTE_KEY_LENGTH)]
# Checked by ContactFields._attributes_bounded (so errors name ``attributes.<key>``); the
# schema says what that check accepts. Numbers are documented a little narrower than
# accepted: an integer-valued float beyond 38 digits (``1e40``) is taken but not described.
ATTRIBUTE_VALUE_SCHEMA: dict[str, Any] = {"anyOf": [
    {"type": "string", "maxLength": MAX_ATTRIBUTE_VALUE_BYTES,
     "description": f"at most {MAX_ATTRIBUTE_VALUE_BYTES} bytes of UTF-8"},
    {"type": "boolean"},
    {"type": "integer", "minimum": -MAX_INTEGER, "maximum": MAX_INTEGER},
    {"type": "number", "not": {"type": "integer"}, "anyOf": [
        {"minimum": MIN_MAGNITUDE, "exclusiveMaximum": MAX_MAGNITUDE},
        {"exclusiveMinimum": -MAX_MAGNITUDE, "maximum": -MIN_MAGNITUDE}]},
    {"type": "null", "description": "removes the key (JSON Merge Patch)"},
]}
AttributeInput = Annotated[Any, WithJsonSchema(ATTRIBUTE_VALUE_SCHEMA)]
ShortText = Annotated[StrictStr, Field(max_length=256)]
LanguageTag = Annotated[StrictStr, Field(pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")]  # BCP 47

_STRICT = ConfigDict(extra="forbid", str_strip_whitespace=True)
# The identifiers a contact is found and kept unique by (each has a guard item, I1/I2).
IDENTITY_FIELDS = ("phone", "email", "external_id")
MAX_EXTERNAL_ID_LENGTH = 255  # SPEC §9.2


def number_problem(value: int | float) -> str | None:
    """Why ``value`` cannot be stored as a DynamoDB number, or None when it can.

    ``NaN``/``Infinity`` (which Python's JSON parser accepts) and ``1e400`` (parsed as
    infinity, as :mod:`contacts_core.http` also reads integers over 4,300 digits) are not
    finite; integers have at most 38 digits; other numbers are zero or of magnitude
    1E-130 ≤ |x| < 1E+126.
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
        return "number out of range: zero, or a magnitude from 1E-130 to below 1E+126"
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


def default_consent() -> dict[str, ConsentStatus]:
    """Consent of a new contact: ``unknown`` on every channel."""
    return dict.fromkeys(CHANNELS, "unknown")


def _without_null(schema: dict[str, Any]) -> None:
    """JSON Schema of a field that may be left out but not sent as ``null``: its non-null
    branch, without the ``null`` default pydantic writes for "absent"."""
    branches = [b for b in schema.pop("anyOf", []) if b.get("type") != "null"]
    schema.pop("default", None)
    if len(branches) == 1:
        schema.update(branches[0])


class ConsentPatch(Model):
    """Per-channel consent; channels left out keep their value."""

    model_config = _STRICT

    whatsapp: ConsentStatus | None = None
    sms: ConsentStatus | None = None
    email: ConsentStatus | None = None
    voice: ConsentStatus | None = None


class ContactFields(Model):
    """Writable contact fields shared by create, upsert and update (PATCH) bodies.

    ``phone`` is normalised to E.164 using ``country_code`` as the region hint for
    national formats (``country_code`` is declared first so it is validated first);
    ``email`` is syntax-checked and lower-cased. Unknown fields are rejected.
    """

    model_config = _STRICT

    country_code: Annotated[StrictStr, Field(pattern=r"^[A-Za-z]{2}$")] | None = None
    phone: Annotated[StrictStr, Field(max_length=64)] | None = None
    email: Annotated[StrictStr, Field(max_length=254)] | None = None
    external_id: Annotated[StrictStr, Field(
        min_length=1, max_length=MAX_EXTERNAL_ID_LENGTH, pattern=r"^[^\x00-\x1f\x7f]+$",
        description="The integrator's own id (e.g. a CRM id): 1–255 printable characters, "
                    "case-sensitive, unique per org; surrounding whitespace is trimmed.",
    )] | None = None
    first_name: ShortText | None = None
    last_name: ShortText | None = None
    name: ShortText | None = None
    language: LanguageTag | None = None
    tags: list[Tag] | None = None
    attributes: Annotated[dict[AttributeKey, AttributeInput],
                          Field(max_length=MAX_ATTRIBUTES)] | None = None
    # Absent → None, but never null: a contact always has consent, a suppressed flag and a
    # source (``_not_null``; the schema leaves null out).
    consent: ConsentPatch | None = Field(None, json_schema_extra=_without_null)
    suppressed: StrictBool | None = Field(None, json_schema_extra=_without_null)
    source: Annotated[StrictStr, Field(min_length=1, max_length=64)] | None = Field(
        None, json_schema_extra=_without_null)

    @field_validator("consent", "suppressed", "source", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("cannot be null")
        return value

    @field_validator("phone")
    @classmethod
    def _phone_to_e164(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        try:
            return normalise_phone(value, info.data.get("country_code")).e164
        except InvalidPhone as err:
            raise ValueError(str(err)) from err

    @field_validator("email")
    @classmethod
    def _email_lowercase(cls, value: str | None) -> str | None:
        return None if value is None else normalise_email(value)

    @field_validator("external_id")
    @classmethod
    def _external_id_printable(cls, value: str | None) -> str | None:
        if value is not None and not value.isprintable():
            raise ValueError("must be printable characters (no control or format characters)")
        return value

    @field_validator("first_name", "last_name", "name")
    @classmethod
    def _name_searchable(cls, value: str | None) -> str | None:
        return None if value is None else check_foldable(value, MAX_FOLDED_NAME_BYTES)

    @field_validator("tags")
    @classmethod
    def _tags_unique(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        unique = list(dict.fromkeys(value))
        if len(unique) > MAX_TAGS:
            raise ValueError(f"at most {MAX_TAGS} distinct tags")
        return unique

    @field_validator("attributes")
    @classmethod
    def _attributes_bounded(
        cls, value: dict[str, Any] | None
    ) -> dict[str, Any] | None:
        if value is None:
            return None
        if len(value) > MAX_ATTRIBUTES:
            raise ValueError(f"at most {MAX_ATTRIBUTES} keys")
        for key, item in value.items():
            if item is not None and not isinstance(item, str | int | float | bool):
                raise FieldRuleError(f"attributes.{key}", "must be a string, number or boolean")
            if isinstance(item, str) and len(item.encode(errors="surrogatepass")
                                             ) > MAX_ATTRIBUTE_VALUE_BYTES:
                raise ValueError(f"value of {key!r} is over {MAX_ATTRIBUTE_VALUE_BYTES} bytes")
            if isinstance(item, int | float):
                problem = number_problem(item)
                if problem:
                    raise FieldRuleError(f"attributes.{key}", problem)
        return value

    def given(self) -> set[str]:
        """Names of the fields the client sent (``null`` included), minus the parsing hint."""
        return set(self.model_fields_set) - {"country_code"}


def _require_identity(fields: ContactFields) -> None:
    if all(getattr(fields, name) is None for name in IDENTITY_FIELDS):
        raise FieldRuleError("phone", "at least one of phone, email or external_id is required")


# JSON Schema of "at least one identity": one of them is present and a string.
_IDENTITY_SCHEMA: dict[str, Any] = {"anyOf": [
    {"required": [name], "properties": {name: {"type": "string"}}} for name in IDENTITY_FIELDS]}


class ContactCreate(ContactFields):
    """Body of ``POST /v1/contacts``: at least one of ``phone``, ``email`` or ``external_id``."""

    model_config = ConfigDict(**_STRICT, json_schema_extra=_IDENTITY_SCHEMA)

    @model_validator(mode="after")
    def _has_identity(self) -> Self:
        _require_identity(self)
        return self


class ContactUpsert(ContactCreate):
    """Body of ``POST /v1/contacts/upsert``: matched by ``external_id`` first, else by
    ``phone`` and/or ``email`` (SPEC §9.2); an ``external_id`` nobody holds yet is attached
    to the match (or to the new contact).

    On a match, given fields change as in PATCH (``null`` clears, ``attributes`` merge,
    ``tags`` replace); fields left out keep their value.
    """


class ContactPatch(ContactFields):
    """Body of ``PATCH /v1/contacts/{id}``: only given fields change; ``null`` clears.

    ``attributes`` follows JSON Merge Patch (RFC 7396): a key set to ``null`` is removed,
    ``"attributes": null`` removes them all. ``tags`` replaces the list. ``suppressed``,
    ``source`` and ``consent`` cannot be ``null``. At least one field besides
    ``country_code`` (a parsing hint) must be given.
    """

    model_config = ConfigDict(**_STRICT, json_schema_extra={
        "minProperties": 1,
        "not": {"required": ["country_code"], "maxProperties": 1},
    })


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

    def identities(self) -> dict[str, str]:
        """The identity values this contact holds, e.g. ``{"phone": e164, "email": address,
        "external_id": "crm-42"}`` (fields it does not hold are left out)."""
        return {f: v for f in IDENTITY_FIELDS if (v := getattr(self, f))}


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
        """Render a stored item; ``channels`` follow from which identifiers are present."""
        has_phone = item.phone is not None
        return cls(
            id=item.contact_id,
            first_name=item.first_name,
            last_name=item.last_name,
            name=item.name,
            phone=item.phone,
            email=item.email,
            external_id=item.external_id,
            country_code=item.country_code,
            language=item.language,
            tags=item.tags,
            attributes=item.attributes,
            channels=Channels(
                has_whatsapp=has_phone,
                has_sms=has_phone,
                has_voice=has_phone,
                has_email=item.email is not None,
            ),
            consent=Consent(**item.consent),
            suppressed=item.suppressed,
            source=item.source,
            version=item.version,
            created_at=item.created_at,
            updated_at=item.updated_at,
        )


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
