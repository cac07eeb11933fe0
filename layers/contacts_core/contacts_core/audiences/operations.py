"""Audience operations: CRUD with per-org unique names, and memberships with exact counts.

``contact_count`` changes only inside the transactions that add or remove membership
items (one ``ADD contact_count ±n`` per transaction), so it always equals the number of
members, also under concurrent and repeated adds and removes (I5).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from itertools import batched

from ulid import ULID

from contacts_core.audiences.models import (
    Audience,
    AudienceCreate,
    AudienceItem,
    AudiencePage,
    AudiencePatch,
    MembersAdded,
    MembersRemoved,
)
from contacts_core.audiences.store import MAX_AUDIENCES_PER_CONTACT, AudienceStore
from contacts_core.contacts.models import Contact, ContactItem, ContactPage
from contacts_core.contacts.store import ContactStore
from contacts_core.dynamodb import MAX_ATTEMPTS, Contention, backoff, with_retries
from contacts_core.errors import (
    AudienceNameTaken,
    AudienceNotFound,
    ContactNotFound,
    ValidationFailed,
)
from contacts_core.http.cursor import decode_cursor, encode_cursor
from contacts_core.http.paging import PageQuery
from contacts_core.http.responses import fitting
from contacts_core.ids import AUDIENCE_PREFIX, CONTACT_PREFIX, is_resource_id, iso_timestamp, now
from contacts_core.observability import logger

MEMBERS_PER_TRANSACTION = 49  # 2 actions each + the audience's count: ≤ 100 actions
INLINE_DELETE_MEMBERS = 980  # members a DELETE request removes itself (20 transactions)


def _existing(store: AudienceStore, org_id: str, audience_id: str) -> AudienceItem:
    audience = store.get(org_id, audience_id)
    if audience is None or audience.deleting:
        raise AudienceNotFound(audience_id)
    return audience


@contextmanager
def _name_conflicts_explained(db: AudienceStore, org_id: str) -> Iterator[None]:
    """An :class:`AudienceNameTaken` whose holder is being deleted (it answers 404 already,
    its name guard goes when the delete finishes) says so, and is retryable."""
    try:
        yield
    except AudienceNameTaken as err:
        holder = db.get(org_id, err.audience_id)
        if holder is None or holder.deleting:
            raise AudienceNameTaken(err.name, err.audience_id, releasing=True) from err
        raise


def create_audience(org_id: str, body: AudienceCreate,
                    store: AudienceStore | None = None) -> Audience:
    """Create an audience. Raises AudienceNameTaken when the org has one of that name,
    ConcurrentModification when concurrent transactions kept cancelling it (8 tries)."""
    ulid = ULID()
    created = iso_timestamp(ulid.datetime)
    item = AudienceItem(org_id=org_id, audience_id=f"{AUDIENCE_PREFIX}{ulid}", name=body.name,
                        description=body.description, created_at=created, updated_at=created)
    db = store or AudienceStore()
    with _name_conflicts_explained(db, org_id):
        with_retries(lambda: db.create(item))
    return Audience.from_item(item)


def get_audience(org_id: str, audience_id: str, store: AudienceStore | None = None) -> Audience:
    """The audience with its current ``contact_count``. Raises AudienceNotFound."""
    return Audience.from_item(_existing(store or AudienceStore(), org_id, audience_id))


def list_audiences(org_id: str, query: PageQuery,
                   store: AudienceStore | None = None) -> AudiencePage:
    """One page of the org's audiences, oldest first. Raises ValidationFailed on ``cursor``."""
    signed = {"list": "audiences"}
    start = decode_cursor(query.cursor, org_id, signed) if query.cursor else None
    items, last = (store or AudienceStore()).page(org_id, query.limit, start)
    return AudiencePage(data=[Audience.from_item(i) for i in items],
                        next_cursor=encode_cursor(org_id, signed, last) if last else None)


