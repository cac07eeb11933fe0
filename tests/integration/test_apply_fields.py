"""One rule for "apply these fields to this contact": PATCH, single upsert and bulk upsert.

The same table of bodies goes through the three operations, each on its own copy of one
contact; the contacts they leave must be equal, and so must the guards (the invariant
checker runs on every org). Plus the re-sync and retry-budget outcomes of issue 7.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support.hooks import Call, Hooks, Rule, hooks_fixture  # noqa: F401 - fixture
from tests.support.invariants import assert_consistent

P, P2, E, E2 = "+27821230001", "+27821230002", "sam@example.com", "sam.two@example.com"
START = {"phone": P, "email": E, "first_name": "Sam", "last_name": "Mokoena", "tags": ["a"],
         "attributes": {"x": 1, "y": "k"}, "consent": {"sms": "opted_in"}}

CASES: dict[str, tuple[dict[str, Any], str]] = {
    "null clears a field": ({"phone": P, "first_name": None}, "updated"),
    "null clears the email, releasing its guard": ({"phone": P, "email": None}, "updated"),
    "a new email moves with its guard": ({"phone": P, "email": E2}, "updated"),
    "a new phone moves with its guard": ({"email": E, "phone": P2}, "updated"),
    "null phone and replaced tags": ({"email": E, "phone": None, "tags": ["b", "b", "c"]},
                                     "updated"),
    "attributes merge (RFC 7396)": ({"phone": P, "attributes": {"x": None, "z": True}},
                                    "updated"),
    "attributes null clears them all": ({"phone": P, "attributes": None}, "updated"),
    # 60 members, 50 of them removals (of keys it has or not): the contact ends with 10
    "attributes: more members than a contact has keys, most removals": (
        {"phone": P, "attributes": {"x": None, "y": None} | dict.fromkeys(
            (f"gone{n}" for n in range(48)), None) | {f"new{n}": n for n in range(10)}},
        "updated"),
    "consent merges per channel": ({"phone": P, "consent": {"email": "opted_out"}}, "updated"),
    "display name set": ({"phone": P, "name": "Zed"}, "updated"),
    "only the identifiers it holds": ({"phone": P, "email": E}, "unchanged"),
    "only one identifier it holds": ({"email": E}, "unchanged"),
    "values it already has": ({"phone": P, "first_name": "Sam", "tags": ["a"]}, "unchanged"),
    # true is not 1 (JSON, DynamoDB's BOOL and N), though Python's == says it is
    "a number attribute becomes a boolean": ({"phone": P, "attributes": {"x": True}},
                                              "updated"),
    "a boolean with another change": ({"phone": P, "first_name": "Y", "attributes": {"x": True}},
                                      "updated"),
    "a boolean with a new email": ({"phone": P, "email": E2, "attributes": {"x": True}},
                                   "updated"),
    "the same number as a float": ({"phone": P, "attributes": {"x": 1.0}}, "unchanged"),
}
_VOLATILE = {"id", "created_at", "updated_at"}


def _new_org() -> str:
    return f"org_{uuid.uuid4().hex[:12]}"


def _seed(api: Any, org: str) -> dict[str, Any]:
    created = api.request("POST", "/v1/contacts", org_id=org, json_body=START)
    assert created.status == 201, created.body
    return dict(created.body)


def _comparable(contact: dict[str, Any]) -> str:
    """The contact without its volatile fields, as JSON: ``true`` and ``1`` differ."""
    return json.dumps({k: v for k, v in contact.items() if k not in _VOLATILE}, sort_keys=True)


@pytest.mark.parametrize("body,expected", CASES.values(), ids=list(CASES))
def test_patch_upsert_and_bulk_leave_the_same_contact(api, body, expected):
    # Given three orgs holding the same contact
    orgs = {"patch": _new_org(), "upsert": _new_org(), "bulk": _new_org()}
    seeded = {how: _seed(api, org) for how, org in orgs.items()}

    # When the same body goes through PATCH, upsert and bulk upsert
    patched = api.request("PATCH", f"/v1/contacts/{seeded['patch']['id']}",
                          org_id=orgs["patch"], json_body=body)
    upserted = api.request("POST", "/v1/contacts/upsert", org_id=orgs["upsert"], json_body=body)
    bulked = api.request("POST", "/v1/contacts/bulk", org_id=orgs["bulk"],
                         json_body={"contacts": [body]})

    # Then each answers the same outcome, and the three contacts are equal
    assert patched.status == 200, patched.body
    assert upserted.status == 200 and upserted.body["result"] == expected, upserted.body
    assert bulked.status == 200, bulked.body
    item = bulked.body["results"][0]
    assert item["status"] == expected, item
    stored = {how: api.request("GET", f"/v1/contacts/{seeded[how]['id']}", org_id=org).body
              for how, org in orgs.items()}
    assert _comparable(stored["patch"]) == _comparable(stored["upsert"]) \
        == _comparable(stored["bulk"])
    assert _comparable(patched.body) == _comparable(stored["patch"])
    assert _comparable(upserted.body["contact"]) == _comparable(stored["upsert"])
    assert _comparable(item["contact"]) == _comparable(stored["bulk"])
    # ... holding the attribute values sent, booleans as booleans (a whole number may
    # read back as an int)
    sent = {k: (isinstance(v, bool), v) for k, v in (body.get("attributes") or {}).items()
            if v is not None}
    held = stored["patch"]["attributes"]
    assert {k: (isinstance(held.get(k), bool), held.get(k)) for k in sent} == sent
    # ... a change bumps the version once, no change writes nothing
    assert stored["patch"]["version"] == (2 if expected == "updated" else 1)
    # ... and every guard follows its contact
    for org in orgs.values():
        assert_consistent(org)


MOVES = [{"phone": P, "email": E2}, {"email": E2, "phone": P2}]  # email moves, then phone


@pytest.mark.parametrize("how", ["patch", "upsert", "bulk"])
def test_released_identifiers_are_free_again(api, org_id, how):
    # Given a contact {P, E}
    contact = _seed(api, org_id)
    # When its email and then its phone move to new values
    if how == "patch":
        for body in MOVES:
            api.request("PATCH", f"/v1/contacts/{contact['id']}", org_id=org_id, json_body=body)
    elif how == "upsert":
        for body in MOVES:
            api.request("POST", "/v1/contacts/upsert", org_id=org_id, json_body=body)
    else:
        api.request("POST", "/v1/contacts/bulk", org_id=org_id, json_body={"contacts": MOVES})
    # Then the contact holds the new values and the old ones are free for a new contact
    stored = api.request("GET", f"/v1/contacts/{contact['id']}", org_id=org_id).body
    assert (stored["phone"], stored["email"]) == (P2, E2)
    again = api.request("POST", "/v1/contacts", org_id=org_id, json_body={"phone": P, "email": E})
    assert again.status == 201, again.body
    assert_consistent(org_id)


def test_bulk_releases_guards_when_items_move_or_clear_identifiers(api, org_id):
    # Given a contact {P1, E1}
    contact = _seed(api, org_id)
    # When bulk moves its phone to P2, then clears its email
    first = api.request("POST", "/v1/contacts/bulk", org_id=org_id,
                        json_body={"contacts": [{"email": E, "phone": P2}]})
    second = api.request("POST", "/v1/contacts/bulk", org_id=org_id,
                         json_body={"contacts": [{"phone": P2, "email": None}]})
    assert first.body["updated"] == 1 and second.body["updated"] == 1
    # Then P1 and E1 are free, and the contact holds only P2
    stored = api.request("GET", f"/v1/contacts/{contact['id']}", org_id=org_id).body
    assert (stored["phone"], stored["email"]) == (P2, None)
    assert_consistent(org_id)
    assert api.request("POST", "/v1/contacts", org_id=org_id,
                       json_body={"phone": P}).status == 201
    assert api.request("POST", "/v1/contacts", org_id=org_id,
                       json_body={"email": E}).status == 201
    # ... and after the contact is deleted, P2 is free too
    assert api.request("DELETE", f"/v1/contacts/{contact['id']}", org_id=org_id).status == 204
    assert api.request("POST", "/v1/contacts/upsert", org_id=org_id,
                       json_body={"phone": P2}).status == 201
    assert_consistent(org_id)


@pytest.mark.parametrize("body", [{"email": E}, {"phone": P}, {"phone": P, "email": E}],
                         ids=["email", "phone", "both"])
def test_resync_of_identifiers_only_is_unchanged(api, org_id, body):
    # Given a contact created by an upsert
    first = api.request("POST", "/v1/contacts/upsert", org_id=org_id, json_body=body)
    assert first.status == 201
    # When the same identifiers are upserted again (the usual re-sync call)
    again = api.request("POST", "/v1/contacts/upsert", org_id=org_id, json_body=body)
    # Then it is 200 unchanged and nothing was written
    assert again.status == 200, again.body
    assert again.body["result"] == "unchanged"
    assert again.body["contact"]["version"] == 1


def test_upsert_null_email_on_a_match_clears_it_or_changes_nothing(api, org_id):
    # Given a contact with a phone only, and one with phone and email
    api.request("POST", "/v1/contacts", org_id=org_id, json_body={"phone": P2})
    _seed(api, org_id)
    # When each is upserted by phone with "email": null
    only_phone = api.request("POST", "/v1/contacts/upsert", org_id=org_id,
                             json_body={"phone": P2, "email": None})
    both = api.request("POST", "/v1/contacts/upsert", org_id=org_id,
                       json_body={"phone": P, "email": None})
    # Then the first is unchanged, the second loses its email and its guard
    assert (only_phone.status, only_phone.body["result"]) == (200, "unchanged")
    assert (both.status, both.body["result"]) == (200, "updated")
    assert both.body["contact"]["email"] is None
    assert both.body["contact"]["channels"]["has_email"] is False
    assert api.request("POST", "/v1/contacts", org_id=org_id,
                       json_body={"email": E}).status == 201
    assert_consistent(org_id)


def test_the_last_identifier_cannot_be_cleared(api, org_id):
    # Given a contact with an email only
    contact = api.request("POST", "/v1/contacts", org_id=org_id,
                          json_body={"email": E, "first_name": "Sam"}).body
    # When a PATCH would clear it (upserts always keep the identifier they matched on)
    response = api.request("PATCH", f"/v1/contacts/{contact['id']}", org_id=org_id,
                           json_body={"email": None, "first_name": "Samuel"})
    # Then 400 naming the field, and nothing changed
    assert response.status == 400, response.body
    assert [e["field"] for e in response.body["errors"]] == ["email"]
    stored = api.request("GET", f"/v1/contacts/{contact['id']}", org_id=org_id).body
    assert stored == contact


class AlwaysConflicting(Rule):
    """Every matching transaction is cancelled as if another one held the same items."""

    def __init__(self, touching: str | None = None) -> None:
        super().__init__("TransactWriteItems")
        self.touching = touching

    def before(self, call: Call) -> None:
        if not self.matches(call) or (self.touching and self.touching not in repr(call.params)):
            return
        reasons: list[Any] = [{"Code": "TransactionConflict"} for _ in call.params["TransactItems"]]
        raise ClientError({"Error": {"Code": "TransactionCanceledException",
                                     "Message": "Transaction cancelled"},
                           "CancellationReasons": reasons}, "TransactWriteItems")


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries without their jittered sleeps (the budget, not the timing, is under test)."""
    import contacts_core.contacts.bulk
    import contacts_core.dynamodb
    for module in (contacts_core.dynamodb, contacts_core.contacts.bulk):
        monkeypatch.setattr(module, "backoff", lambda attempt: None)


