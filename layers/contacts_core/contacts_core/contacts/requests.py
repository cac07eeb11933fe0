"""Pydantic models of request bodies that write contacts: create, upsert and PATCH
(SPEC §5, §9.2), and the field rules they share (:class:`ContactFields`).

Apart from the stored item and the API output (:mod:`contacts_core.contacts.models`), so
a function that only reads contacts never builds these classes (issue 11, cold start).
Limits come from SPEC §5/§7 (see :mod:`contacts_core.contacts.models`).

The models' JSON Schema (and so ``openapi.json``) describes what they accept:
create/upsert require ``phone``, ``email`` or ``external_id``, PATCH at least one field,
attribute numbers are finite and within DynamoDB's range.
"""

from __future__ import annotations

from typing import Annotated, Any, Self

from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictStr,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from contacts_core.attribute_values import stored_number
from contacts_core.base_model import Model, PlainText, SchemaKeywords, without_null
from contacts_core.contacts.models import (
    IDENTITY_FIELDS,
    MAX_ATTRIBUTE_KEY_LENGTH,
    MAX_ATTRIBUTE_VALUE_BYTES,
    MAX_ATTRIBUTES,
    MAX_EXTERNAL_ID_LENGTH,
    MAX_FOLDED_DISPLAY_NAME_BYTES,
    MAX_FOLDED_NAME_BYTES,
    MAX_TAG_LENGTH,
    MAX_TAGS,
    ConsentStatus,
    FieldRuleError,
    normalise_email,
    number_problem,
)
from contacts_core.contacts.phones import InvalidPhone, is_region, normalise_phone
from contacts_core.limits import MAX_INTEGER, MAX_MAGNITUDE, MIN_MAGNITUDE
from contacts_core.names import check_foldable
from contacts_core.text import blank_is_null, composed


def _no_comma(tag: str) -> str:
    """A tag holds no comma: the ``tag`` list filter takes comma-separated values (HTTP API
    payload 2.0 joins a repeated query parameter with commas, so one cannot be escaped)."""
    if "," in tag:
        raise ValueError("must not contain a comma (the tag filter separates tags by commas)")
    return tag


Tag = Annotated[StrictStr, BeforeValidator(composed),
                Field(min_length=1, max_length=MAX_TAG_LENGTH), AfterValidator(_no_comma),
                PlainText(also=",")]
AttributeKey = Annotated[str, BeforeValidator(composed),
                         Field(min_length=1, max_length=MAX_ATTRIBUTE_KEY_LENGTH), PlainText()]
# Checked by ContactFields._attributes_bounded (so errors name ``attributes.<key>``); the
# schema says what that check accepts (JSON Schema's "integer" is any whole value, so
# ``1e40`` is an integer over the maximum, refused as its digits written out are).
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


def _key_rule_in_property_names(schema: dict[str, Any]) -> None:
    """``json_schema_extra`` of ``attributes``: pydantic writes a key ``pattern`` as
    ``patternProperties``, which leaves other keys to ``additionalProperties`` — allowed
    when that is absent. Said as ``propertyNames`` instead, a key the server refuses (one
    holding a control character) is invalid in the document too."""
    patterns = schema.pop("patternProperties", None)
    if patterns:
        ((pattern, values),) = patterns.items()
        schema["additionalProperties"] = values
        schema.setdefault("propertyNames", {})["pattern"] = pattern


# Python's str.isprintable() (what _external_id_printable checks) refuses, in the BMP; the
# rest of what it refuses (unassigned code points, planes 15-16) is in the description.
EXTERNAL_ID_PATTERN = (
    "^[^\\u0000-\\u001f\\u007f-\\u00a0\\u00ad\\u0600-\\u0605\\u061c\\u06dd\\u070f"
    "\\u0890\\u0891\\u08e2\\u1680\\u180e\\u2000-\\u200f\\u2028-\\u202f\\u205f-\\u2064"
    "\\u2066-\\u206f\\u3000\\ud800-\\udfff\\ue000-\\uf8ff\\ufeff\\ufff9-\\ufffb]+$")