def update_audience(org_id: str, audience_id: str, body: AudiencePatch,
                    store: AudienceStore | None = None) -> Audience:
    """Rename and/or describe. A body that changes nothing (the same name and description
    again) writes nothing: ``updated_at`` stays and no ``audience.updated`` event is sent,
    as an unchanged contact upsert. Raises ValidationFailed (empty body), AudienceNotFound,
    AudienceNameTaken, ConcurrentModification (concurrent transactions kept cancelling
    it, 8 tries)."""
    db = store or AudienceStore()
    if not body.model_fields_set:
        raise ValidationFailed.single("body", "No valid fields to update")
    changes = {k: getattr(body, k) for k in body.model_fields_set}

    def attempt() -> Audience:
        current = _existing(db, org_id, audience_id)
        if all(getattr(current, name) == value for name, value in changes.items()):
            return Audience.from_item(current)
        new = current.model_copy(update=changes | {"updated_at": now()})
        if not db.update(current, new):
            raise AudienceNotFound(audience_id)
        return Audience.from_item(new)

    with _name_conflicts_explained(db, org_id):
        return with_retries(attempt, (Contention,))


def _member_ids(contact_ids: list[str]) -> list[str]:
    return list(dict.fromkeys(contact_ids))


class _MemberChange:
    """Adds or removes contacts in transactions of ≤ 49, retrying only what is retryable."""

    def __init__(self, audiences: AudienceStore, audience: AudienceItem, add: bool) -> None:
        self.audiences, self.audience, self.add = audiences, audience, add
        self.changed = 0
        self.skipped: list[ContactItem] = []  # already (not) members, or gone meanwhile

    def run(self, contacts: list[ContactItem]) -> None:
        for chunk in batched(contacts, MEMBERS_PER_TRANSACTION, strict=False):
            self._chunk(list(chunk))

    def _chunk(self, pending: list[ContactItem]) -> None:
        for attempt in range(MAX_ATTEMPTS):
            if not pending:
                return
            codes = self.audiences.change_members(
                self.audience, [c.contact_id for c in pending], self.add, now())
            if codes is None:
                self.changed += len(pending)
                return
            if codes[-1] == "ConditionalCheckFailed":
                raise AudienceNotFound(self.audience.audience_id)
            failed = {i for i in range(len(pending))
                      if "ConditionalCheckFailed" in (codes[2 * i], codes[2 * i + 1])}
            self.skipped += [pending[i] for i in failed]
            pending = [c for i, c in enumerate(pending) if i not in failed]
            if not failed:  # cancelled by a concurrent transaction: back off and retry
                backoff(attempt)
        if pending:
            raise Contention("membership change kept conflicting")


def _change(org_id: str, audience_id: str, contact_ids: list[str], add: bool,
            store: AudienceStore | None, contacts: ContactStore | None
            ) -> tuple[_MemberChange, list[str], int, int]:
    db = store or AudienceStore()
    audience = _existing(db, org_id, audience_id)
    wanted = _member_ids(contact_ids)
    contacts = contacts or ContactStore()
    found = contacts.get_many(org_id, [i for i in wanted if is_resource_id(i, CONTACT_PREFIX)])
    not_found = [i for i in wanted if i not in found]
    todo = [found[i] for i in wanted if i in found
            and (audience_id in found[i].audience_ids) != add]
    if add:
        over_limit = [c.contact_id for c in todo
                      if len(c.audience_ids) >= MAX_AUDIENCES_PER_CONTACT]
        if over_limit:  # refused before anything is added: a refused request changes nothing
            raise ValidationFailed.single(
                "contact_ids", f"{', '.join(over_limit)} already in "
                               f"{MAX_AUDIENCES_PER_CONTACT} audiences (the maximum); "
                               "nothing was added")
    change = _MemberChange(db, audience, add)
    change.run(todo)
    if change.skipped:  # gone meanwhile (deleted or merged away), or became (not) members
        still = contacts.get_many(org_id, [c.contact_id for c in change.skipped])
        gone = {c.contact_id for c in change.skipped if c.contact_id not in still}
        change.skipped = [c for c in change.skipped if c.contact_id not in gone]
        not_found = [i for i in wanted if i not in found or i in gone]
    unchanged = len(found) - len(todo)
    final = db.get(org_id, audience_id)
    return change, not_found, unchanged, final.contact_count if final else 0


