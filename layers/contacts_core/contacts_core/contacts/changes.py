"""What a write does to a contact: built from a request, applied to a stored item.

A :class:`ContactChanges` is the one description of a create/upsert/PATCH write. The
data-access module turns it into a single ``UpdateItem`` expression when the current
item need not be read; :meth:`ContactChanges.apply` computes the same result in Python
when it has been read (identity changes, retries). Tests check that both agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from contacts_core.attribute_values import same_value
from contacts_core.contacts.models import (
    IDENTITY_FIELDS,
    MAX_ATTRIBUTES,
    MAX_CONTACT_BYTES,
    MAX_TAGS,
    ContactItem,
    content_size,
    json_size,
)
from contacts_core.contacts.output import ConsentStatus, default_consent
from contacts_core.contacts.phones import normalise_phone
from contacts_core.errors import FieldError, PayloadTooLarge, ValidationFailed
from contacts_core.ids import new_contact_id
from contacts_core.names import display_name, follows_parts, name_key

# Top-level scalar/list fields a request sets or clears as a whole.
_PLAIN_FIELDS = ("first_name", "last_name", "name", *IDENTITY_FIELDS, "language", "tags",
                 "suppressed", "source")
NAME_FIELDS = ("first_name", "last_name", "name")  # what name search and ``name`` follow

if TYPE_CHECKING:  # request bodies: built by the functions that take them
    from contacts_core.contacts.requests import ContactFields


@dataclass
class ContactChanges:
    """Field-level changes: ``assign``/``clear`` top-level fields, merge ``attributes``
    (RFC 7396: ``attributes_remove`` keys, or all of them with ``clear_attributes``) and
    ``consent`` per channel. Derived fields (``country_code``, ``name_key``) are added by
    :meth:`with_derived` once the contact id is known.
    """

    assign: dict[str, Any] = field(default_factory=dict)
    clear: set[str] = field(default_factory=set)
    attributes_set: dict[str, Any] = field(default_factory=dict)
    attributes_remove: set[str] = field(default_factory=set)
    clear_attributes: bool = False
    consent_set: dict[str, ConsentStatus] = field(default_factory=dict)

    @classmethod
    def from_request(cls, body: ContactFields) -> ContactChanges:
        """Changes for the fields the client sent; ``null`` means clear."""
        given = body.given()
        changes = cls()
        for name in _PLAIN_FIELDS:
            if name not in given:
                continue
            value = getattr(body, name)
            if name == "tags" and value is None:
                value = []
            if value is None:
                changes.clear.add(name)
            else:
                changes.assign[name] = value
        if "attributes" in given:
            if body.attributes is None:
                changes.clear_attributes = True
            else:
                for key, value in body.attributes.items():
                    if value is None:
                        changes.attributes_remove.add(key)
                    else:
                        changes.attributes_set[key] = value
        if body.consent is not None:
            changes.consent_set = body.consent.model_dump(exclude_none=True)
        return changes

    def is_empty(self) -> bool:
        """True when the request named no field that a write would change."""
        return not (self.assign or self.clear or self.attributes_set or self.attributes_remove
                    or self.clear_attributes or self.consent_set)

    def touches_identity(self) -> bool:
        """True when an identifier (phone, email, external_id) is set or cleared (guards must
        change in a transaction)."""
        return any(f in self.assign or f in self.clear for f in IDENTITY_FIELDS)

    def needs_read(self) -> bool:
        """True when the write must read the contact first: an identifier is set or
        cleared (guards move with it), or a name part is cleared (``name`` and the name
        words follow, :meth:`apply`). A name part that is *set* can try the single
        ``UpdateItem`` first, conditioned on the stored value being the same
        (:meth:`names_given`); when it differs the caller reads and transacts."""
        return self.touches_identity() or bool(self.clear & set(NAME_FIELDS))

    def names_given(self) -> dict[str, str]:
        """The name parts this write sets ({field: value})."""
        return {f: self.assign[f] for f in NAME_FIELDS if f in self.assign}

    def without_identities(self) -> ContactChanges:
        """These changes minus identifiers (for a contact that already holds them)."""
        return ContactChanges({k: v for k, v in self.assign.items() if k not in IDENTITY_FIELDS},
                              self.clear - set(IDENTITY_FIELDS), dict(self.attributes_set),
                              set(self.attributes_remove), self.clear_attributes,
                              dict(self.consent_set))

    def with_derived(self, contact_id: str) -> ContactChanges:
        """Add derived fields: ``country_code`` from a new phone, ``name_key`` from a new name."""
        derived = ContactChanges(dict(self.assign), set(self.clear), dict(self.attributes_set),
                                 set(self.attributes_remove), self.clear_attributes,
                                 dict(self.consent_set))
        if "phone" in self.assign:
            region = normalise_phone(self.assign["phone"]).region
            if region:
                derived.assign["country_code"] = region
            else:
                derived.clear.add("country_code")
        elif "phone" in self.clear:
            derived.clear.add("country_code")
        if "name" in self.assign:
            derived.assign["name_key"] = name_key(self.assign["name"], contact_id)
        elif "name" in self.clear:
            derived.assign["name_key"] = name_key(None, contact_id)
        return derived

    def new_item(self, org_id: str, source: str = "api") -> ContactItem:
        """The item a create writes: version 1, ``name`` defaulting to ``first last``,
        ``source`` to ``source`` (``"api"``; ``"import"`` for an import's rows)."""
        contact_id, created_at = new_contact_id()
        values = {"source": source} | self.assign
        if "name" not in values:
            default = display_name(values.get("first_name"), values.get("last_name"))
            if default:
                values["name"] = default
        consent = default_consent() | self.consent_set
        base = ContactChanges(assign=values).with_derived(contact_id)
        base.assign.setdefault("name_key", name_key(None, contact_id))
        return within_limits(ContactItem(
            org_id=org_id,
            contact_id=contact_id,
            version=1,
            created_at=created_at,
            updated_at=created_at,
            attributes=dict(self.attributes_set),
            consent=consent,
            **base.assign,
        ))

    def apply(self, item: ContactItem, updated_at: str) -> ContactItem:
        """The item after this write (version + 1); the Python twin of the UpdateItem path.

        This is the one rule for "apply these fields to this contact", used by PATCH,
        single upsert and bulk upsert alike. ``name`` follows ``first_name``/``last_name``
        while it is their default (``null`` puts it back to the default); a name the client
        set stays. ``updated_at`` (an API timestamp) is the write's time, or the stored
        ``updated_at`` if that is later, so it never goes back.

        Raises:
            ValidationFailed: the result would hold more than 50 attribute keys, or no
                identifier at all (SPEC §9.1: a contact keeps at least one of phone, email
                or external_id).
        """
        changes = self.with_derived(item.contact_id)
        data = item.model_dump()
        for name in changes.clear:
            data[name] = None
        data.update(changes.assign)
        attributes = {} if changes.clear_attributes else dict(item.attributes)
        for key in changes.attributes_remove:
            attributes.pop(key, None)
        attributes.update(changes.attributes_set)
        data["attributes"] = attributes
        if _name_follows(changes, item):
            data["name"] = display_name(data["first_name"], data["last_name"])
            data["name_key"] = name_key(data["name"], item.contact_id)
        data["consent"] = dict(item.consent) | changes.consent_set
        data["version"] = item.version + 1
        # never before the stored time: a bulk request stamps its items once, before the
        # contacts it creates take their (later) creation times from their ids
        data["updated_at"] = max(updated_at, item.updated_at)
        after = ContactItem(**data)
        _check_rules(after, cleared=[f for f in IDENTITY_FIELDS if f in changes.clear])
        return within_limits(after, item)

    def changes_nothing(self, item: ContactItem) -> bool:
        """True when applying these changes to ``item`` would leave every field as it is."""
        after = self.apply(item, item.updated_at)
        bookkeeping = {"version", "content_bytes"}
        return same_value(after.model_dump(exclude=bookkeeping),
                          item.model_dump(exclude=bookkeeping))

    def growth_bound(self) -> int:
        """Bytes by which these changes can at most grow a contact's
        :func:`~contacts_core.contacts.models.content_size`: the compact JSON of every value
        they set (each new member costs at most its text and a comma, which the braces
        and commas of this JSON cover); clearing only shrinks. Lets a write that does not
        read the contact prove it stays within 16 KB (see ``ContactItem.content_bytes``)."""
        values: dict[str, Any] = {k: v for k, v in self.assign.items()
                                  if k not in ("name_key", "country_code")}
        values["attributes"] = self.attributes_set
        values["consent"] = self.consent_set
        return json_size(values)


def _name_follows(changes: ContactChanges, item: ContactItem) -> bool:
    """True when ``name`` is recomputed from the parts (SPEC §9.3): the write clears it
    (back to the default), or changes a part while the stored name is the default."""
    if "name" in changes.assign:
        return False
    if "name" in changes.clear:
        return True
    parts_change = any(f in changes.assign or f in changes.clear
                       for f in ("first_name", "last_name"))
    return parts_change and follows_parts(item.name, item.first_name, item.last_name)


def _check_rules(item: ContactItem, cleared: list[str]) -> None:
    """The identifier rule on a contact as a write leaves it (SPEC §9.1).

    Raises:
        ValidationFailed: no identifier left (naming each identifier the write cleared).
    """
    if not item.identities():
        raise ValidationFailed(
            [FieldError(f, _KEEPS_ONE) for f in cleared] or [FieldError("phone", _KEEPS_ONE)])


_KEEPS_ONE = "a contact keeps at least one of phone, email or external_id"


def within_limits(item: ContactItem, before: ContactItem | None = None) -> ContactItem:
    """``item`` (the contact a write or a merge leaves; ``before``: as it was) with its
    exact ``content_bytes``, when it keeps a contact's limits (SPEC §5, §7): at most 50
    tags and 50 attribute keys, at most 16 KB. A contact already over 16 KB (stored before
    the limit covered stored contacts) may still be written as long as the write does not
    grow it.

    Raises:
        ValidationFailed: over 50 tags or attribute keys, naming ``tags``/``attributes``.
        PayloadTooLarge: the contact would be over 16 KB and larger than it was, on ``body``.
    """
    over = [FieldError(field, f"the contact would have {n} {what} (at most {most})")
            for field, what, n, most in (
                ("tags", "tags", len(item.tags), MAX_TAGS),
                ("attributes", "attribute keys", len(item.attributes), MAX_ATTRIBUTES))
            if n > most]
    if over:
        raise ValidationFailed(over)
    size = content_size(item)
    if size > MAX_CONTACT_BYTES and (before is None or size > content_size(before)):
        raise PayloadTooLarge.single(
            "body", f"the contact would be {size} bytes, over the {MAX_CONTACT_BYTES} a "
                    "contact may hold (its fields as compact JSON): remove or shorten "
                    "attributes or tags")
    return item.model_copy(update={"content_bytes": size})