@pytest.mark.parametrize("method,path,body", [
    ("POST", "/v1/contacts", {"phone": P2}),
    ("POST", "/v1/contacts/upsert", {"phone": P, "email": E2}),
    ("PATCH", "/v1/contacts/{id}", {"phone": P2}),
    ("DELETE", "/v1/contacts/{id}", None),
], ids=["create", "upsert-move", "patch-move", "delete"])
def test_spent_retry_budget_is_a_retryable_409(api, org_id, hooks: Hooks,
                                                no_backoff, method, path, body):
    # Given a contact, and transactions that always lose to another writer
    contact = _seed(api, org_id)
    hooks.add(AlwaysConflicting())
    # When a write needs a transaction
    response = api.request(method, path.format(id=contact["id"]), org_id=org_id,
                           json_body=body)
    # Then 409 concurrent_modification with Retry-After, and nothing changed
    assert response.status == 409, response.body
    assert response.body["code"] == "concurrent_modification"
    assert int(response.headers["Retry-After"]) >= 1
    hooks.clear()
    stored = api.request("GET", f"/v1/contacts/{contact['id']}", org_id=org_id).body
    assert _comparable(stored) == _comparable(contact)
    assert_consistent(org_id)


def test_bulk_reports_every_item_when_some_transactions_never_commit(
        api, org_id, hooks: Hooks, no_backoff):
    # Given transactions touching one phone always lose
    doomed = "+27821239999"
    hooks.add(AlwaysConflicting(touching=doomed))
    items = [{"phone": f"+2782123{i:04d}"} for i in range(10, 30)] + [{"phone": doomed}]
    # When a bulk upsert carries that phone among others
    response = api.request("POST", "/v1/contacts/bulk", org_id=org_id,
                           json_body={"contacts": items})
    # Then it answers 200 with every item's outcome: the others created, that one failed
    assert response.status == 200, response.body
    statuses = [r["status"] for r in response.body["results"]]
    assert statuses == ["created"] * 20 + ["failed"]
    assert response.body["results"][-1]["error"]["code"] == "concurrent_modification"
    hooks.clear()
    listed = api.request("GET", "/v1/contacts", org_id=org_id, query={"limit": "100"}).body
    assert len(listed["data"]) == 20
    assert_consistent(org_id)


