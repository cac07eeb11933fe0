"""Bulk upsert and bulk delete: batched reads, packed transactions, per-item outcomes.

Bulk upsert gives the same outcome as upserting the items one by one in input order
(two items with one phone: the second updates the first), but with few round trips:

1. every item is validated on its own (an invalid item fails alone, with its index);
2. all guards are read with ``BatchGetItem`` (≤ 100 keys a call, consistent), then the
   matched existing contacts;
3. the items are applied in order to that snapshot in memory with the very rules of
   :func:`contacts_core.contacts.operations.upsert_contact` (``match_identities``,
   :meth:`ContactChanges.apply`). A match whose contact no longer holds what its guard
   said (the snapshot went stale) is left to step 5, and so is every later item that
   touches one of its identifiers or its contact, so input order is kept;
4. the net change is written in ``TransactWriteItems`` of ≤ 100 actions: every changed
   contact under a version condition (new ones: must not exist), and every guard whose
   holder differs between the contacts as read and as planned — put if it is still the old
   holder's (or, for a value nobody held, if it is free or already the new holder's),
   released if still the old holder's. Identities on which the guards (read first) and the
   contacts (read after) disagree are left to step 5 with every item touching them.
   Contacts that pass a guard between them share a transaction; independent transactions
   run concurrently;
5. a cancelled transaction's reasons are mapped back to the contacts that caused them:
   only those are redone, one by one, through the single-item upsert (which re-reads),
   and the rest of the transaction is written again without them.

Once anything is written, nothing raises: every item gets its outcome, a failure being
reported on the item (``error.code``, e.g. ``concurrent_modification``).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from pydantic import ConfigDict, Field, ValidationError

from contacts_core.attribute_values import same_value
from contacts_core.base_model import Model
from contacts_core.contacts.changes import IDENTITY_FIELDS, ContactChanges
from contacts_core.contacts.models import MAX_CONTACT_BYTES, Contact, ContactItem, json_size
from contacts_core.contacts.operations import (
    LastUpserted,
    MatchedOn,
    UpsertMode,
    check_external_id,
    check_mode,
    delete_contact,
    match_identities,
    upsert_contact,
)
from contacts_core.contacts.requests import ContactUpsert
from contacts_core.contacts.store import ContactStore
from contacts_core.dynamodb import Contention, backoff, transact
from contacts_core.errors import (
    ContactNotFound,
    DomainError,
    IdentityConflict,
    PayloadTooLarge,
    ValidationFailed,
)
from contacts_core.http.json_body import json_problem
from contacts_core.http.problems import from_validation_error
from contacts_core.http.responses import RESPONSE_BUDGET, fitting, model_size
from contacts_core.ids import CONTACT_PREFIX, is_resource_id, now
from contacts_core.observability import Metric, count, logger
from contacts_core.text import shortened

MAX_BULK_ITEMS = 1000  # SPEC §7
MAX_ACTIONS = 100  # TransactWriteItems limit
WRITERS = 8  # transactions in flight at once

Pair = tuple[str, str]  # (field, value) of an identity
Status = Literal["created", "updated", "unchanged", "failed"]


class BulkUpsertRequest(Model):
    """Body of ``POST /v1/contacts/bulk``: ``contacts``, 1–1000 upsert bodies, and ``mode``
    (SPEC §9.2): ``upsert`` (default) creates or updates; ``create_only`` fails an item
    that matches an existing contact (``identity_conflict`` naming it); ``update_only``
    fails an item that matches none (``not_found``)."""

    model_config = ConfigDict(extra="forbid")

    # Items are checked one by one (``_parse``): one that is not even an object, or not
    # I-JSON (a member named twice, an unpaired surrogate), fails alone, as every other
    # invalid item does (SPEC §5), so the list takes any JSON value and the request's own
    # I-JSON check leaves its items to ``_parse``.
    ITEMS_CHECKED_ALONE: ClassVar[str] = "contacts"
    contacts: list[Any] = Field(min_length=1, max_length=MAX_BULK_ITEMS)
    mode: UpsertMode = "upsert"


class BulkDeleteRequest(Model):
    """Body of ``POST /v1/contacts/bulk-delete``: ``contact_ids``, 1–1000 ids."""

    model_config = ConfigDict(extra="forbid")

    contact_ids: list[str] = Field(min_length=1, max_length=MAX_BULK_ITEMS)


class BulkItemError(Model):
    """Why one item failed: the problem ``code``, a message, and the fields involved."""

    model_config = ConfigDict(extra="allow")

    code: str
    message: str
    errors: list[dict[str, str]] | None = None


class BulkItemResult(Model):
    """One item's outcome, at its input ``index``; ``contact`` is the contact as that item
    left it."""

    index: int
    status: Status
    id: str | None = None
    matched_on: MatchedOn | None = None
    contact: Contact | None = None
    error: BulkItemError | None = None


class BulkUpsertResult(Model):
    """Counts per status and every item's result, in input order."""

    created: int
    updated: int
    unchanged: int
    failed: int
    results: list[BulkItemResult]


