"""DynamoDB access for audiences and memberships (with :mod:`contacts_core.dynamodb`).

* Audiences ``AUDIENCES_TABLE``: PK ``org_id``, SK ``audience_id`` (``aud_…``). The same
  table holds one name guard per audience, SK ``name#{key}`` with ``guard_for``, the key
  being :func:`~contacts_core.names.audience_name_key`, so names are unique per org under
  concurrency; guards never reach the API or webhooks. Versions before this one keyed a
  guard by :func:`~contacts_core.names.fold` alone, which differs for names with invisible
  characters: writes also check (a new name) and release (an old name) that earlier key,
  so an earlier audience's name stays taken, its guard never outlives it, and a rename
  moves it to the new key (:func:`_guard_keys`; no job re-keys guards otherwise).
* AudienceMembers ``MEMBERS_TABLE``: PK ``audience_id``, SK ``contact_id``; GSI
  ``contact-index``. Each contact also lists its audiences (``audience_ids``) and counts
  membership changes (``membership_rev``), so deleting a contact removes its memberships
  in the same transaction, from a consistent read (I5). The contact also keeps when it
  joined each audience, as ``added_at#{audience_id}``: membership events are told from the
  Contacts stream (one stream per contact, so in commit order) and need it on removal.
* Deleting an audience: :meth:`AudienceStore.mark_deleting` flags it (one conditional
  write; adds stop), then members go in transactions of ≤ 49 and finally the empty
  audience and its name guard (:meth:`AudienceStore.finish_delete`).
"""

from __future__ import annotations

import os
from typing import Any

from botocore.exceptions import ClientError

from contacts_core.audiences.models import AudienceItem
from contacts_core.contacts.records import ADDED_AT_PREFIX
from contacts_core.dynamodb import (
    Contention,
    _Expression,
    batch_get,
    cancellation_reasons,
    deserialize,
    dynamodb_client,
    read_page,
    retryable,
    serialize,
    transact,
)
from contacts_core.errors import AudienceNameTaken
from contacts_core.ids import AUDIENCE_PREFIX, is_resource_id
from contacts_core.names import audience_name_key, fold

NAME_GUARD_PREFIX = "name#"
MAX_AUDIENCES_PER_CONTACT = 45  # so deleting a contact fits in one 100-action transaction


def _key(org_id: str, sort_key: str) -> dict[str, Any]:
    return {"org_id": {"S": org_id}, "audience_id": {"S": sort_key}}


def _guard_keys(name: str) -> tuple[str, str]:
    """``(key, earlier key)`` of the name guard of ``name``: ``name#`` + its
    :func:`~contacts_core.names.audience_name_key`, and ``name#`` + the :func:`fold` that
    versions before this one keyed it by — ``""`` when that is the same key."""
    key, earlier = NAME_GUARD_PREFIX + audience_name_key(name), NAME_GUARD_PREFIX + fold(name)
    return key, "" if earlier == key else earlier