def test_upsert_heals_guards_left_by_older_writes(api, org_id, dynamodb):
    # Given guards that point at a deleted contact, and at a contact that no longer holds
    # the value (what bulk upsert used to leave behind)
    import boto3

    from contacts_core.contacts.store import ContactStore
    holder = _seed(api, org_id)
    client = boto3.client("dynamodb", endpoint_url=dynamodb)
    store = ContactStore(client)
    dead, moved = "+27821238888", "moved@example.com"
    for field, value, owner in (("phone", dead, "con_01JD8Q2M6W3YQ0V4C7N5T9KX2B"),
                                ("email", moved, holder["id"])):
        client.put_item(TableName=store.identities_table, Item={
            "identity": {"S": store.guard_id(org_id, field, value)},
            "contact_id": {"S": owner}, "org_id": {"S": org_id}})
    # When those values are upserted
    by_phone = api.request("POST", "/v1/contacts/upsert", org_id=org_id,
                           json_body={"phone": dead})
    by_email = api.request("POST", "/v1/contacts/upsert", org_id=org_id,
                           json_body={"email": moved})
    # Then each gets a contact of its own and every guard is right again
    assert (by_phone.status, by_email.status) == (201, 201), (by_phone.body, by_email.body)
    assert by_email.body["contact"]["id"] != holder["id"]
    assert_consistent(org_id)


def test_bulk_delete_reports_contacts_it_could_not_delete(api, org_id,
                                                          hooks: Hooks,
                                                          no_backoff, monkeypatch):
    # Given five contacts, and transactions touching one of them always lose
    import contacts_core.contacts.bulk
    monkeypatch.setattr(contacts_core.contacts.bulk, "backoff", lambda attempt: None)
    ids = [api.request("POST", "/v1/contacts", org_id=org_id,
                       json_body={"phone": f"+2782124{i:04d}"}).body["id"] for i in range(5)]
    hooks.add(AlwaysConflicting(touching=ids[2]))
    # When all five are bulk-deleted
    response = api.request("POST", "/v1/contacts/bulk-delete", org_id=org_id,
                           json_body={"contact_ids": ids})
    # Then 200: four deleted, the fifth listed as failed (retryable) and still intact
    assert response.status == 200, response.body
    assert response.body["deleted"] == 4 and response.body["not_found"] == []
    assert [(f["id"], f["error"]["code"]) for f in response.body["failed"]] == [
        (ids[2], "concurrent_modification")]
    hooks.clear()
    assert api.request("GET", f"/v1/contacts/{ids[2]}", org_id=org_id).status == 200
    assert_consistent(org_id)