class BulkDeleteFailure(Model):
    """A contact that could not be deleted (it still exists, unchanged) and why."""

    id: str
    error: BulkItemError


class BulkDeleteResult(Model):
    """How many contacts were deleted, which ids were not contacts of the org, and which
    could not be deleted (``failed``, empty unless other writers kept changing them;
    deleting them again is safe)."""

    deleted: int
    not_found: list[str]
    failed: list[BulkDeleteFailure] = Field(default_factory=list)


# An item whose outcome an unexpected error hid (logged with the request id): it may or may
# not have been written; upserting or deleting it again is safe either way.
_UNCONFIRMED = BulkItemError(code="unconfirmed", message="the outcome could not be confirmed; "
                             "sending this item again is safe")


# What an item the request had no time left for answers: nothing was written for it.
_NOT_ATTEMPTED = BulkItemError(
    code="not_attempted", message="not attempted: the request ran out of time (29 s) before "
    "this item; nothing was written for it, send it again")
# A bulk request stops starting writes this long before its deadline: time for the writes
# in flight (a transaction retried with backoff, an item upserted alone) and the answer.
DEADLINE_MARGIN_S = 5.0


class _Clock:
    """Whether a bulk request may still start a write (``deadline``: ``time.monotonic()``
    by which the answer must be sent, None for none, as an import's run has)."""

    def __init__(self, deadline: float | None) -> None:
        self.stop_at = None if deadline is None else deadline - DEADLINE_MARGIN_S

    def out_of_time(self) -> bool:
        return self.stop_at is not None and time.monotonic() >= self.stop_at


def _error(err: DomainError) -> BulkItemError:
    return BulkItemError(code=err.code, message=err.detail, **err.extensions())  # type: ignore[arg-type]


@dataclass
class _Item:
    index: int
    body: ContactUpsert
    changes: ContactChanges

    def identities(self) -> list[Pair]:
        return [(f, getattr(self.body, f)) for f in IDENTITY_FIELDS if getattr(self.body, f)]


def _parse(raw: Any, index: int) -> _Item | BulkItemResult:
    """Item ``index`` of the request, or its failure (not an object, not I-JSON, over 16 KB,
    invalid)."""
    if not isinstance(raw, dict):
        return BulkItemResult(index=index, status="failed", error=_error(
            ValidationFailed.single("body", "each item must be a JSON object: a contact "
                                            "upsert body")))
    problem = json_problem(raw)
    if problem is not None:
        return BulkItemResult(index=index, status="failed",
                              error=_error(ValidationFailed([problem])))
    if json_size(raw) > MAX_CONTACT_BYTES:  # UTF-8 bytes, as a single request body is measured
        return BulkItemResult(index=index, status="failed", error=_error(PayloadTooLarge.single(
            "body", f"the contact is over {MAX_CONTACT_BYTES} bytes (its JSON as UTF-8): "
                    "remove or shorten attributes or tags")))
    try:
        body = ContactUpsert.model_validate(raw)
    except ValidationError as err:
        return BulkItemResult(index=index, status="failed",
                              error=_error(from_validation_error(err)))
    return _Item(index, body, ContactChanges.from_request(body))


def _holders(contacts: dict[str, ContactItem]) -> dict[Pair, str]:
    """Which contact holds each identity, according to the contacts themselves."""
    return {(f, v): cid for cid, c in contacts.items() for f, v in c.identities().items()}


