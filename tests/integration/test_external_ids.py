"""External ids (SPEC §9.2): a third guarded identifier, matched first by upsert.

Each test ends with the invariant checker, which covers ``external_id`` guards like phone
and email ones (I1, I2).
"""

from __future__ import annotations

import pytest

from tests.support.hooks import Background, Hooks, Pause, hooks_fixture  # noqa: F401
from tests.support.invariants import assert_consistent

P1, P2 = "+27821234560", "+27821234561"
E1 = "naledi@example.com"
X1, X2 = "crm-0001", "CRM-0001"






# ------------------------------------------------------------------ upsert matching
def test_a_known_external_id_is_the_match_and_the_phone_a_change_to_it(call, org_id):
    # Given X keyed by its CRM id with phone P1
    x = call.create({"external_id": X1, "phone": P1, "first_name": "Xolani"})
    # When the CRM sends the same id with a new phone
    response = call("POST", "/v1/contacts/upsert",
                    {"external_id": X1, "phone": P2, "first_name": "Xoli"})
    # Then X is updated, matched on the external id, and its phone moved with its guard
    assert response.status == 200, response.body
    assert response.body["result"] == "updated"
    assert response.body["matched_on"] == "external_id"
    contact = response.body["contact"]
    assert (contact["id"], contact["phone"], contact["first_name"]) == (x["id"], P2, "Xoli")
    assert call.create({"phone": P1})["phone"] == P1  # P1 was released
    assert_consistent(org_id)


def test_an_unknown_external_id_falls_back_to_phone_and_is_attached(call, org_id):
    # Given X known by phone only
    x = call.create({"phone": P1})
    # When an upsert brings X's phone with a CRM id nobody holds
    first = call("POST", "/v1/contacts/upsert", {"phone": P1, "external_id": X1})
    # Then it matched on phone and X now holds the id; the next sync matches on the id
    assert first.status == 200 and first.body["matched_on"] == "phone", first.body
    assert first.body["contact"]["external_id"] == X1
    again = call("POST", "/v1/contacts/upsert", {"external_id": X1, "last_name": "Dube"})
    assert again.status == 200 and again.body["matched_on"] == "external_id", again.body
    assert again.body["contact"]["id"] == x["id"]
    assert again.body["contact"]["last_name"] == "Dube"
    # And the same body once more changes nothing
    same = call("POST", "/v1/contacts/upsert", {"external_id": X1, "last_name": "Dube"})
    assert same.body["result"] == "unchanged" and same.body["contact"]["version"] == 3
    assert_consistent(org_id)


def test_an_unknown_external_id_that_matches_nothing_creates_a_contact_holding_it(call, org_id):
    # When an upsert carries only a new CRM id
    response = call("POST", "/v1/contacts/upsert", {"external_id": X1, "first_name": "Ama"})
    # Then a contact is created with it (an external id alone is an identifier)
    assert response.status == 201 and response.body["result"] == "created", response.body
    contact = response.body["contact"]
    assert contact["external_id"] == X1 and contact["phone"] is None
    assert contact["channels"] == dict.fromkeys(
        ("has_whatsapp", "has_sms", "has_voice", "has_email"), False)
    assert_consistent(org_id)


def test_external_id_on_one_contact_and_phone_on_another_is_a_409_naming_both(call, org_id):
    # Given X with the CRM id and Y with phone P1
    x = call.create({"external_id": X1, "email": E1})
    y = call.create({"phone": P1})
    # When an upsert says the CRM id has phone P1
    response = call("POST", "/v1/contacts/upsert", {"external_id": X1, "phone": P1})
    # Then 409 naming both contacts and pointing to a merge into the external id's contact
    assert response.status == 409 and response.body["code"] == "identity_conflict"
    body = response.body
    assert {(c["field"], c["conflicting_contact_id"]) for c in body["conflicts"]} == {
        ("phone", y["id"]), ("external_id", x["id"])}
    assert body["contact_ids"] == [x["id"], y["id"]]
    assert body["merge"] == {"target_id": x["id"], "source_id": y["id"]}
    assert f"/v1/contacts/{x['id']}/merge" in body["detail"]
    # And nothing changed
    assert call("GET", f"/v1/contacts/{x['id']}").body["phone"] is None
    assert_consistent(org_id)


