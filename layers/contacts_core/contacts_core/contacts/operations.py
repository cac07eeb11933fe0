"""Contact operations: the domain functions the handlers call, one per operation.

Round trips to DynamoDB per call (asserted by tests): get 1; create 1; update without an
identifier or name change 1 (with a name change 2: the conditional update refuses and
returns the item, then a transaction moves the name words); upsert 2 (guards, then one
write) unless it moves or clears an identifier of the matched contact or changes its name
(3: guards, read, transaction); delete 2. Retries happen only under
contention or a lost race and always re-read; when the budget (8 attempts) runs out the
caller gets :class:`ConcurrentModification` (409, retryable), never a 500.

Every write applies fields through :meth:`ContactChanges.apply` (one rule for PATCH, upsert
and bulk) and moves guards through :meth:`ContactStore.replace` (each guard put conditioned
on being free or ours, each release on still being ours).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import ConfigDict, Field

from contacts_core.base_model import Model
from contacts_core.contacts.changes import IDENTITY_FIELDS, ContactChanges
from contacts_core.contacts.models import Contact, ContactItem, UpsertResult
from contacts_core.contacts.store import ContactStore
from contacts_core.dynamodb import with_retries
from contacts_core.errors import (
    AmbiguousMatch,
    ConcurrentModification,
    Conflict,
    ContactNotFound,
    DomainError,
    ExternalIdTaken,
    IdentityConflict,
    NoMatchingContact,
    PreconditionFailed,
    ValidationFailed,
)
from contacts_core.http.responses import RESPONSE_BUDGET, encoded_size, fitting
from contacts_core.ids import CONTACT_PREFIX, is_resource_id, now
from contacts_core.observability import Metric, count

if TYPE_CHECKING:  # request bodies: built by the functions that take them
    from contacts_core.contacts.requests import ContactCreate, ContactPatch, ContactUpsert


class _Retry(Exception):
    """Internal: the world changed under us; read again."""


def _with_retries[T](attempt: Callable[[], T]) -> T:
    """:func:`store.with_retries`, also retrying when ``attempt`` saw the world change."""
    return with_retries(attempt, (_Retry, ConcurrentModification))


def _store(store: ContactStore | None) -> ContactStore:
    return store or ContactStore()


def get_contact(org_id: str, contact_id: str, store: ContactStore | None = None) -> Contact:
    """The contact ``contact_id`` of ``org_id``.

    Raises:
        ContactNotFound: absent, or it belongs to another org.
    """
    known = is_resource_id(contact_id, CONTACT_PREFIX)
    item = _store(store).get(org_id, contact_id) if known else None
    if item is None:
        raise ContactNotFound(contact_id)
    return Contact.from_item(item)


def create_contact(org_id: str, body: ContactCreate, store: ContactStore | None = None) -> Contact:
    """Create a contact with one ``TransactWriteItems`` (contact + identity guards).

    Raises:
        IdentityConflict: the phone or email belongs to another contact of the org.
        ConcurrentModification: transactions on the same guards kept conflicting.
    """
    db, changes = _store(store), ContactChanges.from_request(body)

    def attempt() -> ContactItem:
        item = changes.new_item(org_id)
        db.create(item)
        return item

    created = Contact.from_item(_with_retries(attempt))
    count(Metric.CONTACTS_CREATED)
    return created


_OUTCOME_METRICS = {"created": Metric.CONTACTS_CREATED, "updated": Metric.CONTACTS_UPDATED,
                    "unchanged": Metric.CONTACTS_UNCHANGED}


def _patched(item: ContactItem, changed: bool) -> Contact:
    """The PATCH's final answer, counted as an updated or an unchanged contact."""
    count(Metric.CONTACTS_UPDATED if changed else Metric.CONTACTS_UNCHANGED)
    return Contact.from_item(item)


def _expected_version(if_match: int | None, current: ContactItem) -> None:
    if if_match is not None and current.version != if_match:
        raise PreconditionFailed(if_match, current.version)


def _rewrite(store: ContactStore, org_id: str, contact_id: str, changes: ContactChanges,
             if_match: int | None, known: list[ContactItem]) -> ContactItem:
    """Read-modify-write under a version condition (identity and name changes); a write
    that would change nothing writes nothing. ``known`` may hold the item as just read
    (a failed conditional update returns it): the first attempt uses it, retries read."""
    current = known.pop() if known else store.get(org_id, contact_id)
    if current is None:
        raise ContactNotFound(contact_id)
    _expected_version(if_match, current)
    if changes.changes_nothing(current):
        count(Metric.CONTACTS_UNCHANGED)
        return current
    new = changes.apply(current, now())
    store.replace(current, new)
    count(Metric.CONTACTS_UPDATED)
    return new