@dataclass
class _Plan:
    """The batch applied in memory to the snapshot read from DynamoDB.

    ``owners`` starts as the guards read and follows every planned change; ``deferred``
    collects the identities and contacts of items left to the one-by-one pass; ``written``
    the contacts this plan creates or updates: a second write to one of them waits for the
    one-by-one pass, so each write commits (and is announced, SPEC §3 I6) on its own.
    """

    org_id: str
    owners_before: dict[Pair, str]
    originals: dict[str, ContactItem]
    mode: UpsertMode = "upsert"
    source: str = "api"
    owners: dict[Pair, str] = field(default_factory=dict)
    contacts: dict[str, ContactItem] = field(default_factory=dict)
    results: dict[int, BulkItemResult] = field(default_factory=dict)
    items_of: dict[str, list[int]] = field(default_factory=dict)
    deferred: set[Pair | str] = field(default_factory=set)
    written: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.owners = dict(self.owners_before)
        self.contacts = dict(self.originals)

    def distrust(self, pairs: list[Pair]) -> None:
        """Defer every identity of ``pairs`` whose guard (read first) and contacts (read
        after) disagree — a write landed between the two reads — with the contacts
        involved: items touching them are redone one by one with fresh reads."""
        content = _holders(self.originals)
        for pair in pairs:
            guard, holder = self.owners_before.get(pair), content.get(pair)
            if guard != holder:
                self.deferred |= {pair} | {c for c in (guard, holder) if c is not None}

    def apply(self, item: _Item, stamp: str) -> None:
        """Plan one item.

        Raises:
            Contention: the item must be redone alone (stale snapshot, a contact this plan
                already writes, or it depends on an item that is).
            DomainError: the item fails (identity conflict, rule broken).
        """
        pairs = item.identities()
        held = {field: self.owners[(field, value)] for field, value in pairs
                if (field, value) in self.owners}
        if self.deferred & (set(pairs) | set(held.values())):
            self._defer(item, pairs, *held.values())
        match = match_identities(dict(pairs), held)
        current = self.contacts.get(match.contact_id) if match else None
        if match is not None and (current is None or match.stale(current)
                                  or match.contact_id in self.deferred
                                  or match.contact_id in self.written):
            self._defer(item, pairs, match.contact_id)  # decided on fresh reads instead
        check_mode(self.mode, dict(pairs), match)
        if match is None:
            new = item.changes.new_item(self.org_id, self.source)
            self._claim(None, new)
            self._record(item, "created", new, None)
            return
        assert current is not None
        check_external_id(dict(pairs), match, current)
        on = match.matched_on
        if item.changes.changes_nothing(current):
            self._record(item, "unchanged", current, on)
            return
        new = item.changes.apply(current, stamp)
        self._claim(current, new)
        self._record(item, "updated", new, on)

    def _defer(self, item: _Item, pairs: list[Pair], *contact_ids: str) -> None:
        """Leave ``item`` to the one-by-one pass, and with it every later item touching its
        identities or the contacts holding them (so their input order is kept)."""
        self.deferred |= set(pairs) | set(contact_ids)
        raise Contention(f"item {item.index} is redone alone")

    def _claim(self, current: ContactItem | None, new: ContactItem) -> None:
        """Record ``new`` (replacing ``current``) and move the owners of its identities."""
        if current is not None:
            for pair in current.identities().items():
                if self.owners.get(pair) == current.contact_id:
                    del self.owners[pair]
        self.contacts[new.contact_id] = new
        for pair in new.identities().items():
            self.owners[pair] = new.contact_id

    def _record(self, item: _Item, status: Status, contact: ContactItem,
                on: MatchedOn | None) -> None:
        self.results[item.index] = BulkItemResult(
            index=item.index, status=status, id=contact.contact_id, matched_on=on,
            contact=Contact.from_item(contact))
        self.items_of.setdefault(contact.contact_id, []).append(item.index)
        if status != "unchanged":
            self.written.add(contact.contact_id)


@dataclass
class _Group:
    """Contacts that must be written together, and their actions."""

    contact_ids: list[str]
    actions: list[dict[str, Any]]


def _same_contact(before: ContactItem | None, after: ContactItem) -> bool:
    """True when ``after`` is ``before`` unchanged (a value of another type is a change:
    :func:`~contacts_core.attribute_values.same_value`); a new contact (no ``before``) is not."""
    return before is not None and same_value(before.model_dump(), after.model_dump())