def add_members(org_id: str, audience_id: str, contact_ids: list[str],
                store: AudienceStore | None = None,
                contacts: ContactStore | None = None) -> MembersAdded:
    """Add contacts (≤ 1000). Repeated adds are no-ops counted in ``already_members``;
    ids that are not contacts of the org (also those deleted or merged away while the
    request ran) are listed in ``not_found``.

    Raises:
        AudienceNotFound: no such audience in the org (or it is being deleted).
        ValidationFailed: a contact is already in the maximum of 45 audiences (then
            nothing is added).
    """
    change, not_found, unchanged, count = _change(
        org_id, audience_id, contact_ids, True, store, contacts)
    return MembersAdded(added=change.changed, already_members=unchanged + len(change.skipped),
                        not_found=not_found, contact_count=count)


def remove_members(org_id: str, audience_id: str, contact_ids: list[str],
                   store: AudienceStore | None = None,
                   contacts: ContactStore | None = None) -> MembersRemoved:
    """Remove contacts (≤ 1000); ids that are not members are counted in ``not_members``,
    ids that are not contacts of the org (also those deleted or merged away while the
    request ran) are listed in ``not_found``.

    Raises:
        AudienceNotFound: no such audience in the org.
    """
    change, not_found, unchanged, count = _change(
        org_id, audience_id, contact_ids, False, store, contacts)
    return MembersRemoved(removed=change.changed, not_members=unchanged + len(change.skipped),
                          not_found=not_found, contact_count=count)


def list_members(org_id: str, audience_id: str, query: PageQuery,
                 store: AudienceStore | None = None,
                 contacts: ContactStore | None = None) -> ContactPage:
    """A page of the audience's contacts (contact objects, in contact id order)."""
    db = store or AudienceStore()
    _existing(db, org_id, audience_id)
    signed = {"list": "members", "audience": audience_id}
    start = decode_cursor(query.cursor, org_id, signed) if query.cursor else None
    ids, last = db.member_page(audience_id, query.limit, start)
    found = (contacts or ContactStore()).get_many(org_id, ids)
    shown = [i for i in ids if i in found]
    data = [Contact.from_item(found[i]) for i in shown]
    fit = fitting(data)
    if fit < len(data):  # the page would not fit Lambda's response: cut it there
        data, last = data[:fit], {"audience_id": audience_id, "contact_id": shown[fit - 1]}
    return ContactPage(data=data,
                       next_cursor=encode_cursor(org_id, signed, last) if last else None)