def update_contact(org_id: str, contact_id: str, body: ContactPatch, if_match: int | None = None,
                   store: ContactStore | None = None) -> Contact:
    """Apply a PATCH: only given fields change, ``null`` clears, attributes merge (RFC 7396).

    Without an identifier or name change this is one conditional ``UpdateItem``; otherwise
    the item as read and a transaction that moves the guards and name words. A PATCH that
    would change nothing writes nothing (same ``version``, no event), like an
    ``unchanged`` upsert.

    Raises:
        ValidationFailed: a body naming no field ("No valid fields to update"), too many
            attributes, or clearing the last identifier. A body whose fields change nothing
            (``{"attributes": {}}``, ``{"consent": {}}``: empty merge patches) answers the
            contact as it is, after one read.
        ContactNotFound, PreconditionFailed (``if_match`` stale), IdentityConflict,
        ConcurrentModification (retry budget spent).
    """
    db = _store(store)
    changes = ContactChanges.from_request(body)
    if not body.given():
        raise ValidationFailed.single("body", "No valid fields to update")
    if not is_resource_id(contact_id, CONTACT_PREFIX):
        raise ContactNotFound(contact_id)
    if changes.is_empty():  # e.g. {"attributes": {}}: an empty merge patch (RFC 7396)
        current = db.get(org_id, contact_id)
        if current is None:
            raise ContactNotFound(contact_id)
        _expected_version(if_match, current)
        return _patched(current, changed=False)
    known: list[ContactItem] = []
    if not changes.needs_read():
        outcome = db.update_fields(org_id, contact_id, changes, now(), expected_version=if_match,
                                   only_if_changed=True)
        if outcome.item is not None:
            return _patched(outcome.item, changed=True)
        if outcome.current is None:
            raise ContactNotFound(contact_id)
        _expected_version(if_match, outcome.current)
        if changes.changes_nothing(outcome.current):
            return _patched(outcome.current, changed=False)
        known.append(outcome.current)
    # An identifier or a name part changes, or the attribute-room bound failed: decide on
    # the exact item (guards and name words move in one transaction).
    return Contact.from_item(_with_retries(
        lambda: _rewrite(db, org_id, contact_id, changes, if_match, known)))


def delete_contact(org_id: str, contact_id: str, if_match: int | None = None,
                   store: ContactStore | None = None) -> None:
    """Delete the contact and release its guards in one transaction (after one read).

    Raises:
        ContactNotFound: absent (a second delete answers this), or another org's id.
        PreconditionFailed: ``if_match`` is stale.
    """
    db = _store(store)
    if not is_resource_id(contact_id, CONTACT_PREFIX):
        raise ContactNotFound(contact_id)

    def attempt() -> None:
        current = db.get(org_id, contact_id)
        if current is None:
            raise ContactNotFound(contact_id)
        _expected_version(if_match, current)
        db.delete(current)

    _with_retries(attempt)


MatchedOn = Literal["external_id", "phone", "email", "phone_and_email"]
UpsertMode = Literal["upsert", "create_only", "update_only"]


@dataclass
class _Match:
    """The contact an upsert matched, on which fields, and whether the body brings an
    identifier the contact does not hold yet (then guards must move: read + transaction).
    ``holding`` is what the guards said the contact holds ({field: value})."""

    contact_id: str
    matched_on: MatchedOn
    moves_identity: bool
    holding: dict[str, str]

    def stale(self, current: ContactItem) -> bool:
        """True when ``current`` no longer holds what the guards said (it moved since)."""
        return any(getattr(current, f) != v for f, v in self.holding.items())


def match_identities(identities: dict[str, str], held: dict[str, str]) -> _Match | None:
    """The contact the given ``identities`` ({field: value}) match, from the guards' holders
    (``held``: {field: contact_id}); None when nothing matches.

    SPEC §9.2: an ``external_id`` that is held decides the match (``matched_on:
    "external_id"``) and the body's phone/email become changes to that contact; otherwise
    phone and email match as before, and an unheld ``external_id`` is attached to the match.

    Raises:
        AmbiguousMatch: the identifiers are held by two (or three) different contacts.
    """
    if not held:
        return None
    by_external = held.get("external_id")
    holders = {by_external} if by_external else set(held.values())
    if len(holders) > 1 or any(c not in holders for c in held.values()):
        raise AmbiguousMatch([Conflict(f, held[f]) for f in IDENTITY_FIELDS if f in held],
                             target=by_external)
    matched = [f for f in IDENTITY_FIELDS if f in held]
    on = ("external_id" if by_external
          else "phone_and_email" if len(matched) == 2 else matched[0])
    return _Match(holders.pop(), on, moves_identity=len(matched) < len(identities),  # type: ignore[arg-type]
                  holding={f: identities[f] for f in matched})