def _groups(plan: _Plan, store: ContactStore) -> list[_Group]:
    """Net writes, grouped so contacts linked by a moved guard share a transaction."""
    changed = {cid for cid, c in plan.contacts.items()
               if not _same_contact(plan.originals.get(cid), c)}
    parent = {cid: cid for cid in changed}

    def root(cid: str) -> str:
        while parent[cid] != cid:
            parent[cid] = parent[parent[cid]]
            cid = parent[cid]
        return cid

    guard_actions: list[tuple[str, dict[str, Any]]] = []
    held_before, held_after = _holders(plan.originals), _holders(plan.contacts)
    for pair in sorted(set(held_before) | set(held_after)):
        before, after = held_before.get(pair), held_after.get(pair)
        if before == after:
            continue
        linked = [c for c in (before, after) if c is not None and c in parent]
        for other in linked[1:]:
            parent[root(other)] = root(linked[0])
        guard_actions.append((linked[0], store.guard_transfer(plan.org_id, *pair, before, after)))
    groups: dict[str, _Group] = {}
    for cid in sorted(changed):
        group = groups.setdefault(root(cid), _Group([], []))
        group.contact_ids.append(cid)
        original = plan.originals.get(cid)
        group.actions.append(store.put_new_action(plan.contacts[cid]) if original is None
                             else store.diff_update_action(original, plan.contacts[cid]))
        group.actions += store.word_actions(original, plan.contacts[cid])
    for owner, action in guard_actions:
        groups[root(owner)].actions.append(action)
    return list(groups.values())


def _pack(groups: list[_Group]) -> list[list[_Group]]:
    """Groups packed into transactions of at most 100 actions (first fit, in order)."""
    batches: list[list[_Group]] = []
    sizes: list[int] = []
    for group in groups:
        for i, size in enumerate(sizes):
            if size + len(group.actions) <= MAX_ACTIONS:
                batches[i].append(group)
                sizes[i] += len(group.actions)
                break
        else:
            batches.append([group])
            sizes.append(len(group.actions))
    return batches


class _GaveUp(Exception):
    """A bulk transaction failed in a way retrying it whole will not mend."""


def _transact_once(store: ContactStore, actions: list[dict[str, Any]]) -> list[str] | None:
    """One bulk ``TransactWriteItems``: None on success, else one cancellation code per
    action; a transaction in progress reads as ``TransactionConflict`` on every action
    (retried like any conflict).

    Raises:
        _GaveUp: any other failure (logged); the caller redoes its items one by one.
    """
    try:
        return transact(store.client, actions)
    except Contention:
        return ["TransactionConflict"] * len(actions)
    except Exception as err:
        logger.exception("bulk transaction failed; its items are redone one by one")
        raise _GaveUp() from err


def _write(store: ContactStore, batch: list[_Group], clock: _Clock) -> list[_Group]:
    """Write one transaction; returns the groups that failed (the rest are written).

    Never raises: a group whose transaction could not be written (throttled, conflicting,
    an unexpected error, no time left to try) is returned as failed, to be redone item by
    item (or answered ``not_attempted``).
    """
    failed: list[_Group] = []
    pending = list(batch)
    for attempt in range(8):
        if not pending:
            return failed
        if clock.out_of_time():
            return failed + pending
        actions = [a for g in pending for a in g.actions]
        if len(actions) > MAX_ACTIONS:
            return failed + pending  # one group too big for a transaction
        try:
            codes = _transact_once(store, actions)
        except _GaveUp:
            return failed + pending
        if codes is None:
            return failed
        bad, offset = [], 0
        for group in pending:
            span = codes[offset:offset + len(group.actions)]
            offset += len(group.actions)
            if any(code not in ("None", "TransactionConflict") for code in span):
                bad.append(group)
        failed += bad
        pending = [g for g in pending if g not in bad]
        if not bad:
            backoff(attempt)
    return failed + pending


