"""Merging two contacts into one (SPEC §9.2): ``POST /v1/contacts/{id}/merge``.

The target ``{id}`` survives and the source is deleted, in one ``TransactWriteItems``
after one consistent ``BatchGetItem`` of both (2 round trips; a lost race re-reads and
retries, as every contact write does). The transaction writes the merged target, deletes
the source, moves or releases each of the source's guards, moves its memberships (exact
counts), and records the merge (a ``{org}#merged#{source}`` item in the identities
table) so the stream consumer tells subscribers ``contact.merged`` instead of
``contact.deleted``. It either all commits or nothing does, also when the process dies
between the read and the write.
"""

from __future__ import annotations

from pydantic import ConfigDict, Field

from contacts_core.audiences.store import MAX_AUDIENCES_PER_CONTACT
from contacts_core.base_model import Model
from contacts_core.contacts.changes import within_limits
from contacts_core.contacts.models import IDENTITY_FIELDS, Contact, ContactItem
from contacts_core.contacts.output import CHANNELS, ConsentStatus
from contacts_core.contacts.store import ContactStore, MergePlan
from contacts_core.dynamodb import with_retries
from contacts_core.errors import (
    ContactNotFound,
    FieldError,
    MergeRefused,
    PreconditionFailed,
    ValidationFailed,
)
from contacts_core.ids import CONTACT_PREFIX, is_resource_id, now
from contacts_core.names import display_name, follows_parts, name_key
from contacts_core.observability import Metric, count

# Fields the source fills when the target has none (identifiers move with their guards).
_FILLED = ("first_name", "last_name", *IDENTITY_FIELDS, "language")
# SPEC §9.2: opted_out beats opted_in beats unknown.
_CONSENT_RANK: dict[ConsentStatus, int] = {"unknown": 0, "opted_in": 1, "opted_out": 2}


class MergeRequest(Model):
    """Body of ``POST /v1/contacts/{id}/merge``: ``source_id``, the contact merged into
    ``{id}`` and deleted. Any string is taken: one that is not a contact of the org → 404."""

    model_config = ConfigDict(extra="forbid", strict=True)

    source_id: str = Field(min_length=1, max_length=2048)


def merged_item(target: ContactItem, source: ContactItem, updated_at: str) -> ContactItem:
    """The target after absorbing ``source`` (SPEC §9.2), at ``version + 1``.

    Target values win; the source fills the target's empty fields (``country_code``
    follows the phone kept); tags are the union, the target's first; attributes merge, the
    target winning per key; consent per channel takes the stronger of ``opted_out`` >
    ``opted_in`` > ``unknown``; ``suppressed`` if either was; memberships are the union;
    ``created_at`` is the earlier one; ``source`` is the target's.

    Raises:
        ValidationFailed, PayloadTooLarge: the result would break a contact limit, as a
            PATCH would (:func:`~contacts_core.contacts.changes.within_limits`).
        MergeRefused: the result would be in more audiences than a contact may be.
    """
    data = target.model_dump()
    for name in _FILLED:
        if data[name] is None:
            data[name] = getattr(source, name)
    data["name"] = _merged_name(target, source, data["first_name"], data["last_name"])
    data["country_code"] = target.country_code if target.phone else source.country_code
    data["name_key"] = name_key(data["name"], target.contact_id)
    data["tags"] = list(dict.fromkeys([*target.tags, *source.tags]))
    data["attributes"] = source.attributes | target.attributes
    data["consent"] = {c: max(target.consent[c], source.consent[c], key=_CONSENT_RANK.__getitem__)
                       for c in CHANNELS}
    data["suppressed"] = target.suppressed or source.suppressed
    data["created_at"] = min(target.created_at, source.created_at)
    data["audience_ids"] = target.audience_ids | source.audience_ids
    data["membership_rev"] = target.membership_rev + 1
    data["version"] = target.version + 1
    data["updated_at"] = max(updated_at, target.updated_at)  # never back (as changes.apply)
    merged = within_limits(ContactItem(**data))
    _check_audiences(merged)
    return merged


def _merged_name(target: ContactItem, source: ContactItem, first_name: str | None,
                 last_name: str | None) -> str | None:
    """The merged display name (SPEC §9.3: ``name`` follows ``first_name``/``last_name``
    unless the client set it): a name the client set on the target stays; else one the
    client set on the source fills the target's empty name; else the default of the merged
    name parts (so a target "Sam" given the source's last name "Mokoena" is "Sam Mokoena")."""
    if not follows_parts(target.name, target.first_name, target.last_name):
        return target.name
    if target.name is None and not follows_parts(source.name, source.first_name,
                                                 source.last_name):
        return source.name
    return display_name(first_name, last_name)


def _check_audiences(merged: ContactItem) -> None:
    """Raises MergeRefused (409: the contacts' state) when the merged contact would be in
    more audiences than a contact may be."""
    if len(merged.audience_ids) > MAX_AUDIENCES_PER_CONTACT:
        raise MergeRefused(f"the merged contact would be in {len(merged.audience_ids)} "
                           f"audiences (at most {MAX_AUDIENCES_PER_CONTACT}): remove some "
                           "from either contact, then merge")


def merge_contacts(org_id: str, target_id: str, body: MergeRequest,
                   if_match: int | None = None, store: ContactStore | None = None) -> Contact:
    """Merge ``body.source_id`` into ``target_id``; returns the merged target.

    Repeating a merge that already happened (a retry after a timeout) answers the target
    as it is now, told by the merge record; nothing is written again.

    Raises:
        ContactNotFound: either contact is not in the org (the missing id is named).
        PreconditionFailed: ``if_match`` is not the target's version.
        PayloadTooLarge: the merged contact would be over 16 KB (413).
        ValidationFailed: the two ids are the same, or the merged contact would have over
            50 tags or attribute keys (400, naming ``tags`` / ``attributes``).
        MergeRefused: the merged contact would be in too many audiences, or the merge would
            not fit one transaction (100 actions: the source's audiences to move).
        ConcurrentModification: either contact kept changing (retry budget spent).
    """
    source_id = body.source_id
    if source_id == target_id:
        raise ValidationFailed([FieldError("source_id", "cannot merge a contact into itself")])
    db = store or ContactStore()
    for contact_id in (target_id, source_id):
        if not is_resource_id(contact_id, CONTACT_PREFIX):
            raise ContactNotFound(contact_id)

    def attempt() -> ContactItem:
        found = db.get_many(org_id, [target_id, source_id])
        if target_id not in found:
            raise ContactNotFound(target_id)
        if source_id not in found:
            if db.merged_into(org_id, source_id) == target_id:
                return found[target_id]  # a repeat of a merge that happened: same answer
            raise ContactNotFound(source_id)
        target, source = found[target_id], found[source_id]
        if if_match is not None and target.version != if_match:
            raise PreconditionFailed(if_match, target.version)
        plan = MergePlan(target, source, merged_item(target, source, now()))
        db.merge(plan)
        count(Metric.CONTACTS_MERGED)
        return plan.merged

    return Contact.from_item(with_retries(attempt))