MAX_NAME_PART_LENGTH = 256
ShortText = Annotated[StrictStr, Field(max_length=MAX_NAME_PART_LENGTH), PlainText()]
# a blank name is no name: a ``name`` of "" follows the parts again instead of pinning an
# empty display name
Name = Annotated[ShortText | None, AfterValidator(blank_is_null)]
# ``name`` takes whatever its default, "first_name last_name", can be (513 characters), so
# every contact reads back in a form the API takes again (a re-sync of a GET)
DisplayName = Annotated[Annotated[StrictStr, Field(max_length=2 * MAX_NAME_PART_LENGTH + 1),
                                  PlainText()] | None, AfterValidator(blank_is_null)]


def canonical_language_tag(tag: str) -> str:
    """A BCP 47 language tag (as :data:`LanguageTag` accepts it: a 2–3 letter language,
    then subtags of 2–8 letters or digits) in its canonical case, RFC 5646 §2.1.1:
    lowercase, except a two-letter subtag (a region) in uppercase and a four-letter one (a
    script) in title case: ``EN-za`` → ``en-ZA``, ``ZH-hant-tw`` → ``zh-Hant-TW``,
    ``DE-CH-1996`` → ``de-CH-1996``. Tags
    that differ only in case mean the same language (same section), so a re-sync sending
    ``en-za`` for a stored ``en-ZA`` is ``unchanged``."""
    language, *subtags = tag.split("-")
    return "-".join([language.lower()] + [
        subtag.upper() if len(subtag) == 2
        else subtag.capitalize() if len(subtag) == 4 and subtag.isalpha()
        else subtag.lower() for subtag in subtags])