def bulk_upsert(org_id: str, raw_items: list[Any],
                store: ContactStore | None = None, mode: UpsertMode = "upsert",
                source: str = "api", deadline: float | None = None) -> BulkUpsertResult:
    """Upsert up to 1000 contacts; the outcome equals upserting them one by one in order
    (with the same ``mode``, see :class:`BulkUpsertRequest`). ``source`` is a created
    contact's ``source`` when its item gives none (``"import"`` for an import's rows).

    ``deadline`` (``time.monotonic()``) is when the answer must be sent: no write starts in
    the last :data:`DEADLINE_MARGIN_S` before it, and the items not written by then fail as
    ``not_attempted`` (nothing written for them; each outcome is still reported, SPEC I6).
    Writes are grouped by the contacts and guards they touch, so the groups written are
    each as one-by-one upserts would have left them.

    Raises:
        ServiceUnavailable: the guards or contacts could not be read (throttled);
            nothing was written.
    """
    db = store or ContactStore()
    parsed = [_parse(raw, i) for i, raw in enumerate(raw_items)]
    items = [p for p in parsed if isinstance(p, _Item)]
    pairs = list(dict.fromkeys(pair for item in items for pair in item.identities()))
    owners = db.guard_owners(org_id, pairs)
    originals = db.get_many(org_id, list(set(owners.values())))
    plan = _Plan(org_id, owners, originals, mode, source)
    plan.distrust(pairs)
    retry_alone: list[_Item] = []
    stamp = now()
    for item in items:
        try:
            plan.apply(item, stamp)
        except Contention:
            retry_alone.append(item)
        except DomainError as err:
            plan.results[item.index] = BulkItemResult(index=item.index, status="failed",
                                                      error=_error(err))
    groups = _groups(plan, db)
    clock = _Clock(deadline)
    with ThreadPoolExecutor(WRITERS) as pool:
        failed_groups = [g for failed in pool.map(lambda b: _write(db, b, clock), _pack(groups))
                         for g in failed]
    failed_items = {ix for g in failed_groups for cid in g.contact_ids
                    for ix in plan.items_of.get(cid, [])}
    retry_alone += [i for i in items if i.index in failed_items]
    last = LastUpserted()
    for item in sorted(retry_alone, key=lambda i: i.index):
        plan.results[item.index] = _upsert_alone(org_id, item, db, mode, last, source) \
            if not clock.out_of_time() else BulkItemResult(index=item.index, status="failed",
                                                           error=_NOT_ATTEMPTED)
    results = [r if isinstance(r, BulkItemResult) else plan.results[r.index] for r in parsed]
    _fit_contacts(results)
    counts = {s: sum(r.status == s for r in results)
              for s in ("created", "updated", "unchanged", "failed")}
    _count_outcomes(counts, results)
    return BulkUpsertResult(**counts, results=results)


def _count_outcomes(counts: dict[str, int], results: list[BulkItemResult]) -> None:
    """Metrics of one bulk upsert: its items created/updated/unchanged, and those refused
    as identity conflicts."""
    count(Metric.CONTACTS_CREATED, counts["created"])
    count(Metric.CONTACTS_UPDATED, counts["updated"])
    count(Metric.CONTACTS_UNCHANGED, counts["unchanged"])
    conflicts = [r for r in results if r.error and r.error.code == IdentityConflict.code]
    count(Metric.IDENTITY_CONFLICTS, len(conflicts))


MAX_SHORT_MESSAGE = 200  # characters of a failed item's message when every error is cut


def _fit_contacts(results: list[BulkItemResult]) -> None:
    """Leave out ``contact`` from the results past Lambda's response budget (1000 large
    contacts would not fit 6 MB); those results keep ``id``, ``status`` and ``matched_on``.

    Should the results not fit even without contacts (failed items naming many members with
    long names, each JSON-escaped six times over: a 6 MB body of them can answer more), each
    failed item's error keeps its ``code`` and the start of its ``message`` only.
    """
    rest = sum(model_size(r.model_copy(update={"contact": None})) for r in results)
    if rest > RESPONSE_BUDGET:
        for result in results:
            if result.error is not None:
                result.error = BulkItemError(
                    code=result.error.code,
                    message=shortened(result.error.message, MAX_SHORT_MESSAGE))
        rest = sum(model_size(r.model_copy(update={"contact": None})) for r in results)
    with_contact = [r for r in results if r.contact is not None]
    keep = fitting([r.contact for r in with_contact if r.contact], RESPONSE_BUDGET - rest)
    for result in with_contact[keep:]:
        result.contact = None


def _upsert_alone(org_id: str, item: _Item, store: ContactStore, mode: UpsertMode,
                  last: LastUpserted, source: str) -> BulkItemResult:
    """The single upsert of one item; any failure becomes the item's outcome. ``last``
    carries the contact of the previous item upserted alone, so a run of items on one
    contact writes once per item instead of reading guards and the contact each time."""
    try:
        outcome, _ = upsert_contact(org_id, item.body, store, mode, counted=False, last=last,
                                    source=source)
    except DomainError as err:
        return BulkItemResult(index=item.index, status="failed", error=_error(err))
    except Exception:
        logger.exception("bulk item %s failed", item.index)
        return BulkItemResult(index=item.index, status="failed", error=_UNCONFIRMED)
    return BulkItemResult(index=item.index, status=outcome.result, id=outcome.contact.id,
                          matched_on=outcome.matched_on, contact=outcome.contact)