def check_external_id(identities: dict[str, str], match: _Match, current: ContactItem) -> None:
    """An ``external_id`` attached on a phone/email match must not replace another one.

    Raises:
        ExternalIdTaken: the matched contact already has a different external id.
    """
    given = identities.get("external_id")
    if given and current.external_id and current.external_id != given:
        raise ExternalIdTaken(current.contact_id, match.matched_on)


def check_mode(mode: UpsertMode, identities: dict[str, str], match: _Match | None) -> None:
    """The rule of a bulk ``mode`` (SPEC §9.2) for one item, given what it matched.

    Raises:
        IdentityConflict: ``create_only`` and the item matches an existing contact (named).
        NoMatchingContact: ``update_only`` and the item matches no contact (``not_found``).
    """
    if mode == "create_only" and match is not None:
        raise IdentityConflict([Conflict(f, match.contact_id) for f in match.holding])
    if mode == "update_only" and match is None:
        raise NoMatchingContact(identities)


@dataclass
class LastUpserted:
    """The contact a run of upserts last wrote or matched (bulk's one-by-one pass, where
    consecutive items often name one person: 1000 items of one phone).

    An upsert whose every identifier this contact holds takes it as both the guards'
    answer and the contact read: no guard ``BatchGetItem`` and no ``GetItem``, one write
    per item. It is safe when stale: every write it leads to is conditioned (on the
    contact's version, or on the contact still holding the identifiers), so a contact that
    changed meanwhile fails the write; that, and anything it would answer without writing
    ("unchanged", or a refusal such as ``create_only``'s conflict), is decided again on
    fresh reads. Only the first try of an upsert uses it.
    """

    item: ContactItem | None = None

    def holder(self, org_id: str, identities: dict[str, str]) -> ContactItem | None:
        """The contact, taken (a retry reads instead), if it holds all of ``identities``."""
        item, self.item = self.item, None
        if item is None or item.org_id != org_id or not identities:
            return None
        return item if all(getattr(item, f) == v for f, v in identities.items()) else None


def upsert_contact(org_id: str, body: ContactUpsert, store: ContactStore | None = None,
                   mode: UpsertMode = "upsert", *, counted: bool = True,
                   last: LastUpserted | None = None, source: str = "api"
                   ) -> tuple[UpsertResult, bool]:
    """Create, or update the contact matched by external id, else by phone and/or email
    (:func:`match_identities`; guards, consistent read).

    Returns ``(result, created)``. On a match the body's fields change exactly as in PATCH
    (``null`` clears, also ``phone``/``email``); ``unchanged`` writes nothing (also when
    the body holds only identifiers the contact already has). The write is conditioned on
    the contact still holding what the guards said, so a stale read re-reads instead of
    updating a contact that moved away. Under races (two upserts of one new phone) the
    loser re-reads the guards and updates the winner's contact, so no duplicate is ever
    created (I1, I3).

    ``mode`` (bulk's, :func:`check_mode`) can refuse to update or to create. The outcome
    is counted (``ContactsCreated``/``Updated``/``Unchanged``) unless ``counted`` is False
    (bulk counts its items itself). ``last`` (:class:`LastUpserted`) carries the contact
    of the previous upsert of a run into this one, and this one's out. ``source`` is a
    created contact's ``source`` when the body gives none.

    Raises:
        AmbiguousMatch: the identifiers match two contacts (a 409 naming both and pointing
            to merge).
        ExternalIdTaken: an unknown ``external_id`` with a phone/email matching a contact
            that has another one (never re-keyed silently).
        IdentityConflict: ``create_only`` matched a contact.
        NoMatchingContact: ``update_only`` matched none.
        ValidationFailed: the result breaks a contact rule (see ContactChanges.apply).
        ConcurrentModification: the retry budget ran out.
    """
    db = _store(store)
    changes = ContactChanges.from_request(body)
    identities = {f: getattr(body, f) for f in IDENTITY_FIELDS if getattr(body, f)}
    others = changes.without_identities()
    clears_identity = bool(changes.clear & set(IDENTITY_FIELDS))

    def attempt() -> tuple[UpsertResult, bool, ContactItem]:
        known = last.holder(org_id, identities) if last else None
        if known is not None:
            try:
                return decide(known)
            except DomainError:  # a refusal (or a stale version) is never decided from
                pass  # memory: read afresh and decide again, at once
        return decide(None)

    def decide(known: ContactItem | None) -> tuple[UpsertResult, bool, ContactItem]:
        held = (dict.fromkeys(identities, known.contact_id) if known
                else db.read_guards(org_id, identities))
        match = match_identities(identities, held)
        check_mode(mode, identities, match)
        if match is None:
            item = changes.new_item(org_id, source)
            try:
                db.create(item)
            except IdentityConflict as err:
                raise _Retry() from err
            return UpsertResult(result="created", matched_on=None,
                                contact=Contact.from_item(item)), True, item
        current: ContactItem | None
        # (a name part that is set tries the UpdateItem, which refuses when the name changes;
        # a known contact goes straight to the write conditioned on its version)
        if known is not None and not changes.changes_nothing(known):
            current = known
        elif (known is not None or match.moves_identity or clears_identity or others.is_empty()
              or others.needs_read()):
            # ("unchanged" writes nothing: no condition would catch a stale known contact)
            current = db.get(org_id, match.contact_id)
        else:
            outcome = db.update_fields(org_id, match.contact_id, others, now(),
                                       only_if_changed=True, holding=match.holding)
            if outcome.item is not None:
                return _upserted("updated", match, outcome.item), False, outcome.item
            current = outcome.current
        if current is None or match.stale(current):
            db.release_stale_guards(org_id, match.contact_id, match.holding, current)
            raise _Retry()
        check_external_id(identities, match, current)
        if changes.changes_nothing(current):
            return _upserted("unchanged", match, current), False, current
        new = changes.apply(current, now())
        try:
            db.replace(current, new)
        except IdentityConflict as err:
            raise _Retry() from err
        return _upserted("updated", match, new), False, new

    result, created, item = _with_retries(attempt)
    if last is not None:
        last.item = item
    if counted:
        count(_OUTCOME_METRICS[result.result])
    return result, created