LanguageTag = Annotated[StrictStr, Field(pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$"),
                        AfterValidator(canonical_language_tag)]  # BCP 47

_STRICT = ConfigDict(extra="forbid", str_strip_whitespace=True)


def _refuse_null(value: Any) -> Any:
    if value is None:
        raise ValueError("cannot be null")
    return value


class ConsentPatch(Model):
    """Per-channel consent; channels left out keep their value. A channel always has a
    status, so ``null`` is refused (400 naming ``consent.<channel>``): send ``"unknown"``."""

    model_config = _STRICT

    whatsapp: ConsentStatus | None = Field(None, json_schema_extra=without_null)
    sms: ConsentStatus | None = Field(None, json_schema_extra=without_null)
    email: ConsentStatus | None = Field(None, json_schema_extra=without_null)
    voice: ConsentStatus | None = Field(None, json_schema_extra=without_null)

    _not_null = field_validator("whatsapp", "sms", "email", "voice", mode="before")(
        _refuse_null)


class ContactFields(Model):
    """Writable contact fields shared by create, upsert and update (PATCH) bodies.

    ``phone`` is normalised to E.164 using ``country_code`` as the region hint for
    national formats (``country_code`` is declared first so it is validated first);
    ``email`` is syntax-checked and lower-cased. Unknown fields are rejected.
    """

    model_config = _STRICT

    country_code: Annotated[StrictStr, Field(pattern=r"^[A-Za-z]{2}$")] | None = None
    phone: Annotated[StrictStr, Field(max_length=64)] | None = None
    email: Annotated[StrictStr, Field(max_length=254),
                     SchemaKeywords(format="email", pattern=r"^[^@\s]+@[^@\s]+$")] | None = None
    external_id: Annotated[StrictStr, Field(
        min_length=1, max_length=MAX_EXTERNAL_ID_LENGTH,
        description="The integrator's own id (e.g. a CRM id): 1–255 printable characters "
                    "(no control, format, separator other than the space, private-use or "
                    "unassigned code points), case-sensitive, unique per org; surrounding "
                    "whitespace is trimmed.",
    ), SchemaKeywords(pattern=EXTERNAL_ID_PATTERN)] | None = None
    first_name: Name = None
    last_name: Name = None
    name: DisplayName = None
    language: LanguageTag | None = None
    tags: list[Tag] | None = None
    # Up to 50 values, and as many removals (null) again: a merge patch may remove each of
    # a contact's 50 keys while it sets 50 others; the stored contact's count is checked
    # on the result (ContactChanges).
    attributes: Annotated[dict[AttributeKey, AttributeInput], Field(
        max_length=2 * MAX_ATTRIBUTES,
        description="Custom fields: at most 50 keys with a value (string, number, boolean); "
                    "on an existing contact they merge (RFC 7396) and null removes a key, "
                    "so up to 50 removals may come with them. A contact holds at most 50.",
        json_schema_extra=_key_rule_in_property_names,
    )] | None = None
    # Absent → None, but never null: a contact always has consent, a suppressed flag and a
    # source (``_not_null``; the schema leaves null out).
    consent: ConsentPatch | None = Field(None, json_schema_extra=without_null)
    suppressed: StrictBool | None = Field(None, json_schema_extra=without_null)
    source: Annotated[StrictStr, Field(min_length=1, max_length=64)] | None = Field(
        None, json_schema_extra=without_null)

    _not_null = field_validator("consent", "suppressed", "source", mode="before")(
        _refuse_null)

    @field_validator("country_code")
    @classmethod
    def _country_known(cls, value: str | None) -> str | None:
        if value is not None and not is_region(value):
            raise ValueError("not a country code libphonenumber knows "
                             "(ISO 3166-1 alpha-2, such as ZA or GB)")
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
    def _name_searchable(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        limit = MAX_FOLDED_DISPLAY_NAME_BYTES if info.field_name == "name" \
            else MAX_FOLDED_NAME_BYTES
        return check_foldable(value, limit)

    @field_validator("tags")
    @classmethod
    def _tags_unique(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        unique = list(dict.fromkeys(value))
        if len(unique) > MAX_TAGS:
            raise ValueError(f"at most {MAX_TAGS} distinct tags")
        return unique

    @field_validator("attributes", mode="before")
    @classmethod
    def _attribute_keys_distinct(cls, value: Any) -> Any:
        """Keys are trimmed of surrounding whitespace like every string, and composed
        (NFC, :func:`~contacts_core.text.composed`): two keys that are one once trimmed and
        composed (``"tier"`` and ``"tier "``; ``café`` composed and decomposed) are a 400,
        not one value kept silently (as for a JSON member named twice)."""
        if isinstance(value, dict):
            seen: dict[str, str] = {}
            for key in value:
                if isinstance(key, str) and \
                        seen.setdefault(composed(key.strip()), key) != key:
                    raise ValueError(
                        f"keys {seen[composed(key.strip())]!a:.40} and {key!a:.40} are the "
                        "same key once trimmed of surrounding whitespace (and composed, NFC)")
        return value

    @field_validator("attributes")
    @classmethod
    def _attributes_bounded(
        cls, value: dict[str, Any] | None
    ) -> dict[str, Any] | None:
        if value is None:
            return None
        if sum(item is not None for item in value.values()) > MAX_ATTRIBUTES:
            raise ValueError(f"at most {MAX_ATTRIBUTES} keys with a value (null removes one)")
        for key, item in value.items():
            if item is not None and not isinstance(item, str | int | float | bool):
                raise FieldRuleError(f"attributes.{key}", "must be a string, number or boolean")
            if isinstance(item, str) and len(item.encode(errors="surrogatepass")
                                             ) > MAX_ATTRIBUTE_VALUE_BYTES:
                raise ValueError(f"value of {key!r} is over {MAX_ATTRIBUTE_VALUE_BYTES} bytes")
            if isinstance(item, int | float) and not isinstance(item, bool):
                problem = number_problem(item)
                if problem:
                    raise FieldRuleError(f"attributes.{key}", problem)
                value[key] = stored_number(item)  # as reads will show it: 1E2 → 100
        return value

    def given(self) -> set[str]:
        """Names of the fields the client sent (``null`` included), minus the parsing hint."""
        return set(self.model_fields_set) - {"country_code"}


def _require_identity(fields: ContactFields) -> None:
    if all(getattr(fields, name) is None for name in IDENTITY_FIELDS):
        # names the identifier sent as null (or blank), else phone, the first of them
        sent = [name for name in IDENTITY_FIELDS if name in fields.model_fields_set]
        raise FieldRuleError(sent[0] if sent else "phone",
                             "at least one of phone, email or external_id is required")


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
