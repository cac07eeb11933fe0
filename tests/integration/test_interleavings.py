"""Deterministic interleavings: one request is held between two of its DynamoDB calls
(``tests.support.hooks.Pause``, an Event handshake) while other requests change the same
phone, contact or audience; then it resumes. Each test ends with the invariant checker
and asserts who won: never two contacts with one phone, and the loser either answers 409
or retries onto the contact that holds the value now.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.support.hooks import Background, Hooks, Pause, hooks_fixture  # noqa: F401
from tests.support.invariants import assert_consistent
from tests.support.streams import read_stream, replay, transaction_pairs

P1, P2, P3 = "+27821234560", "+27821234561", "+27821234562"
E1 = "naledi@example.com"
CONFLICT_CODES = {"identity_conflict", "concurrent_modification"}




def _contact(call, contact_id: str) -> dict[str, Any]:
    return call("GET", f"/v1/contacts/{contact_id}").body


def _steal_phone(call, x_id: str) -> str:
    """While the other request is held: X moves P1 → P2, then a new Y takes P1."""
    assert call("PATCH", f"/v1/contacts/{x_id}", {"phone": P2}).status == 200
    y = call("POST", "/v1/contacts", {"phone": P1, "first_name": "Yara"})
    assert y.status == 201, y.body
    return y.body["id"]


def test_bulk_upsert_held_after_its_guard_read_never_gives_a_phone_to_two_contacts(
        call, hooks: Hooks, org_id):
    # Given X with P1, and a bulk upsert of P1 held right after it read the guards (bug 2)
    x = call("POST", "/v1/contacts", {"phone": P1, "first_name": "Xolani"}).body
    held = hooks.add(Pause("BatchGetItem", table="ContactIdentities", actor="bulk"))
    bulk = Background(lambda: call("POST", "/v1/contacts/bulk",
                                   {"contacts": [{"phone": P1, "first_name": "Bongi"}]}),
                      "bulk", hooks)
    held.wait()
    # When X moves to P2 and a new contact Y takes P1, and the bulk resumes
    y_id = _steal_phone(call, x["id"])
    held.release.set()
    result = bulk.result().body["results"][0]
    # Then no two contacts hold P1: the item updated Y (who holds P1 now) or failed with 409
    snap = assert_consistent(org_id)
    assert sorted(c.get("phone") or "" for c in snap.contacts.values()) == [P1, P2]
    if result["status"] == "failed":
        assert result["error"]["code"] in CONFLICT_CODES
    else:
        assert (result["status"], result["id"]) == ("updated", y_id), result
        assert _contact(call, y_id)["first_name"] == "Bongi"
    assert _contact(call, x["id"])["first_name"] == "Xolani"
    # And at no moment of the stream did two contacts hold P1
    outcome = replay(read_stream(), org_id, together=transaction_pairs(hooks.committed))
    assert outcome.violations == []


@pytest.mark.parametrize("first", [{"phone": P1, "email": E1}, {"email": E1}],
                         ids=["gives_a_the_email", "creates_with_the_email"])
def test_bulk_upsert_whose_contacts_gained_an_email_after_its_guard_read_never_shares_it(
        call, hooks: Hooks, org_id, first):
    # Given A with P1 and C with P3, and a bulk whose first item brings the free email E1
    # (onto A, or as a new contact) and whose second renames C, held after it read the
    # guards (E1 free) and before it read the contacts
    a = call("POST", "/v1/contacts", {"phone": P1}).body["id"]
    c = call("POST", "/v1/contacts", {"phone": P3}).body["id"]
    held = hooks.add(Pause("BatchGetItem", table="ContactIdentities", actor="bulk"))
    bulk = Background(lambda: call("POST", "/v1/contacts/bulk", {"contacts": [
        first, {"phone": P3, "first_name": "Cebo"}]}), "bulk", hooks)
    held.wait()
    # When C takes E1 meanwhile, and the bulk resumes (and reads C holding E1)
    assert call("PATCH", f"/v1/contacts/{c}", {"email": E1}).status == 200
    held.release.set()
    results = bulk.result().body["results"]
    # Then E1 stays C's alone: the first item fails with a conflict or lands on C (as if
    # sent after the PATCH), and C is renamed
    snap = assert_consistent(org_id)
    assert snap.contacts[c]["email"] == E1 and "email" not in snap.contacts[a], results
    assert len(snap.contacts) == 2, results
    if results[0]["status"] == "failed":
        assert results[0]["error"]["code"] in CONFLICT_CODES
    else:
        assert results[0]["id"] == c, results
    assert results[1]["status"] == "updated" and snap.contacts[c]["first_name"] == "Cebo"


def test_bulk_run_on_one_contact_never_decides_from_a_contact_changed_meanwhile(
        call, hooks: Hooks, org_id):
    # Given a bulk of four items on one phone: the first is planned, the rest are upserted
    # one by one, each after the first taking the contact the previous one wrote as known
    # (no guard or contact read); the bulk is held after the writes of items 1 and 2
    items = [{"phone": P1, "first_name": "Amahle"}, {"phone": P1, "first_name": "Buhle"},
             {"phone": P1, "first_name": "Buhle"}, {"phone": P1, "first_name": "Cebo"}]
    after_1 = hooks.add(Pause("TransactWriteItems", nth=2, actor="bulk"))
    after_2 = hooks.add(Pause("TransactWriteItems", nth=3, actor="bulk"))
    bulk = Background(lambda: call("POST", "/v1/contacts/bulk", {"contacts": items}),
                      "bulk", hooks)
    contact_id = after_1.wait() and call("GET", "/v1/contacts", query={"search": P1}
                                        ).body["data"][0]["id"]
    # When another request renames the contact after item 1 (so item 2, the same name as
    # item 1, is no longer "unchanged") and sets a last name after item 2 (so item 3's
    # known contact is a version behind), and the bulk resumes each time
    assert call("PATCH", f"/v1/contacts/{contact_id}", {"first_name": "Qiniso"}).status == 200
    after_1.release.set()
    after_2.wait()
    assert call("PATCH", f"/v1/contacts/{contact_id}", {"last_name": "Zulu"}).status == 200
    after_2.release.set()
    results = bulk.result().body["results"]
    # Then every item is decided on the contact as it was, as one by one: item 2 updated
    # (not "unchanged" from memory), item 3 kept the last name it did not send
    assert [r["status"] for r in results] == ["created", "updated", "updated", "updated"]
    assert {r["id"] for r in results} == {contact_id}
    final = call("GET", f"/v1/contacts/{contact_id}").body
    assert (final["first_name"], final["last_name"], final["version"]) == ("Cebo", "Zulu", 6)
    assert results[2]["contact"]["first_name"] == "Buhle"
    assert results[2]["contact"]["version"] == 4
    assert_consistent(org_id)


def test_upsert_held_after_its_guard_read_updates_the_contact_that_holds_the_phone_now(
        call, hooks: Hooks, org_id):
    # Given X with P1, and an upsert of P1 held right after it read the guards
    x = call("POST", "/v1/contacts", {"phone": P1, "first_name": "Xolani"}).body
    held = hooks.add(Pause("BatchGetItem", table="ContactIdentities", actor="upsert"))
    upsert = Background(lambda: call("POST", "/v1/contacts/upsert",
                                     {"phone": P1, "first_name": "Bongi"}), "upsert", hooks)
    held.wait()
    # When X moves to P2 and Y takes P1, and the upsert resumes
    y_id = _steal_phone(call, x["id"])
    held.release.set()
    response = upsert.result()
    # Then the upsert lands on Y (the holder of P1 now) or answers 409; X is untouched
    assert_consistent(org_id)
    if response.status == 409:
        assert response.body["code"] in CONFLICT_CODES
    else:
        assert response.status == 200 and response.body["contact"]["id"] == y_id, response.body
        assert _contact(call, y_id)["first_name"] == "Bongi"
    assert _contact(call, x["id"])["first_name"] == "Xolani"


def test_upsert_moving_an_email_held_after_its_guard_read_never_duplicates_the_phone(
        call, hooks: Hooks, org_id):
    # Given X with E1 only, and an upsert {E1, P1} (matches X, gives it P1) held after its
    # guard read
    x = call("POST", "/v1/contacts", {"email": E1}).body
    held = hooks.add(Pause("BatchGetItem", table="ContactIdentities", actor="upsert"))
    upsert = Background(lambda: call("POST", "/v1/contacts/upsert", {"email": E1, "phone": P1}),
                        "upsert", hooks)
    held.wait()
    # When Y takes P1 meanwhile, and the upsert resumes
    y = call("POST", "/v1/contacts", {"phone": P1}).body
    held.release.set()
    response = upsert.result()
    # Then P1 stays Y's: the upsert sees phone and email on two contacts and answers 409
    snap = assert_consistent(org_id)
    assert snap.contacts[y["id"]]["phone"] == P1 and "phone" not in snap.contacts[x["id"]]
    assert response.status == 409 and response.body["code"] == "identity_conflict", response.body


def test_patch_held_between_its_read_and_its_transaction_loses_a_taken_phone_with_409(
        call, hooks: Hooks, org_id):
    # Given X with P1 and a PATCH moving it to P2, held after it read X
    x = call("POST", "/v1/contacts", {"phone": P1}).body
    held = hooks.add(Pause("GetItem", table="Contacts", actor="patch"))
    patch = Background(lambda: call("PATCH", f"/v1/contacts/{x['id']}", {"phone": P2}),
                       "patch", hooks)
    held.wait()
    # When Y takes P2 meanwhile, and the PATCH resumes
    y = call("POST", "/v1/contacts", {"phone": P2}).body
    held.release.set()
    response = patch.result()
    # Then the PATCH answers 409 naming Y, and X still has P1
    assert response.status == 409 and response.body["code"] == "identity_conflict"
    assert y["id"] in str(response.body)
    snap = assert_consistent(org_id)
    assert snap.contacts[x["id"]]["phone"] == P1 and snap.contacts[y["id"]]["phone"] == P2


def test_patch_held_while_the_contact_moves_retries_on_the_new_version(
        call, hooks: Hooks, org_id):
    # Given X with P1 and a PATCH moving it to P2, held after it read X (version 1)
    x = call("POST", "/v1/contacts", {"phone": P1}).body
    held = hooks.add(Pause("GetItem", table="Contacts", actor="patch"))
    patch = Background(lambda: call("PATCH", f"/v1/contacts/{x['id']}", {"phone": P2}),
                       "patch", hooks)
    held.wait()
    # When another PATCH moves X to P3 and Y takes P1, and the first PATCH resumes
    assert call("PATCH", f"/v1/contacts/{x['id']}", {"phone": P3}).status == 200
    y = call("POST", "/v1/contacts", {"phone": P1}).body
    held.release.set()
    response = patch.result()
    # Then it re-read X and moved it from P3 to P2: P3 is free, P1 stays Y's
    assert response.status == 200 and response.body["phone"] == P2, response.body
    assert response.body["version"] == 3
    snap = assert_consistent(org_id)
    assert {c["contact_id"]: c.get("phone") for c in snap.contacts.values()} == {
        x["id"]: P2, y["id"]: P1}
    assert set(snap.guards) == {f"{org_id}#phone#{P1}", f"{org_id}#phone#{P2}"}


def test_membership_add_held_after_reading_contacts_keeps_counts_exact_when_one_is_deleted(
        call, hooks: Hooks, org_id):
    # Given an audience, two contacts, and an add of both held after it read the contacts
    kept = call("POST", "/v1/contacts", {"phone": P1}).body["id"]
    doomed = call("POST", "/v1/contacts", {"phone": P2}).body["id"]
    aud = call("POST", "/v1/audiences", {"name": "Donors"}).body["id"]
    held = hooks.add(Pause("BatchGetItem", table="Contacts", actor="add"))
    add = Background(lambda: call("POST", f"/v1/audiences/{aud}/contacts",
                                  {"contact_ids": [kept, doomed]}), "add", hooks)
    held.wait()
    # When one contact is deleted meanwhile, and the add resumes
    assert call("DELETE", f"/v1/contacts/{doomed}").status == 204
    held.release.set()
    response = add.result()
    # Then only the live contact joined, the count says so, and the deleted one is reported
    # as not found (never as already a member: it never was one)
    assert response.status == 200 and response.body["added"] == 1, response.body
    assert response.body["contact_count"] == 1
    assert (response.body["already_members"], response.body["not_found"]) == (0, [doomed])
    snap = assert_consistent(org_id)
    assert snap.members == {(aud, kept)} and snap.audiences[aud]["contact_count"] == 1
    assert call("GET", f"/v1/audiences/{aud}").body["contact_count"] == 1


def test_membership_remove_held_after_reading_contacts_reports_one_deleted_meanwhile(
        call, hooks: Hooks, org_id):
    # Given an audience with two members, and a remove of both held after it read them
    kept = call("POST", "/v1/contacts", {"phone": P1}).body["id"]
    doomed = call("POST", "/v1/contacts", {"phone": P2}).body["id"]
    aud = call("POST", "/v1/audiences", {"name": "Donors"}).body["id"]
    assert call("POST", f"/v1/audiences/{aud}/contacts",
                {"contact_ids": [kept, doomed]}).body["added"] == 2
    held = hooks.add(Pause("BatchGetItem", table="Contacts", actor="remove"))
    remove = Background(lambda: call("POST", f"/v1/audiences/{aud}/contacts/remove",
                                     {"contact_ids": [doomed, kept]}), "remove", hooks)
    held.wait()
    # When one contact is deleted meanwhile (which takes it out of the audience)
    assert call("DELETE", f"/v1/contacts/{doomed}").status == 204
    held.release.set()
    response = remove.result()
    # Then the live member was removed and the deleted one is not found, not "not a member"
    assert response.status == 200, response.body
    assert (response.body["removed"], response.body["not_members"],
            response.body["not_found"], response.body["contact_count"]) == (1, 0, [doomed], 0)
    snap = assert_consistent(org_id)
    assert snap.members == set() and snap.audiences[aud]["contact_count"] == 0


def test_contact_delete_held_after_its_read_still_leaves_an_audience_it_joined_meanwhile(
        call, hooks: Hooks, org_id):
    # Given a contact and an audience, and a delete of the contact held after its read
    cid = call("POST", "/v1/contacts", {"phone": P1}).body["id"]
    aud = call("POST", "/v1/audiences", {"name": "Donors"}).body["id"]
    held = hooks.add(Pause("GetItem", table="Contacts", actor="delete"))
    delete = Background(lambda: call("DELETE", f"/v1/contacts/{cid}"), "delete", hooks)
    held.wait()
    # When the contact joins the audience meanwhile, and the delete resumes
    joined = call("POST", f"/v1/audiences/{aud}/contacts", {"contact_ids": [cid]})
    assert joined.body["added"] == 1
    held.release.set()
    # Then the delete re-read the memberships: no member left behind, the count is 0
    assert delete.result().status == 204
    snap = assert_consistent(org_id)
    assert snap.contacts == {} and snap.members == set()
    assert snap.audiences[aud]["contact_count"] == 0


def test_audience_delete_held_after_flagging_refuses_late_adds_and_finishes(
        call, hooks: Hooks, org_id):
    # Given an audience with one member, and its delete held right after it was flagged
    first = call("POST", "/v1/contacts", {"phone": P1}).body["id"]
    late = call("POST", "/v1/contacts", {"phone": P2}).body["id"]
    aud = call("POST", "/v1/audiences", {"name": "Donors"}).body["id"]
    call("POST", f"/v1/audiences/{aud}/contacts", {"contact_ids": [first]})
    held = hooks.add(Pause("UpdateItem", table="Audiences", actor="drop"))
    drop = Background(lambda: call("DELETE", f"/v1/audiences/{aud}"), "drop", hooks)
    held.wait()
    # When another contact is added meanwhile, and the delete resumes
    added = call("POST", f"/v1/audiences/{aud}/contacts", {"contact_ids": [late]})
    held.release.set()
    # Then the late add was refused as not found and never became a member; the audience
    # is gone, or (cleanup driven by the stream) still flagged and invisible to the API
    assert added.status == 404, added.body
    assert drop.result().status in (202, 204)
    snap = assert_consistent(org_id, allow_pending=True)
    assert (aud, late) not in snap.members
    assert all(a.get("deleting") for a in snap.audiences.values())
    assert call("GET", f"/v1/audiences/{aud}").status == 404


@pytest.mark.parametrize("write", [
    ("PATCH", "/v1/contacts/{id}", {"attributes": {"tier": "held"}}),
    ("POST", "/v1/contacts/upsert", {"phone": P1, "attributes": {"tier": "held"}}),
], ids=["patch", "upsert"])
def test_a_write_stamped_before_a_faster_one_never_moves_updated_at_back(
        call, hooks: Hooks, org_id, write):
    # Given X, and a write to X (one UpdateItem, no read) that took its time stamp and is
    # held before its UpdateItem
    x = call("POST", "/v1/contacts", {"phone": P1}).body
    held = hooks.add(Pause("UpdateItem", table="Contacts", when="before", actor="slow"))
    method, path, body = write
    slow = Background(lambda: call(method, path.format(id=x["id"]), body), "slow", hooks)
    held.wait()
    # When a later write (a later millisecond) commits first, and the held one resumes
    time.sleep(0.003)
    fast = call("PATCH", f"/v1/contacts/{x['id']}", {"last_name": "Fast"}).body
    held.release.set()
    response = slow.result()
    # Then the held write is the next version, stamped no earlier than the one before it:
    # a sync that saw version 2's updated_at still finds version 3 (SPEC §9.3)
    assert response.status == 200, response.body
    final = response.body.get("contact", response.body)
    assert (fast["version"], final["version"]) == (2, 3)
    assert final["updated_at"] >= fast["updated_at"], (fast, final)
    assert (final["attributes"], final["last_name"]) == ({"tier": "held"}, "Fast")
    assert call("GET", "/v1/contacts", query={
        "sort": "updated_at", "updated_after": fast["updated_at"]}).body["data"][0]["id"] == x["id"]
    assert_consistent(org_id)