def _delete_batches(store: ContactStore, contacts: list[ContactItem]) -> list[list[ContactItem]]:
    """Contacts packed so that each batch's deletes plus one count update per audience
    fit in one transaction."""
    batches: list[list[ContactItem]] = []
    size, audiences = MAX_ACTIONS + 1, set[str]()
    for contact in contacts:
        own = len(store.delete_actions(contact))
        extra = len(contact.audience_ids - audiences)
        if size + own + extra > MAX_ACTIONS:
            batches.append([])
            size, audiences = 0, set()
            extra = len(contact.audience_ids)
        batches[-1].append(contact)
        size += own + extra
        audiences |= contact.audience_ids
    return batches


def _delete_batch(store: ContactStore, org_id: str, batch: list[ContactItem], clock: _Clock
                  ) -> list[ContactItem]:
    """Delete a batch in one transaction; returns the contacts that must be retried alone.
    Never raises (a transaction that cannot be written, or not started in time, leaves its
    contacts to be redone)."""
    pending = list(batch)
    for attempt in range(8):
        if not pending:
            return []
        if clock.out_of_time():
            return pending
        deltas: dict[str, int] = {}
        spans: list[tuple[int, int]] = []
        actions: list[dict[str, Any]] = []
        for contact in pending:
            own = store.delete_actions(contact)
            spans.append((len(actions), len(own)))
            actions += own
            for audience_id in contact.audience_ids:
                deltas[audience_id] = deltas.get(audience_id, 0) - 1
        actions += store.audience_count_updates(org_id, deltas)
        try:
            codes = _transact_once(store, actions)
        except _GaveUp:
            return pending
        if codes is None:
            return []
        if any(c not in ("None", "TransactionConflict") for c in codes[len(actions)
                                                                         - len(deltas):]):
            return pending  # an audience changed under us: settle each contact alone
        bad = [c for c, (start, n) in zip(pending, spans, strict=True)
               if any(code not in ("None", "TransactionConflict")
                      for code in codes[start:start + n])]
        if not bad:
            backoff(attempt)
        pending = [c for c in pending if c not in bad]
        if bad:
            return bad + _delete_batch(store, org_id, pending, clock)
    return pending


def bulk_delete(org_id: str, contact_ids: list[str],
                store: ContactStore | None = None, deadline: float | None = None
                ) -> BulkDeleteResult:
    """Delete up to 1000 contacts: their guards and memberships go with them, audience
    counts stay exact. Ids that are not contacts of the org are listed in ``not_found``;
    once anything is deleted nothing raises, a contact that could not be deleted is listed
    in ``failed`` — ``not_attempted`` when the request had no time left for it
    (``deadline``, as :func:`bulk_upsert`'s).

    Raises:
        ConcurrentModification: the contacts could not even be read (nothing deleted).
    """
    db = store or ContactStore()
    wanted = list(dict.fromkeys(contact_ids))
    found = db.get_many(org_id, [i for i in wanted if is_resource_id(i, CONTACT_PREFIX)])
    not_found = [i for i in wanted if i not in found]
    contacts = [found[i] for i in wanted if i in found]
    clock = _Clock(deadline)
    with ThreadPoolExecutor(WRITERS) as pool:
        retry = [c for left in pool.map(lambda b: _delete_batch(db, org_id, b, clock),
                                        _delete_batches(db, contacts)) for c in left]
    deleted = len(contacts) - len(retry)
    failed: list[BulkDeleteFailure] = []
    for contact in retry:
        if clock.out_of_time():
            failed.append(BulkDeleteFailure(id=contact.contact_id, error=_NOT_ATTEMPTED))
            continue
        try:
            delete_contact(org_id, contact.contact_id, store=db)
            deleted += 1
        except ContactNotFound:
            not_found.append(contact.contact_id)
        except DomainError as err:
            failed.append(BulkDeleteFailure(id=contact.contact_id, error=_error(err)))
        except Exception:
            logger.exception("bulk delete of %s failed", contact.contact_id)
            failed.append(BulkDeleteFailure(id=contact.contact_id, error=_UNCONFIRMED))
    return BulkDeleteResult(deleted=deleted, not_found=not_found, failed=failed)