class AudienceStore:
    """Audiences, their name guards and memberships."""

    def __init__(self, client: Any | None = None) -> None:
        self.client = client or dynamodb_client()
        self.audiences_table = os.environ["AUDIENCES_TABLE"]
        self.members_table = os.environ["MEMBERS_TABLE"]
        self.contacts_table = os.environ["CONTACTS_TABLE"]

    def get(self, org_id: str, audience_id: str) -> AudienceItem | None:
        """One strongly consistent ``GetItem``; None when absent (or not an ``aud_`` id)."""
        if not is_resource_id(audience_id, AUDIENCE_PREFIX):
            return None
        raw = self.client.get_item(TableName=self.audiences_table,
                                   Key=_key(org_id, audience_id), ConsistentRead=True).get("Item")
        return AudienceItem(**deserialize(raw)) if raw else None

    def get_many(self, org_id: str, audience_ids: list[str]) -> dict[str, AudienceItem]:
        """Audiences of ``org_id`` by id (strongly consistent ``BatchGetItem``, 100 keys per
        call); absent ones, and ids that are not ``aud_`` ids, are left out."""
        keys = [_key(org_id, a) for a in dict.fromkeys(audience_ids)
                if is_resource_id(a, AUDIENCE_PREFIX)]
        items = [AudienceItem(**deserialize(r))
                 for r in batch_get(self.client, self.audiences_table, keys)]
        return {i.audience_id: i for i in items}

    def _take_name(self, item: AudienceItem, kept: bool = False) -> list[dict[str, Any]]:
        """Take ``item``'s name: put its guard (``kept``: or keep it, when the audience
        holds it already), and check that no audience of an earlier version holds the
        name under the earlier key. Each condition that fails means "name taken" and
        returns the holder: in a transaction these actions come right after the first.
        """
        key, earlier = _guard_keys(item.name)
        mine = {"ConditionExpression": "attribute_not_exists(guard_for) OR guard_for = :a",
                "ExpressionAttributeValues": {":a": {"S": item.audience_id}},
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}
        put = {"TableName": self.audiences_table,
               "Item": serialize({"org_id": item.org_id, "audience_id": key,
                                  "guard_for": item.audience_id}),
               **(mine if kept else {"ConditionExpression": "attribute_not_exists(audience_id)",
                                     "ReturnValuesOnConditionCheckFailure": "ALL_OLD"})}
        actions: list[dict[str, Any]] = [{"Put": put}]
        if earlier:
            actions.append({"ConditionCheck": {"TableName": self.audiences_table,
                                               "Key": _key(item.org_id, earlier), **mine}})
        return actions

    def _release_name(self, item: AudienceItem, earlier_only: bool = False
                      ) -> list[dict[str, Any]]:
        """Release ``item``'s name: delete its guard, and the one under the earlier key
        (``earlier_only``: just that one); either may be absent, and another audience's
        guard is never deleted."""
        key, earlier = _guard_keys(item.name)
        return [{"Delete": {
            "TableName": self.audiences_table, "Key": _key(item.org_id, k),
            "ConditionExpression": "attribute_not_exists(guard_for) OR guard_for = :a",
            "ExpressionAttributeValues": {":a": {"S": item.audience_id}},
        }} for k in ((earlier,) if earlier_only else (key, earlier)) if k]

    def _run_with_name_guard(self, actions: list[dict[str, Any]], guard_index: int | None,
                             name: str) -> list[str] | None:
        """Run the transaction; None on success, the cancellation codes when a condition
        other than the name guard's failed.

        Raises:
            AudienceNameTaken: the name guard's condition failed (it names the holder).
            Contention: cancelled by a concurrent transaction.
        """
        try:
            self.client.transact_write_items(TransactItems=actions)
        except ClientError as err:
            codes = cancellation_reasons(err)
            if codes is None:
                if retryable(err):
                    raise Contention(str(err)) from err
                raise
            taken = [] if guard_index is None else [
                n for n in range(guard_index, guard_index + (2 if _guard_keys(name)[1] else 1))
                if codes[n] == "ConditionalCheckFailed"]
            if taken:
                reasons: list[dict[str, Any]] = err.response.get(  # type: ignore[assignment]
                    "CancellationReasons", [])
                holder = reasons[taken[0]].get("Item", {}).get("guard_for", {}).get("S", "")
                raise AudienceNameTaken(name, holder) from err
            if "ConditionalCheckFailed" not in codes:
                raise Contention(str(err)) from err
            return codes
        return None

    def create(self, item: AudienceItem) -> None:
        """Write the audience and its name guard in one transaction.

        Raises:
            AudienceNameTaken: another audience of the org has the name.
            Contention: cancelled by a concurrent transaction (or the id existed).
        """
        actions = [{"Put": {"TableName": self.audiences_table,
                            "Item": serialize(item.model_dump(exclude={"deleting"})),
                            "ConditionExpression": "attribute_not_exists(audience_id)"}},
                   *self._take_name(item)]
        if self._run_with_name_guard(actions, 1, item.name) is not None:
            raise Contention("audience id already taken")

    def update(self, current: AudienceItem, new: AudienceItem) -> bool:
        """Write the new name/description; moves the name guard on a rename.

        Returns False when the audience vanished or started deleting meanwhile.
        Raises:
            AudienceNameTaken: the new name belongs to another audience.
            Contention: cancelled by a concurrent transaction.
        """
        expr = _Expression()
        sets = [f"{expr.name('name')} = {expr.value(new.name)}",
                f"{expr.name('updated_at')} = {expr.value(new.updated_at)}"]
        clause = "SET " + ", ".join(sets)
        if new.description is None:
            clause += f" REMOVE {expr.name('description')}"
        else:
            clause += f", {expr.name('description')} = {expr.value(new.description)}"
        update = {"Update": {
            "TableName": self.audiences_table, "Key": _key(current.org_id, current.audience_id),
            "UpdateExpression": clause,
            "ConditionExpression": f"attribute_exists({expr.name('audience_id')}) AND "
                                   f"attribute_not_exists({expr.name('deleting')})",
            "ExpressionAttributeNames": expr.names, "ExpressionAttributeValues": expr.values}}
        if _guard_keys(new.name) == _guard_keys(current.name):
            return self._run_with_name_guard([update], None, new.name) is None
        if audience_name_key(new.name) == audience_name_key(current.name):
            # the same name but for invisible characters: the guard stays (or, for an
            # audience of an earlier version, moves from the old spelling's earlier key)
            actions = [update, *self._take_name(new, kept=True),
                       *self._release_name(current, earlier_only=True)]
        else:
            actions = [update, *self._take_name(new), *self._release_name(current)]
        return self._run_with_name_guard(actions, 1, new.name) is None

    def page(self, org_id: str, limit: int, start_key: dict[str, str] | None
             ) -> tuple[list[AudienceItem], dict[str, str] | None]:
        """Audiences of the org, oldest first, and the key to resume after (None at the end)."""
        params: dict[str, Any] = {
            "TableName": self.audiences_table, "ConsistentRead": True, "Limit": limit + 1,
            "KeyConditionExpression": "org_id = :o AND begins_with(audience_id, :p)",
            "FilterExpression": "attribute_not_exists(deleting)",
            "ExpressionAttributeValues": {":o": {"S": org_id}, ":p": {"S": AUDIENCE_PREFIX}}}
        raw, last = read_page(self.client, params, limit, start_key, ("org_id", "audience_id"))
        return [AudienceItem(**deserialize(r)) for r in raw], last

    def mark_deleting(self, audience: AudienceItem) -> bool:
        """Flag the audience as being deleted (adds, renames and listings stop at once).

        One conditional ``UpdateItem``; its stream record (a MODIFY whose new image has
        ``deleting``) starts the stream-driven cleanup. True also when it was already
        flagged (a repeated delete); False when the audience is gone.
        """
        try:
            self.client.update_item(
                TableName=self.audiences_table, Key=_key(audience.org_id, audience.audience_id),
                UpdateExpression="SET deleting = :t",
                ConditionExpression="attribute_exists(audience_id)",
                ExpressionAttributeValues={":t": {"BOOL": True}})
        except ClientError as err:
            if err.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def finish_delete(self, audience: AudienceItem) -> bool:
        """Delete the flagged audience and its name guard once it has no members left
        (``contact_count = 0``); False when the transaction was cancelled."""
        actions = [{"Delete": {"TableName": self.audiences_table,
                               "Key": _key(audience.org_id, audience.audience_id),
                               "ConditionExpression": "contact_count = :z AND deleting = :t",
                               "ExpressionAttributeValues": {":z": {"N": "0"},
                                                             ":t": {"BOOL": True}}}},
                   *self._release_name(audience)]
        return transact(self.client, actions) is None

    def remove_orphans(self, audience: AudienceItem, contact_ids: list[str]) -> list[str] | None:
        """Remove memberships whose contact no longer exists (≤ 99), with the count.

        Contact ids are never reused, so a member whose contact is gone stays an orphan;
        returns None on success, else the cancellation codes (members…, audience).
        """
        actions: list[dict[str, Any]] = [{"Delete": {
            "TableName": self.members_table,
            "Key": {"audience_id": {"S": audience.audience_id}, "contact_id": {"S": cid}},
            "ConditionExpression": "attribute_exists(contact_id)"}} for cid in contact_ids]
        actions.append({"Update": {
            "TableName": self.audiences_table,
            "Key": _key(audience.org_id, audience.audience_id),
            "UpdateExpression": "ADD contact_count :n",
            "ConditionExpression": "attribute_exists(audience_id)",
            "ExpressionAttributeValues": {":n": {"N": str(-len(contact_ids))}}}})
        return transact(self.client, actions)

    def member_page(self, audience_id: str, limit: int, start_key: dict[str, str] | None
                    ) -> tuple[list[str], dict[str, str] | None]:
        """Member contact ids in id order (consistent) and the key to resume after."""
        params: dict[str, Any] = {
            "TableName": self.members_table, "ConsistentRead": True, "Limit": limit + 1,
            "KeyConditionExpression": "audience_id = :a",
            "ExpressionAttributeValues": {":a": {"S": audience_id}}}
        raw, last = read_page(self.client, params, limit, start_key,
                               ("audience_id", "contact_id"))
        return [r["contact_id"]["S"] for r in raw], last

    def change_members(self, audience: AudienceItem, contact_ids: list[str], add: bool,
                       now: str) -> list[str] | None:
        """Add (or remove) contacts in one transaction: per contact the membership item and
        the contact's ``audience_ids``, ``membership_rev`` and ``added_at#{audience}``;
        once, the audience's ``contact_count`` ± n.

        Actions are ``[member_0, contact_0, member_1, contact_1, …, audience]``. Returns None
        on success, else the cancellation codes in that order. At most 49 contacts.
        """
        actions: list[dict[str, Any]] = []
        for contact_id in contact_ids:
            member_key = {"audience_id": {"S": audience.audience_id},
                          "contact_id": {"S": contact_id}}
            if add:
                actions.append({"Put": {
                    "TableName": self.members_table,
                    "Item": member_key | {"org_id": {"S": audience.org_id},
                                          "added_at": {"S": now}},
                    "ConditionExpression": "attribute_not_exists(contact_id)"}})
            else:
                actions.append({"Delete": {"TableName": self.members_table, "Key": member_key,
                                           "ConditionExpression": "attribute_exists(contact_id)"}})
            condition = "attribute_exists(contact_id)"
            values: dict[str, Any] = {":a": {"SS": [audience.audience_id]}, ":one": {"N": "1"}}
            if add:
                condition += " AND (attribute_not_exists(audience_ids) OR size(audience_ids) < :m)"
                values[":m"] = {"N": str(MAX_AUDIENCES_PER_CONTACT)}
                values[":now"] = {"S": now}
            actions.append({"Update": {
                "TableName": self.contacts_table,
                "Key": {"org_id": {"S": audience.org_id}, "contact_id": {"S": contact_id}},
                "UpdateExpression": ("ADD audience_ids :a, membership_rev :one SET #at = :now"
                                     if add else
                                     "DELETE audience_ids :a ADD membership_rev :one REMOVE #at"),
                "ConditionExpression": condition,
                "ExpressionAttributeNames": {"#at": ADDED_AT_PREFIX + audience.audience_id},
                "ExpressionAttributeValues": values}})
        audience_condition = "attribute_exists(audience_id)"
        if add:
            audience_condition += " AND attribute_not_exists(deleting)"
        actions.append({"Update": {
            "TableName": self.audiences_table,
            "Key": _key(audience.org_id, audience.audience_id),
            "UpdateExpression": "ADD contact_count :n SET updated_at = :u",
            "ConditionExpression": audience_condition,
            "ExpressionAttributeValues": {":n": {"N": str(len(contact_ids) if add
                                                          else -len(contact_ids))},
                                          ":u": {"S": now}}}})
        return transact(self.client, actions)
