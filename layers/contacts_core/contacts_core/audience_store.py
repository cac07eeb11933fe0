"""DynamoDB access for audiences and memberships (uses :mod:`contacts_core.store`'s client).

* Audiences ``AUDIENCES_TABLE``: PK ``org_id``, SK ``audience_id`` (``aud_…``). The same
  table holds one name guard per audience, SK ``name#{folded name}`` with ``guard_for``,
  so names are unique per org under concurrency; guards never reach the API or webhooks.
* AudienceMembers ``MEMBERS_TABLE``: PK ``audience_id``, SK ``contact_id``; GSI
  ``contact-index``. Each contact also lists its audiences (``audience_ids``) and counts
  membership changes (``membership_rev``), so deleting a contact removes its memberships
  in the same transaction, from a consistent read (I5).
"""

from __future__ import annotations

import os
from typing import Any

from botocore.exceptions import ClientError

from .audience_models import AudienceItem
from .errors import AudienceNameTaken
from .ids import is_resource_id
from .models import ContactItem
from .names import fold
from .store import (
    _Expression,
    cancellation_reasons,
    deserialize,
    dynamodb_client,
    read_page,
    serialize,
    transact,
)

NAME_GUARD_PREFIX = "name#"
AUDIENCE_PREFIX = "aud_"
MAX_AUDIENCES_PER_CONTACT = 45  # so deleting a contact fits in one 100-action transaction


def _key(org_id: str, sort_key: str) -> dict[str, Any]:
    return {"org_id": {"S": org_id}, "audience_id": {"S": sort_key}}


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

    def _name_guard_put(self, item: AudienceItem) -> dict[str, Any]:
        return {"Put": {
            "TableName": self.audiences_table,
            "Item": serialize({"org_id": item.org_id,
                               "audience_id": NAME_GUARD_PREFIX + fold(item.name),
                               "guard_for": item.audience_id}),
            "ConditionExpression": "attribute_not_exists(audience_id)",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }}

    def _name_guard_delete(self, item: AudienceItem) -> dict[str, Any]:
        return {"Delete": {
            "TableName": self.audiences_table,
            "Key": _key(item.org_id, NAME_GUARD_PREFIX + fold(item.name)),
            "ConditionExpression": "guard_for = :a",
            "ExpressionAttributeValues": {":a": {"S": item.audience_id}},
        }}

    def _run_with_name_guard(self, actions: list[dict[str, Any]], guard_index: int,
                             name: str) -> list[str] | None:
        try:
            self.client.transact_write_items(TransactItems=actions)
        except ClientError as err:
            codes = cancellation_reasons(err)
            if codes is None:
                raise
            if codes[guard_index] == "ConditionalCheckFailed":
                reasons: list[dict[str, Any]] = err.response.get(  # type: ignore[assignment]
                    "CancellationReasons", [])
                holder = reasons[guard_index].get("Item", {}).get("guard_for", {}).get("S", "")
                raise AudienceNameTaken(name, holder) from err
            return codes
        return None

    def create(self, item: AudienceItem) -> None:
        """Write the audience and its name guard in one transaction.

        Raises:
            AudienceNameTaken: another audience of the org has the name.
        """
        actions = [{"Put": {"TableName": self.audiences_table,
                            "Item": serialize(item.model_dump(exclude={"deleting"})),
                            "ConditionExpression": "attribute_not_exists(audience_id)"}},
                   self._name_guard_put(item)]
        self._run_with_name_guard(actions, 1, item.name)

    def update(self, current: AudienceItem, new: AudienceItem) -> bool:
        """Write the new name/description; moves the name guard on a rename.

        Returns False when the audience vanished or started deleting meanwhile.
        Raises:
            AudienceNameTaken: the new name belongs to another audience.
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
        actions = [update]
        if fold(new.name) != fold(current.name):
            actions += [self._name_guard_put(new), self._name_guard_delete(current)]
            return self._run_with_name_guard(actions, 1, new.name) is None
        return transact(self.client, actions) is None

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
        """Flag the audience as being deleted (adds stop); False when it is gone already."""
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
        """Delete the audience and its name guard once it has no members left."""
        actions = [{"Delete": {"TableName": self.audiences_table,
                               "Key": _key(audience.org_id, audience.audience_id),
                               "ConditionExpression": "contact_count = :z",
                               "ExpressionAttributeValues": {":z": {"N": "0"}}}},
                   self._name_guard_delete(audience)]
        return transact(self.client, actions) is None

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

    def change_members(self, audience: AudienceItem, contacts: list[ContactItem], add: bool,
                       now: str) -> list[str] | None:
        """Add (or remove) ``contacts`` in one transaction: per contact the membership item
        and the contact's ``audience_ids``; once, the audience's ``contact_count`` ± n.

        Actions are ``[member_0, contact_0, member_1, contact_1, …, audience]``. Returns None
        on success, else the cancellation codes in that order. At most 49 contacts.
        """
        actions: list[dict[str, Any]] = []
        for contact in contacts:
            member_key = {"audience_id": {"S": audience.audience_id},
                          "contact_id": {"S": contact.contact_id}}
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
            actions.append({"Update": {
                "TableName": self.contacts_table,
                "Key": {"org_id": {"S": contact.org_id}, "contact_id": {"S": contact.contact_id}},
                "UpdateExpression": ("ADD audience_ids :a, membership_rev :one" if add
                                     else "DELETE audience_ids :a ADD membership_rev :one"),
                "ConditionExpression": condition, "ExpressionAttributeValues": values}})
        audience_condition = "attribute_exists(audience_id)"
        if add:
            audience_condition += " AND attribute_not_exists(deleting)"
        actions.append({"Update": {
            "TableName": self.audiences_table,
            "Key": _key(audience.org_id, audience.audience_id),
            "UpdateExpression": "ADD contact_count :n SET updated_at = :u",
            "ConditionExpression": audience_condition,
            "ExpressionAttributeValues": {":n": {"N": str(len(contacts) if add
                                                          else -len(contacts))},
                                          ":u": {"S": now}}}})
        return transact(self.client, actions)