def _upserted(result: Literal["updated", "unchanged"], match: _Match,
              item: ContactItem) -> UpsertResult:
    return UpsertResult(result=result, matched_on=match.matched_on,
                        contact=Contact.from_item(item))


# ---------------------------------------------------------------------- batch get
MAX_BATCH_GET_IDS = 100  # one BatchGetItem call (its limit is 100 keys)


class BatchGetRequest(Model):
    """Body of ``POST /v1/contacts/batch-get``: ``ids``, 1–100 strings.

    Any string is taken as an id: one that is not an id this API issues (``con_`` + ULID)
    is answered in ``not_found``, like an unknown id, and never reaches DynamoDB. No
    ``ids``, an empty list, more than 100 or a non-string → 400 naming ``ids``.
    """

    model_config = ConfigDict(extra="forbid", strict=True)

    ids: list[str] = Field(min_length=1, max_length=MAX_BATCH_GET_IDS)


class BatchGetResult(Model):
    """Answer of ``POST /v1/contacts/batch-get``. Each requested id, repeated ones once,
    is in exactly one of the three lists, each in request order:

    * ``data``: the contacts found (contact objects);
    * ``not_found``: ids that are not contacts of the caller's org — unknown, deleted,
      another org's (I4) or not an id of this API at all;
    * ``not_returned``: ids of contacts that exist but did not fit in Lambda's 6 MB
      response after those in ``data``. Usually empty: 100 contacts of the 16 KB a
      request can write always fit; only contacts grown much larger by merges can get
      here. Ask for these ids again (in a smaller batch).
    """

    data: list[Contact]
    not_found: list[str]
    not_returned: list[str]


def batch_get_contacts(org_id: str, ids: list[str],
                       store: ContactStore | None = None) -> BatchGetResult:
    """The contacts ``ids`` of ``org_id`` with one strongly consistent ``BatchGetItem``
    (none when no id has our shape); see :class:`BatchGetResult` for the three lists.

    Raises:
        ServiceUnavailable: keys stayed unprocessed (DynamoDB throttling; 503, retryable).
    """
    wanted = list(dict.fromkeys(ids))
    found = _store(store).get_many(
        org_id, [i for i in wanted if is_resource_id(i, CONTACT_PREFIX)])
    contacts = [Contact.from_item(found[i]) for i in wanted if i in found]
    not_found = [i for i in wanted if i not in found]
    # The id lists are answered whole: the contacts get the budget they leave.
    id_bytes = sum(encoded_size(i) + 1 for i in [*not_found, *found])
    fit = fitting(contacts, RESPONSE_BUDGET - id_bytes)
    return BatchGetResult(data=contacts[:fit], not_found=not_found,
                          not_returned=[c.id for c in contacts[fit:]])
