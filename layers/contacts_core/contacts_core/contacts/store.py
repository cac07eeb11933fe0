"""DynamoDB access for contacts, identity guards and API keys (with ``dynamodb.py``, the
plumbing it calls through, the only contact code that calls AWS).

Tables (names from the environment set by template.yaml):

* Contacts ``CONTACTS_TABLE``: PK ``org_id``, SK ``contact_id``; GSIs ``updated-index``
  (SK ``updated_at``, projects all) and ``name-index`` (SK ``name_key``, keys only).
* ContactIdentities ``IDENTITIES_TABLE``: PK ``identity`` = ``{org_id}#phone#{e164}``,
  ``{org_id}#email#{email}`` or ``{org_id}#external_id#{external_id}``; attribute
  ``contact_id``. A guard and the contact that holds
  its value are always written in the same ``TransactWriteItems`` (invariants I1, I2).
  Merge records share the table (key layout and reads: :mod:`contacts_core.contacts.records`).
* NameWords ``NAME_WORDS_TABLE``: PK ``org_id``, SK ``word_key`` = ``{word}#{contact_id}``,
  one item per folded word of a contact's names (:func:`contacts_core.names.name_words`),
  written in the same transaction as the contact, so word-prefix search reads a base
  table with consistent reads.
* ApiKeys ``API_KEYS_TABLE``: PK ``key_hash`` (SHA-256 hex of the key).

Transactions hold at most 100 actions and 4 MB (DynamoDB limits); ours hold at most five.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from botocore.exceptions import ClientError

from contacts_core.attribute_values import same_value
from contacts_core.contacts.changes import IDENTITY_FIELDS, ContactChanges
from contacts_core.contacts.models import MAX_ATTRIBUTES, MAX_CONTACT_BYTES, ContactItem
from contacts_core.contacts.records import (
    ADDED_AT_PREFIX,
    MERGE_RECORD_TTL_S,
    MERGED_FROM,
    MERGED_KEY,
    MergeRecords,
    guard_key,
)
from contacts_core.dynamodb import (
    Contention,
    ReadCost,
    VersionConflict,
    _Expression,
    batch_get,
    deserialize,
    dynamodb_client,
    retryable,
    serialize,
    transact,
)
from contacts_core.errors import Conflict, IdentityConflict, MergeRefused
from contacts_core.ids import now
from contacts_core.names import fold, name_key, name_words

Source = Literal["created", "updated", "name", "words", "audience"]


@dataclass(frozen=True)
class _SourceShape:
    table: str  # the ContactStore attribute naming the table
    index: str | None
    partition: str
    sort: str
    position: tuple[str, ...]  # key attributes of an entry: where a walk resumes
    consistent: bool  # a base table read with ConsistentRead


_SOURCES: dict[Source, _SourceShape] = {
    "created": _SourceShape("contacts_table", None, "org_id", "contact_id",
                            ("org_id", "contact_id"), False),
    "updated": _SourceShape("contacts_table", "updated-index", "org_id", "updated_at",
                            ("org_id", "contact_id", "updated_at"), False),
    "name": _SourceShape("contacts_table", "name-index", "org_id", "name_key",
                         ("org_id", "contact_id", "name_key"), False),
    "words": _SourceShape("words_table", None, "org_id", "word_key",
                          ("org_id", "word_key"), True),
    "audience": _SourceShape("members_table", None, "audience_id", "contact_id",
                             ("audience_id", "contact_id"), True),
}


@dataclass(frozen=True)
class Walk:
    """An ordered read of one partition of a table or index, for list pages.

    ``source``: ``created`` (Contacts by ``contact_id``, i.e. creation time),
    ``updated`` (``updated-index``), ``name`` (``name-index``, keys only), ``words``
    (NameWords) or ``audience`` (AudienceMembers by ``contact_id``). ``partition`` is the
    org id (the audience id for ``audience``). The sort key is limited to ``prefix``, or
    to ``lower``..``upper`` (both inclusive, either may be None).
    """

    source: Source
    partition: str
    ascending: bool = True
    prefix: str | None = None
    lower: str | None = None
    upper: str | None = None

    @property
    def carries_contacts(self) -> bool:
        """True when entries are whole contacts (table, ``updated-index``); otherwise
        they are keys and pages read the contacts by key."""
        return self.source in ("created", "updated")

    def position(self, entry: dict[str, Any]) -> dict[str, str]:
        """Where a walk resumes after ``entry`` (its table and index keys)."""
        return {k: str(entry[k]) for k in _SOURCES[self.source].position}


def _words_of(item: ContactItem | None, folding: Callable[[str], str] | None = None
              ) -> list[str]:
    return name_words(item.first_name, item.last_name, item.name, folding) if item else []


def _contact_item(raw: dict[str, Any] | None) -> ContactItem | None:
    return ContactItem(**deserialize(raw)) if raw else None


@dataclass
class MergePlan:
    """A merge as read and decided: ``merged`` (the target after the merge, see
    :func:`contacts_core.contacts.merge.merged_item`) replaces ``target``; ``source`` is deleted."""

    target: ContactItem
    source: ContactItem
    merged: ContactItem


@dataclass
class FieldUpdate:
    """Outcome of :meth:`ContactStore.update_fields`.

    ``item`` is the contact after a successful write; when the condition failed, ``item``
    is None and ``current`` is the contact as it was (None when it does not exist).
    """

    item: ContactItem | None
    current: ContactItem | None


def _update_clauses(expr: _Expression, changes: ContactChanges, updated_at: str,
                    growth: int) -> str:
    sets = [f"{expr.name(f)} = {expr.value(v)}" for f, v in changes.assign.items()]
    removes = [expr.name(f) for f in changes.clear]
    if changes.clear_attributes:
        sets.append(f"{expr.name('attributes')} = {expr.value({})}")
    sets += [f"{expr.name('attributes', k)} = {expr.value(v)}"
             for k, v in changes.attributes_set.items()]
    removes += [expr.name("attributes", k) for k in changes.attributes_remove]
    sets += [f"{expr.name('consent', c)} = {expr.value(v)}" for c, v in changes.consent_set.items()]
    version, size = expr.name("version"), expr.name("content_bytes")
    sets.append(f"{version} = {version} + {expr.value(1)}")
    sets.append(f"{size} = {size} + {expr.value(growth)}")
    sets.append(f"{expr.name('updated_at')} = {expr.value(updated_at)}")
    clause = "SET " + ", ".join(sets)
    return clause + (" REMOVE " + ", ".join(removes) if removes else "")


def _unchanged_condition(expr: _Expression, changes: ContactChanges) -> str:
    """A condition that holds when the stored item already has every requested value."""
    parts = [f"{expr.name(f)} = {expr.value(v)}" for f, v in changes.assign.items()
             if f not in ("name_key", "country_code")]
    parts += [f"attribute_not_exists({expr.name(f)})" for f in changes.clear
              if f != "country_code"]
    if changes.clear_attributes:
        parts.append(f"size({expr.name('attributes')}) = {expr.value(0)}")
    parts += [f"{expr.name('attributes', k)} = {expr.value(v)}"
              for k, v in changes.attributes_set.items()]
    parts += [f"attribute_not_exists({expr.name('attributes', k)})"
              for k in changes.attributes_remove]
    parts += [f"{expr.name('consent', c)} = {expr.value(v)}"
              for c, v in changes.consent_set.items()]
    return " AND ".join(parts)


class ContactStore:
    """Contacts and their identity guards in DynamoDB.

    Every method scopes its keys by ``org_id`` (tenant isolation, I4). Reads that decide
    anything are strongly consistent (I3); GSIs serve listing and search only.
    """

    def __init__(self, client: Any | None = None) -> None:
        self.client = client or dynamodb_client()
        self.contacts_table = os.environ["CONTACTS_TABLE"]
        self.identities_table = os.environ["IDENTITIES_TABLE"]
        self.audiences_table = os.environ.get("AUDIENCES_TABLE", "")
        self.members_table = os.environ.get("MEMBERS_TABLE", "")
        self.words_table = os.environ.get("NAME_WORDS_TABLE", "")
        self.reads = ReadCost()

    # ------------------------------------------------------------------ reads
    def get(self, org_id: str, contact_id: str) -> ContactItem | None:
        """One strongly consistent ``GetItem``; None when absent in this org."""
        response = self.client.get_item(
            TableName=self.contacts_table,
            Key={"org_id": {"S": org_id}, "contact_id": {"S": contact_id}},
            ConsistentRead=True, ReturnConsumedCapacity="TOTAL",
        )
        self.reads.record(response)
        return _contact_item(response.get("Item"))

    @staticmethod
    def guard_id(org_id: str, field: str, value: str) -> str:
        """The guard key of one identity value (``records.guard_key``)."""
        return guard_key(org_id, field, value)

    def read_guards(self, org_id: str, identities: dict[str, str]) -> dict[str, str]:
        """Which contact holds each identity: ``{"phone": contact_id, ...}`` for held ones.

        One strongly consistent ``BatchGetItem`` (UnprocessedKeys retried with backoff).
        """
        held = self.guard_owners(org_id, list(identities.items()))
        return {field: held[(field, value)] for field, value in identities.items()
                if (field, value) in held}

    def guard_owners(self, org_id: str, identities: list[tuple[str, str]]
                     ) -> dict[tuple[str, str], str]:
        """Holder of each ``(field, value)`` identity that is guarded (consistent reads,
        100 keys per ``BatchGetItem``)."""
        pair_of = {self.guard_id(org_id, f, v): (f, v) for f, v in identities}
        raw = batch_get(self.client, self.identities_table,
                        [{"identity": {"S": k}} for k in pair_of], self.reads)
        return {pair_of[r["identity"]["S"]]: r["contact_id"]["S"] for r in raw}

    def guard_transfer(self, org_id: str, field: str, value: str, before: str | None,
                       after: str | None) -> dict[str, Any]:
        """One action moving a guard from contact ``before`` to ``after`` (either None):
        put if new, overwrite if still ``before``'s, delete if released."""
        if after is None:
            assert before is not None
            return self._guard_delete(org_id, field, value, before)
        action = self._guard_put(org_id, field, value, after)
        if before is not None:
            action["Put"]["ConditionExpression"] = "#c = :b"
            action["Put"]["ExpressionAttributeNames"] = {"#c": "contact_id"}
            action["Put"]["ExpressionAttributeValues"] = {":b": {"S": before}}
        return action

    def put_new_action(self, item: ContactItem) -> dict[str, Any]:
        """The ``Put`` of a new contact (fails if the id exists)."""
        return {"Put": {"TableName": self.contacts_table, "Item": serialize(item.model_dump()),
                        "ConditionExpression": "attribute_not_exists(contact_id)"}}

    def word_actions(self, before: ContactItem | None, after: ContactItem | None
                     ) -> list[dict[str, Any]]:
        """NameWords writes that take a contact from ``before`` to ``after`` (None: absent):
        a ``Put`` per word it gains, a ``Delete`` per word it loses — nothing when its
        names keep their words. They join the contact's own transaction, whose condition
        on the contact orders them.

        ``before`` may have been indexed by an earlier version, which folded names without
        :func:`contacts_core.names.search_fold`'s letters (``søren`` for "Søren", now
        ``soren``); its ``name_key`` tells (an earlier one is not
        :func:`contacts_core.names.name_key` of its name). Then a word whose two spellings
        differ is put again and its old spelling deleted, so every write that reads such a
        contact first (a name or identifier change, bulk, merge, delete) heals its words; a
        contact this version indexed costs no extra write."""
        item = after or before
        if item is None:
            return []
        current = set(_words_of(before))
        indexed_earlier = before is not None and \
            before.name_key != name_key(before.name, before.contact_id)
        earlier = set(_words_of(before, fold)) if indexed_earlier else current
        new = set(_words_of(after))
        return self._word_writes(item, new - (current & earlier), (current | earlier) - new)

    def _word_writes(self, item: ContactItem, puts: set[str], deletes: set[str]
                     ) -> list[dict[str, Any]]:
        def key(word: str) -> dict[str, Any]:
            return {"org_id": {"S": item.org_id},
                    "word_key": {"S": f"{word}#{item.contact_id}"}}

        return ([{"Put": {"TableName": self.words_table,
                          "Item": key(w) | {"contact_id": {"S": item.contact_id}}}}
                 for w in sorted(puts)]
                + [{"Delete": {"TableName": self.words_table, "Key": key(w)}}
                   for w in sorted(deletes)])

    def holds_any_word(self, item: ContactItem, words: set[str]) -> bool:
        """True when NameWords holds any of ``words`` for ``item`` (one consistent
        ``BatchGetItem``; at most 100 words)."""
        keys = [{"org_id": {"S": item.org_id}, "word_key": {"S": f"{w}#{item.contact_id}"}}
                for w in sorted(words)]
        return bool(keys) and bool(batch_get(self.client, self.words_table, keys, self.reads))

    def reindex_names(self, item: ContactItem) -> None:
        """Index ``item``'s names as this version does, whatever an earlier one wrote: its
        ``name_key`` (``name-index``) and a NameWords item per word (put again), the
        spellings of :func:`contacts_core.names.fold` deleted where they differ — one
        ``TransactWriteItems`` on condition that the contact is still at ``item.version``.
        Neither ``version`` nor ``updated_at`` moves: nothing the API shows changes.

        Raises:
            VersionConflict: the contact changed or went since ``item`` was read.
            Contention: another transaction was touching the same items.
        """
        expr = _Expression()
        key = {"org_id": {"S": item.org_id}, "contact_id": {"S": item.contact_id}}
        check = {"TableName": self.contacts_table, "Key": key,
                 "ConditionExpression": f"{expr.name('version')} = {expr.value(item.version)}"}
        sort_key = name_key(item.name, item.contact_id)
        if item.name_key != sort_key:
            check["UpdateExpression"] = f"SET {expr.name('name_key')} = {expr.value(sort_key)}"
        check |= {"ExpressionAttributeNames": expr.names,
                  "ExpressionAttributeValues": expr.values}
        contact = {"Update" if "UpdateExpression" in check else "ConditionCheck": check}
        new = set(_words_of(item))
        self._transact([contact, *self._word_writes(item, new, set(_words_of(item, fold)) - new)],
                       {})

    def diff_update_action(self, current: ContactItem, new: ContactItem) -> dict[str, Any]:
        """The ``Update`` turning ``current`` into ``new`` under a version condition."""
        return {"Update": self._diff_update(current, new)}

    def get_many(self, org_id: str, contact_ids: list[str]) -> dict[str, ContactItem]:
        """Contacts of ``org_id`` by id (strongly consistent, 100 keys per call); ids that
        do not exist in this org are absent from the result."""
        keys = [{"org_id": {"S": org_id}, "contact_id": {"S": cid}}
                for cid in dict.fromkeys(contact_ids)]
        raw = batch_get(self.client, self.contacts_table, keys, self.reads)
        items = [ContactItem(**deserialize(r)) for r in raw]
        return {i.contact_id: i for i in items}

    def walk(self, walk: Walk, start: dict[str, str] | None, limit: int
             ) -> tuple[list[dict[str, Any]], dict[str, str] | None]:
        """One ``Query`` of ``walk`` from after ``start``: up to ``limit`` entries (plain
        dicts) and the position to resume after, None when the walk has ended. Base tables
        of keys (NameWords, AudienceMembers) are read strongly consistent; the contacts
        table and its GSIs eventually consistent. Consumed capacity adds to
        :attr:`reads`."""
        shape = _SOURCES[walk.source]
        expr = _Expression()
        condition = f"{expr.name(shape.partition)} = {expr.value(walk.partition)}"
        sort = expr.name(shape.sort) if (walk.prefix, walk.lower, walk.upper) != (None,) * 3 \
            else ""
        if walk.prefix is not None:
            condition += f" AND begins_with({sort}, {expr.value(walk.prefix)})"
        elif walk.lower is not None and walk.upper is not None:
            condition += (f" AND {sort} BETWEEN {expr.value(walk.lower)} "
                          f"AND {expr.value(walk.upper)}")
        elif walk.lower is not None:
            condition += f" AND {sort} >= {expr.value(walk.lower)}"
        elif walk.upper is not None:
            condition += f" AND {sort} <= {expr.value(walk.upper)}"
        params: dict[str, Any] = {
            "TableName": getattr(self, shape.table), "KeyConditionExpression": condition,
            "ExpressionAttributeNames": expr.names, "ExpressionAttributeValues": expr.values,
            "ScanIndexForward": walk.ascending, "Limit": limit,
            "ConsistentRead": shape.consistent, "ReturnConsumedCapacity": "TOTAL"}
        if shape.index:
            params["IndexName"] = shape.index
        if start:
            params["ExclusiveStartKey"] = {k: {"S": v} for k, v in start.items()}
        response = self.client.query(**params)
        self.reads.record(response)
        last = response.get("LastEvaluatedKey")
        return ([deserialize(r) for r in response["Items"]],
                {k: v["S"] for k, v in last.items()} if last else None)

    # ------------------------------------------------------------------ writes
    def _guard_put(self, org_id: str, field: str, value: str, contact_id: str) -> dict[str, Any]:
        return {"Put": {
            "TableName": self.identities_table,
            "Item": {"identity": {"S": self.guard_id(org_id, field, value)},
                     "contact_id": {"S": contact_id}, "org_id": {"S": org_id}},
            "ConditionExpression": "attribute_not_exists(#i) OR #c = :c",
            "ExpressionAttributeNames": {"#i": "identity", "#c": "contact_id"},
            "ExpressionAttributeValues": {":c": {"S": contact_id}},
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }}

    def _guard_delete(self, org_id: str, field: str, value: str, contact_id: str
                      ) -> dict[str, Any]:
        return {"Delete": {
            "TableName": self.identities_table,
            "Key": {"identity": {"S": self.guard_id(org_id, field, value)}},
            "ConditionExpression": "#c = :c",
            "ExpressionAttributeNames": {"#c": "contact_id"},
            "ExpressionAttributeValues": {":c": {"S": contact_id}},
        }}

    def _transact(self, actions: list[dict[str, Any]], guard_fields: dict[int, str]) -> None:
        """Run one ``TransactWriteItems``; map cancellation reasons to domain errors.

        ``guard_fields`` maps the index of each guard *put* to its field, so a failed
        condition there becomes :class:`IdentityConflict` naming the holder.
        Raises:
            IdentityConflict: a guard is held by another contact.
            VersionConflict: the contact's own condition failed.
            Contention: another transaction was touching the same items.
        """
        try:
            self.client.transact_write_items(TransactItems=actions)
        except ClientError as err:
            if retryable(err):
                raise Contention(str(err)) from err
            if err.response["Error"]["Code"] != "TransactionCanceledException":
                raise
            reasons: list[dict[str, Any]] = err.response.get(  # type: ignore[assignment]
                "CancellationReasons", [])
            conflicts = [
                Conflict(guard_fields[i], reason.get("Item", {}).get("contact_id", {}).get("S", ""))
                for i, reason in enumerate(reasons)
                if i in guard_fields and reason.get("Code") == "ConditionalCheckFailed"
            ]
            if conflicts:
                raise IdentityConflict(conflicts) from err
            if any(r.get("Code") == "ConditionalCheckFailed" for r in reasons):
                raise VersionConflict() from err
            raise Contention(str(err)) from err

    def create(self, item: ContactItem) -> None:
        """Write a new contact and its guards in one ``TransactWriteItems``.

        Raises:
            IdentityConflict: phone or email already guarded for another contact.
            Contention: a concurrent transaction touched the same guard.
        """
        actions = [self.put_new_action(item)]
        guard_fields: dict[int, str] = {}
        for field, value in item.identities().items():
            guard_fields[len(actions)] = field
            actions.append(self._guard_put(item.org_id, field, value, item.contact_id))
        self._transact(actions + self.word_actions(None, item), guard_fields)

    def update_fields(self, org_id: str, contact_id: str, changes: ContactChanges,
                      updated_at: str, *, expected_version: int | None = None,
                      only_if_changed: bool = False,
                      holding: dict[str, str] | None = None) -> FieldUpdate:
        """Apply non-identity changes with one conditional ``UpdateItem`` (no read first).

        The condition requires the contact to exist, ``expected_version`` when given, its
        stored name parts to equal those ``changes`` set (a name change moves name words:
        the caller then reads and transacts), that it still holds the ``holding``
        identities ({field: value}; an upsert's match, so a guard read that went stale
        cannot update the wrong contact), room for new attribute keys
        (``size(attributes)`` bound) and within 16 KB (``content_bytes``, an upper bound of
        the contact's size, grown by ``changes.growth_bound()``), a stored ``updated_at``
        not later than ``updated_at`` (a write that raced ahead with a later stamp: the
        caller then reads and stamps the later of the two, so a contact's ``updated_at``
        never goes back as its ``version`` goes up — SPEC §9.3's sync walks by it), and
        with ``only_if_changed`` that some value differs — so an unchanged write writes
        nothing.
        On a failed condition the stored item comes back
        (``ReturnValuesOnConditionCheckFailure``).

        Raises:
            ValueError: ``changes`` touch an identifier or clear a name part (guards or
                name words must move: use replace()).
            Contention: DynamoDB answered a transaction conflict.
        """
        if changes.needs_read():
            raise ValueError("identity changes and name clears need replace(): guards and "
                             "name words move with them")
        changes = changes.with_derived(contact_id)
        expr = _Expression()
        growth = changes.growth_bound()
        update = _update_clauses(expr, changes, updated_at, growth)
        conditions = [f"attribute_exists({expr.name('contact_id')})",
                      # API timestamps are fixed-width UTC: as strings they sort as times
                      f"{expr.name('updated_at')} <= {expr.value(updated_at)}"]
        if expected_version is not None:
            conditions.append(f"{expr.name('version')} = {expr.value(expected_version)}")
        conditions += [f"{expr.name(f)} = {expr.value(v)}" for f, v in (holding or {}).items()]
        # a name part may only be "set" to what it is: a real change moves name words
        conditions += [f"{expr.name(f)} = {expr.value(v)}"
                       for f, v in changes.names_given().items()]
        if changes.attributes_set:
            room = MAX_ATTRIBUTES - len(changes.attributes_set)
            conditions.append(f"size({expr.name('attributes')}) <= {expr.value(room)}")
        # room within 16 KB by the stored upper bound (absent on older items: read instead)
        conditions.append(f"{expr.name('content_bytes')} <= "
                          f"{expr.value(MAX_CONTACT_BYTES - growth)}")
        unchanged = _unchanged_condition(expr, changes) if only_if_changed else ""
        if unchanged:  # empty when only identifiers were sent: nothing to compare
            conditions.append(f"NOT ({unchanged})")
        try:
            response = self.client.update_item(
                TableName=self.contacts_table,
                Key={"org_id": {"S": org_id}, "contact_id": {"S": contact_id}},
                UpdateExpression=update,
                ConditionExpression=" AND ".join(conditions),
                ExpressionAttributeNames=expr.names,
                ExpressionAttributeValues=expr.values,
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as err:
            if retryable(err):
                raise Contention(str(err)) from err
            if err.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            old: dict[str, Any] | None = err.response.get("Item")  # type: ignore[assignment]
            return FieldUpdate(None, _contact_item(old))
        return FieldUpdate(_contact_item(response["Attributes"]), None)

    def _diff_update(self, current: ContactItem, new: ContactItem,
                     bookkeeping: dict[str, Any] | None = None) -> dict[str, Any]:
        """An ``Update`` turning ``current`` into ``new`` if still at ``current.version``.

        Only fields that differ are written, so attributes this model does not know
        (bookkeeping such as audience memberships) are left as they are. ``bookkeeping``
        sets such attributes too, and then the memberships must also be as read
        (``membership_rev``).
        """
        expr = _Expression()
        before, after = current.model_dump(), new.model_dump()
        sets = [f"{expr.name(k)} = {expr.value(v)}" for k, v in after.items()
                if v is not None and not same_value(v, before.get(k))]
        sets += [f"{expr.name(k)} = {expr.value(v)}" for k, v in (bookkeeping or {}).items()]
        removes = [expr.name(k) for k, v in after.items()
                   if v is None and before.get(k) is not None]
        clause = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        condition = f"{expr.name('version')} = {expr.value(current.version)}"
        if bookkeeping:
            condition += (f" AND {expr.name('membership_rev')} = "
                          f"{expr.value(current.membership_rev)}")
        return {
            "TableName": self.contacts_table,
            "Key": {"org_id": {"S": current.org_id}, "contact_id": {"S": current.contact_id}},
            "UpdateExpression": clause,
            "ConditionExpression": condition,
            "ExpressionAttributeNames": expr.names,
            "ExpressionAttributeValues": expr.values,
        }

    def replace_actions(self, current: ContactItem, new: ContactItem
                        ) -> tuple[list[dict[str, Any]], dict[int, str]]:
        """Transaction actions that write ``new`` over ``current`` and move its guards.

        Returns the actions and, for each guard put, its index → field (for
        :meth:`_transact`'s conflict mapping).
        """
        actions: list[dict[str, Any]] = [{"Update": self._diff_update(current, new)}]
        guard_fields: dict[int, str] = {}
        for field in IDENTITY_FIELDS:
            old_value, new_value = getattr(current, field), getattr(new, field)
            if old_value == new_value:
                continue
            if new_value:
                guard_fields[len(actions)] = field
                actions.append(self._guard_put(new.org_id, field, new_value, new.contact_id))
            if old_value:
                actions.append(self._guard_delete(current.org_id, field, old_value,
                                                  current.contact_id))
        return actions + self.word_actions(current, new), guard_fields

    def replace(self, current: ContactItem, new: ContactItem) -> None:
        """Write ``new`` over ``current`` if it is still at ``current.version``.

        Guards for identifiers that change, and name words that change, are put and
        released in the same ``TransactWriteItems``; without either it is one conditional
        ``UpdateItem``.
        Raises:
            IdentityConflict, VersionConflict, Contention: as :meth:`_transact`.
        """
        actions, guard_fields = self.replace_actions(current, new)
        if len(actions) > 1:
            self._transact(actions, guard_fields)
            return
        try:
            self.client.update_item(**actions[0]["Update"])
        except ClientError as err:
            if err.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise VersionConflict() from err
            if retryable(err):
                raise Contention(str(err)) from err
            raise

    def release_stale_guards(self, org_id: str, holder_id: str, holding: dict[str, str],
                             holder: ContactItem | None) -> None:
        """Delete the guards of ``holding`` ({field: value}) that point at ``holder_id``
        although that contact, as read (``holder``, None when absent), does not hold the
        value — leftovers of writes made before every path moved guards atomically (I2).

        One ``TransactWriteItems``: a ``ConditionCheck`` that the contact is still absent or
        at the version read, plus each guard delete conditioned on still pointing at it;
        when anything moved meanwhile it is cancelled and nothing changes.
        Raises:
            Contention: conflicting (callers retry).
        """
        stale = {f: v for f, v in holding.items()
                 if holder is None or getattr(holder, f) != v}
        if not stale:
            return
        expr = _Expression()
        condition = (f"attribute_not_exists({expr.name('contact_id')})" if holder is None
                     else f"{expr.name('version')} = {expr.value(holder.version)}")
        check: dict[str, Any] = {
            "TableName": self.contacts_table,
            "Key": {"org_id": {"S": org_id}, "contact_id": {"S": holder_id}},
            "ConditionExpression": condition, "ExpressionAttributeNames": expr.names}
        if expr.values:
            check["ExpressionAttributeValues"] = expr.values
        transact(self.client, [{"ConditionCheck": check}] + [
            self._guard_delete(org_id, f, v, holder_id) for f, v in stale.items()])

    def delete_actions(self, item: ContactItem) -> list[dict[str, Any]]:
        """Actions deleting ``item`` (if still at its version and memberships), its guards
        and its memberships; audience counts are left to the caller (see
        :func:`audience_count_updates`), because one transaction may touch an audience once.
        """
        expr = _Expression()
        condition = (f"{expr.name('version')} = {expr.value(item.version)} AND "
                     f"{expr.name('membership_rev')} = {expr.value(item.membership_rev)}")
        actions: list[dict[str, Any]] = [{"Delete": {
            "TableName": self.contacts_table,
            "Key": {"org_id": {"S": item.org_id}, "contact_id": {"S": item.contact_id}},
            "ConditionExpression": condition,
            "ExpressionAttributeNames": expr.names,
            "ExpressionAttributeValues": expr.values,
        }}]
        actions += [self._guard_delete(item.org_id, f, v, item.contact_id)
                    for f, v in item.identities().items()]
        actions += [{"Delete": {
            "TableName": self.members_table,
            "Key": {"audience_id": {"S": aud}, "contact_id": {"S": item.contact_id}},
        }} for aud in sorted(item.audience_ids)]
        return actions + self.word_actions(item, None)

    def audience_count_updates(self, org_id: str, deltas: dict[str, int]) -> list[dict[str, Any]]:
        """One ``Update`` per audience adding ``delta`` to ``contact_count`` (I5) and
        setting its ``updated_at`` to now, as adding or removing members through the
        audience does (a count change is not an ``audience.updated`` event)."""
        stamp = now()
        return [{"Update": {
            "TableName": self.audiences_table,
            "Key": {"org_id": {"S": org_id}, "audience_id": {"S": aud}},
            "UpdateExpression": "ADD contact_count :d SET updated_at = :u",
            "ConditionExpression": "attribute_exists(audience_id)",
            "ExpressionAttributeValues": {":d": {"N": str(delta)}, ":u": {"S": stamp}},
        }} for aud, delta in sorted(deltas.items()) if delta]

    def delete(self, item: ContactItem) -> None:
        """Delete the contact, release its guards and leave its audiences, atomically.

        Raises:
            VersionConflict: the contact or its memberships changed since it was read.
        """
        actions = self.delete_actions(item)
        actions += self.audience_count_updates(item.org_id,
                                               dict.fromkeys(item.audience_ids, -1))
        self._transact(actions, {})

    def merge_actions(self, plan: MergePlan) -> list[dict[str, Any]]:
        """The actions of one merge (see :class:`MergePlan`): write the merged target
        (version and memberships as read), delete the source (likewise), move each source
        guard the target takes and release the others, move the source's memberships (an
        audience both were in loses one member; a moved membership needs the audience alive
        and not being deleted), and record ``{org}#merged#{source}`` → target.

        Raises:
            MergeRefused: over the 100 actions of one transaction (many audiences to move).
        """
        target, source, merged = plan.target, plan.source, plan.merged
        org_id, stamp = target.org_id, merged.updated_at
        moved = sorted(source.audience_ids - target.audience_ids)
        bookkeeping = {ADDED_AT_PREFIX + aud: stamp for aud in moved}
        actions: list[dict[str, Any]] = [
            {"Update": self._diff_update(target, merged,
                                         bookkeeping | {MERGED_FROM: source.contact_id})}]
        source_delete, *source_rest = self.delete_actions(source)
        actions.append(source_delete)
        for field, value in source.identities().items():
            taken = getattr(merged, field) == value
            actions.append(self.guard_transfer(org_id, field, value, source.contact_id,
                                               target.contact_id if taken else None))
        actions += [a for a in source_rest
                    if a["Delete"]["TableName"] in (self.members_table, self.words_table)]
        actions += self.word_actions(target, merged)
        for aud in moved:
            actions.append({"Put": {
                "TableName": self.members_table,
                "Item": {"audience_id": {"S": aud}, "contact_id": {"S": target.contact_id},
                         "org_id": {"S": org_id}, "added_at": {"S": stamp}},
                "ConditionExpression": "attribute_not_exists(contact_id)"}})
            actions.append({"ConditionCheck": {
                "TableName": self.audiences_table,
                "Key": {"org_id": {"S": org_id}, "audience_id": {"S": aud}},
                "ConditionExpression": "attribute_exists(audience_id) AND "
                                       "attribute_not_exists(deleting)"}})
        actions += self.audience_count_updates(
            org_id, dict.fromkeys(source.audience_ids & target.audience_ids, -1))
        actions.append({"Put": {
            "TableName": self.identities_table,
            "Item": {"identity": {"S": self.guard_id(org_id, MERGED_KEY, source.contact_id)},
                     "contact_id": {"S": target.contact_id}, "org_id": {"S": org_id},
                     "merged_at": {"S": stamp},
                     "expires_at": {"N": str(int(time.time()) + MERGE_RECORD_TTL_S)}},
            "ConditionExpression": "attribute_not_exists(#i)",
            "ExpressionAttributeNames": {"#i": "identity"}}})
        if len(actions) > 100:
            raise MergeRefused(
                f"the merge would take {len(actions)} writes, over the 100 of one atomic "
                f"transaction (the source is in {len(source.audience_ids)} audiences): remove "
                "the source from some audiences, then merge")
        return actions

    def merge(self, plan: MergePlan) -> None:
        """Write a merge in one ``TransactWriteItems`` (:meth:`merge_actions`).

        Raises:
            MergeRefused: too big for one transaction (nothing written).
            VersionConflict: either contact, a guard, a membership or an audience changed
                since it was read; Contention: conflicting (callers retry).
        """
        self._transact(self.merge_actions(plan), {})

    def merged_into(self, org_id: str, contact_id: str) -> str | None:
        """The contact that ``contact_id`` was merged into, or None when it was not merged
        (:meth:`~contacts_core.contacts.records.MergeRecords.merged_into`)."""
        return MergeRecords(self.client).merged_into(org_id, contact_id)

    # ------------------------------------------------------------ diagnostics
    def scan_guards(self) -> Iterator[tuple[str, str]]:
        """Every guard as ``(identity, contact_id)`` — for invariant checks and ops tooling."""
        for page in self.client.get_paginator("scan").paginate(TableName=self.identities_table):
            for raw in page["Items"]:
                yield raw["identity"]["S"], raw["contact_id"]["S"]

    def scan_contacts(self, org_id: str | None = None) -> Iterator[ContactItem]:
        """Every contact of every org, or of ``org_id`` (a ``Scan`` filtered on it, still
        reading the whole table) — for invariant checks and ops tooling, never a request."""
        params: dict[str, Any] = {"TableName": self.contacts_table}
        if org_id is not None:
            params |= {"FilterExpression": "org_id = :org",
                       "ExpressionAttributeValues": {":org": {"S": org_id}}}
        for page in self.client.get_paginator("scan").paginate(**params):
            for raw in page["Items"]:
                yield ContactItem(**deserialize(raw))