def delete_audience(org_id: str, audience_id: str, store: AudienceStore | None = None) -> None:
    """Delete the audience and its memberships; contacts stay.

    One conditional write flags the audience ``deleting``: from then on it answers 404,
    takes no members and is not listed. Its stream record starts the cleanup
    (:func:`finish_audience_delete`, run by the AudiencesTable stream mapping of
    ``FinishAudienceDeleteFunction``), which removes the members with exact counts and then
    the audience, whatever happens to this request. This request also makes a best-effort
    pass over the first ``INLINE_DELETE_MEMBERS`` members, so a small audience is gone when
    the answer arrives; a failure there only leaves the rest to the stream. Repeating the
    delete of an audience still being deleted is accepted (and makes another pass).

    Raises:
        AudienceNotFound: no such audience in the org (or it is gone already).
    """
    db = store or AudienceStore()
    audience = db.get(org_id, audience_id)
    if audience is None or not db.mark_deleting(audience):
        raise AudienceNotFound(audience_id)
    if INLINE_DELETE_MEMBERS < MEMBERS_PER_TRANSACTION:
        return
    more = iter(range(INLINE_DELETE_MEMBERS // MEMBERS_PER_TRANSACTION - 1))
    try:
        finish_audience_delete(org_id, audience_id, db,
                               keep_going=lambda: next(more, None) is not None)
    except Exception:  # the stream-driven cleanup finishes it
        logger.warning("audience delete left to the stream", exc_info=True,
                       extra={"audience_id": audience_id})


def finish_audience_delete(org_id: str, audience_id: str, store: AudienceStore | None = None,
                           keep_going: Callable[[], bool] = lambda: True) -> bool:
    """Drive a flagged audience's delete to its end; idempotent and resumable.

    Removes members ≤ 49 per transaction (each removes the membership items, updates the
    contacts' ``audience_ids`` and lowers ``contact_count`` by exactly as many, I5), then
    deletes the empty audience and its name guard in one transaction, whose stream record
    becomes the single ``audience.deleted``. Several runs may overlap: each member is
    removed by exactly one transaction. Memberships whose contact is gone are removed too.
    ``keep_going()`` is asked after each transaction that removed members; when it says
    no, the run stops and returns False — having changed the audience at least once, so
    that change's stream record resumes the work. Returns True when the audience is gone
    (or is not being deleted).

    Raises:
        Contention: transactions kept conflicting (the stream retries the run).
    """
    db = store or AudienceStore()
    audience = db.get(org_id, audience_id)
    if audience is None or not audience.deleting:
        return True
    conflicts = 0
    while True:
        ids, _ = db.member_page(audience_id, MEMBERS_PER_TRANSACTION, None)
        if not ids:
            return _drop_empty(db, org_id, audience_id)
        codes = db.change_members(audience, ids, add=False, now=now())
        if codes is None:
            if not keep_going():
                return False
            continue
        if codes[-1] == "ConditionalCheckFailed":
            return True  # another run deleted the audience meanwhile
        members_gone = any(codes[2 * i] == "ConditionalCheckFailed" for i in range(len(ids)))
        orphans = [ids[i] for i in range(len(ids)) if codes[2 * i] != "ConditionalCheckFailed"
                   and codes[2 * i + 1] == "ConditionalCheckFailed"]
        progressed = db.remove_orphans(audience, orphans) is None if orphans else members_gone
        if not progressed:  # cancelled by a concurrent transaction: back off
            conflicts += 1
            if conflicts >= MAX_ATTEMPTS:
                raise Contention("audience delete kept conflicting")
            backoff(conflicts)


def _drop_empty(db: AudienceStore, org_id: str, audience_id: str) -> bool:
    for attempt in range(MAX_ATTEMPTS):
        current = db.get(org_id, audience_id)
        if current is None or db.finish_delete(current):
            return True
        backoff(attempt)
    raise Contention("the emptied audience could not be deleted")


def list_contact_audiences(org_id: str, contact_id: str, query: PageQuery,
                           store: AudienceStore | None = None,
                           contacts: ContactStore | None = None) -> AudiencePage:
    """A page of the audiences the contact belongs to, in audience id order (oldest first).

    Two strongly consistent reads: the contact (``GetItem``; its ``audience_ids`` change in
    the same transactions as the memberships, so they are exact) and, in one
    ``BatchGetItem``, every audience after the cursor (at most 45, the most a contact can
    be in). Audiences being deleted are left out, so pages are full and ``next_cursor`` is
    ``null`` exactly when nothing visible follows. The cursor is signed for the org and
    the contact; at most 45 small audiences always fit Lambda's response.

    Raises:
        ContactNotFound: not a contact of the org (unknown, another org's, malformed id).
        ValidationFailed: on ``cursor`` (tampered, or issued for another contact or org).
    """
    known = is_resource_id(contact_id, CONTACT_PREFIX)
    contact = (contacts or ContactStore()).get(org_id, contact_id) if known else None
    if contact is None:
        raise ContactNotFound(contact_id)
    signed = {"list": "contact_audiences", "contact": contact_id}
    start = decode_cursor(query.cursor, org_id, signed) if query.cursor else {}
    after = start.get("audience_id", "")
    remaining = sorted(a for a in contact.audience_ids if a > after)
    found = (store or AudienceStore()).get_many(org_id, remaining) if remaining else {}
    visible = [found[a] for a in remaining if a in found and not found[a].deleting]
    page = visible[:query.limit]
    more = len(visible) > query.limit
    return AudiencePage(
        data=[Audience.from_item(a) for a in page],
        next_cursor=encode_cursor(org_id, signed, {"audience_id": page[-1].audience_id})
        if more else None)