def test_phone_on_one_contact_and_email_on_another_is_a_409_pointing_to_merge(call, org_id):
    x, y = call.create({"phone": P1}), call.create({"email": E1})
    response = call("POST", "/v1/contacts/upsert", {"phone": P1, "email": E1})
    assert response.status == 409, response.body
    assert set(response.body["contact_ids"]) == {x["id"], y["id"]}
    assert "merge" in response.body["detail"]


# ------------------------------------------------------------------ uniqueness and rules
def test_external_ids_are_unique_per_org_and_case_sensitive(call, api, org_id):
    # Given X holding X1
    x = call.create({"external_id": X1, "phone": P1})
    # When another contact is created with X1, with X1 in other case, and in another org
    taken = call("POST", "/v1/contacts", {"external_id": X1, "phone": P2})
    other_case = call("POST", "/v1/contacts", {"external_id": X2, "phone": P2})
    elsewhere = api.request("POST", "/v1/contacts", org_id=f"{org_id}_b",
                            json_body={"external_id": X1})
    # Then only the exact same id in the same org is refused
    assert taken.status == 409 and taken.body["field"] == "external_id"
    assert taken.body["conflicting_contact_id"] == x["id"]
    assert other_case.status == 201 and elsewhere.status == 201
    assert_consistent(org_id)


def test_patch_sets_moves_and_clears_an_external_id_but_keeps_one_identifier(call, org_id):
    x = call.create({"external_id": X1})
    # a contact holding only an external id cannot lose it
    refused = call("PATCH", f"/v1/contacts/{x['id']}", {"external_id": None})
    assert refused.status == 400
    assert [e["field"] for e in refused.body["errors"]] == ["external_id"]
    # moving it releases the old guard, clearing it after adding a phone is fine
    assert call("PATCH", f"/v1/contacts/{x['id']}", {"external_id": X2}).status == 200
    assert call.create({"external_id": X1})["external_id"] == X1
    moved = call("PATCH", f"/v1/contacts/{x['id']}", {"phone": P1, "external_id": None})
    assert moved.status == 200 and moved.body["external_id"] is None
    assert_consistent(org_id)


@pytest.mark.parametrize("bad", ["", "   ", "x" * 256, "a\nb", "tab\there", "\u200bzw", 42,
                                 ["crm"]], ids=repr)
def test_an_external_id_that_is_not_1_to_255_printable_characters_is_a_400(call, org_id, bad):
    response = call("POST", "/v1/contacts/upsert", {"external_id": bad, "email": E1})
    assert response.status == 400, response.body
    assert "external_id" in [e["field"] for e in response.body["errors"]]
    assert call("GET", "/v1/contacts").body["data"] == []


def test_external_id_of_255_characters_and_any_script_is_kept_exactly(call):
    long_id = "Ω-" + "z" * 253
    contact = call.create({"external_id": f"  {long_id} "})
    assert contact["external_id"] == long_id


# ------------------------------------------------------------------ lookup
def test_exact_lookup_by_external_id_reads_the_guard(call, org_id):
    # Given X holding X1 and Y holding X2 (another case)
    x = call.create({"external_id": X1, "first_name": "Xolani", "tags": ["vip"]})
    call.create({"external_id": X2, "first_name": "Yara"})
    # Then external_id= and a search term that is the id find exactly X
    for query in ({"external_id": X1}, {"search": X1}, {"external_id": X1, "tag": "vip"}):
        page = call("GET", "/v1/contacts", query=query).body
        assert [c["id"] for c in page["data"]] == [x["id"]], query
        assert page["next_cursor"] is None
    assert call("GET", "/v1/contacts", query={"external_id": X1, "tag": "new"}).body["data"] == []
    assert call("GET", "/v1/contacts", query={"external_id": "nope"}).body["data"] == []
    # And right after the id moves away, the lookup no longer finds X
    call("PATCH", f"/v1/contacts/{x['id']}", {"external_id": "crm-0002"})
    assert call("GET", "/v1/contacts", query={"external_id": X1}).body["data"] == []
    both = call("GET", "/v1/contacts", query={"external_id": X1, "search": "Xo"})
    assert both.status == 400 and both.body["errors"][0]["field"] == "external_id"


# ------------------------------------------------------------------ bulk
def test_bulk_matches_external_ids_first_and_create_only_refuses_a_known_one(call, org_id):
    x = call.create({"external_id": X1, "phone": P1})
    upserted = call("POST", "/v1/contacts/bulk", {"contacts": [
        {"external_id": X1, "phone": P2}, {"external_id": "crm-0003", "phone": P1}]}).body
    assert [r["status"] for r in upserted["results"]] == ["updated", "created"]
    assert upserted["results"][0]["matched_on"] == "external_id"
    assert upserted["results"][0]["id"] == x["id"]
    refused = call("POST", "/v1/contacts/bulk", {"mode": "create_only", "contacts": [
        {"external_id": X1, "first_name": "New"}]}).body["results"][0]
    assert refused["status"] == "failed" and refused["error"]["code"] == "identity_conflict"
    assert refused["error"]["conflicting_contact_id"] == x["id"]
    assert_consistent(org_id)


# ------------------------------------------------------------------ race
def test_upsert_by_external_id_held_while_the_id_moves_lands_on_its_holder_now(
        call, hooks: Hooks, org_id):
    # Given X holding X1, and an upsert by X1 held right after it read the guards
    x = call.create({"external_id": X1, "first_name": "Xolani"})
    held = hooks.add(Pause("BatchGetItem", table="ContactIdentities", actor="upsert"))
    upsert = Background(lambda: call("POST", "/v1/contacts/upsert",
                                     {"external_id": X1, "first_name": "Bongi"}),
                        "upsert", hooks)
    held.wait()
    # When X gives X1 up (taking a phone) and Y takes it
    assert call("PATCH", f"/v1/contacts/{x['id']}",
                {"phone": P1, "external_id": None}).status == 200
    y = call.create({"external_id": X1, "first_name": "Yara"})
    held.release.set()
    response = upsert.result()
    # Then the upsert updated Y (the holder now) or answered 409; X is untouched
    assert_consistent(org_id)
    if response.status == 409:
        assert response.body["code"] in {"identity_conflict", "concurrent_modification"}
    else:
        assert response.body["contact"]["id"] == y["id"], response.body
        assert call("GET", f"/v1/contacts/{y['id']}").body["first_name"] == "Bongi"
    assert call("GET", f"/v1/contacts/{x['id']}").body["first_name"] == "Xolani"


def test_an_unknown_external_id_never_re_keys_a_contact_that_has_another(call, org_id):
    # Given X keyed crm-0001 with phone P1
    x = call.create({"external_id": X1, "phone": P1})
    # When a second CRM record (another id) sends the same phone, single and in bulk
    single = call("POST", "/v1/contacts/upsert", {"external_id": "crm-0002", "phone": P1})
    bulk = call("POST", "/v1/contacts/bulk", {"contacts": [
        {"external_id": "crm-0002", "phone": P1}]}).body["results"][0]
    # Then both are refused naming X, and X keeps its key
    assert single.status == 409 and single.body["code"] == "identity_conflict"
    assert (single.body["field"], single.body["conflicting_contact_id"]) == (
        "external_id", x["id"])
    assert "PATCH" in single.body["detail"]
    assert bulk["status"] == "failed" and bulk["error"]["conflicting_contact_id"] == x["id"]
    assert call("GET", f"/v1/contacts/{x['id']}").body["external_id"] == X1
    # And re-keying on purpose is a PATCH
    assert call("PATCH", f"/v1/contacts/{x['id']}", {"external_id": "crm-0002"}).status == 200
    assert_consistent(org_id)
