"""``POST /v1/contacts/{id}/merge`` (SPEC §9.2) through its handler on DynamoDB Local.

Every test that writes ends with the invariant checker, which also fails on a merge
record whose source still exists (a half merge).
"""

from __future__ import annotations

from tests.integration.conftest import Response
from tests.support.hooks import Background, Hooks, Pause, hooks_fixture  # noqa: F401
from tests.support.invariants import assert_consistent

P1, P2 = "+27821234560", "+27821234561"
E1, E2 = "thandi@example.com", "sipho@example.com"






def _audience(call, name: str, members: list[str]) -> str:
    aud = call("POST", "/v1/audiences", {"name": name}).body["id"]
    if members:
        assert call("POST", f"/v1/audiences/{aud}/contacts",
                    {"contact_ids": members}).status == 200
    return str(aud)


def _merge(call, target: str, source: str, **headers: str) -> Response:
    return call("POST", f"/v1/contacts/{target}/merge", {"source_id": source},
                headers=headers or None)


def test_merge_keeps_target_values_and_fills_the_rest_from_the_source(call, org_id):
    # Given a source created first, and a target with some fields of its own
    source = call.create({
        "phone": P1, "email": E2, "external_id": "crm-9", "first_name": "Sipho",
        "last_name": "Dube", "language": "zu", "tags": ["lead", "vip"],
        "attributes": {"city": "Durban", "plan": "free"}, "suppressed": True,
        "consent": {"whatsapp": "opted_in", "sms": "opted_out", "email": "opted_in"}})
    target = call.create({
        "email": E1, "first_name": "Thandi", "tags": ["vip", "donor"],
        "attributes": {"plan": "gold"},
        "consent": {"whatsapp": "opted_out", "sms": "opted_in", "voice": "opted_in"}})
    # When the source is merged into the target
    response = _merge(call, target["id"], source["id"])
    # Then the target survives with its own values, filled from the source
    assert response.status == 200, response.body
    merged = response.body
    assert merged["id"] == target["id"] and merged["version"] == target["version"] + 1
    assert response.headers["ETag"] == f'"{merged["version"]}"'
    assert (merged["first_name"], merged["last_name"], merged["email"]) == (
        "Thandi", "Dube", E1)
    assert merged["name"] == "Thandi Dube"  # the default name follows the merged parts
    assert (merged["phone"], merged["country_code"], merged["external_id"]) == (
        P1, "ZA", "crm-9")
    assert merged["channels"]["has_whatsapp"] and merged["language"] == "zu"
    assert merged["tags"] == ["vip", "donor", "lead"]
    assert merged["attributes"] == {"plan": "gold", "city": "Durban"}
    assert merged["consent"] == {"whatsapp": "opted_out", "sms": "opted_out",
                                 "email": "opted_in", "voice": "opted_in"}
    assert merged["suppressed"] is True
    assert merged["created_at"] == source["created_at"]
    assert call("GET", f"/v1/contacts/{target['id']}").body == merged
    # And the source is gone; its identifiers now find the target, the one it lost is free
    assert call("GET", f"/v1/contacts/{source['id']}").status == 404
    again = call("POST", "/v1/contacts/upsert", {"phone": P1})
    assert again.body["contact"]["id"] == target["id"], again.body
    by_id = call("POST", "/v1/contacts/upsert", {"external_id": "crm-9"})
    assert by_id.body["matched_on"] == "external_id"
    assert by_id.body["contact"]["id"] == target["id"]
    assert call.create({"email": E2})["email"] == E2
    # And repeating the merge (a client retry) answers the same contact, writing nothing
    repeat = _merge(call, target["id"], source["id"])
    assert repeat.status == 200 and repeat.body == merged
    assert_consistent(org_id)


def test_the_merged_name_follows_its_parts_unless_a_client_set_it(call, org_id):
    # Given targets and sources whose names follow their parts or were set by the client
    cases = [  # (target names, source names, merged name)
        ({"first_name": "Sam"}, {"last_name": "Mokoena"}, "Sam Mokoena"),
        ({"first_name": "Sam", "name": "Sammy"}, {"last_name": "Mokoena"}, "Sammy"),
        ({}, {"first_name": "Bob", "name": "DJ Bob"}, "DJ Bob"),
        ({}, {"first_name": "Bob", "last_name": "Ross"}, "Bob Ross"),
        ({"last_name": "Ross"}, {"first_name": "Bob", "name": "DJ Bob"}, "Bob Ross"),
    ]
    for n, (target_names, source_names, expected) in enumerate(cases):
        target = call.create({"email": f"t{n}@example.com", **target_names})
        source = call.create({"email": f"s{n}@example.com", **source_names})
        # When the source is merged into the target
        merged = _merge(call, target["id"], source["id"])
        # Then the name is the one a client would expect, and search finds it by it
        assert merged.status == 200 and merged.body["name"] == expected, (n, merged.body)
        found = call("GET", "/v1/contacts", query={"search": expected})
        assert [c["id"] for c in found.body["data"]] == [target["id"]], (n, found.body)
        sorted_by_name = call("GET", "/v1/contacts", query={"sort": "name", "limit": "100"})
        assert target["id"] in [c["id"] for c in sorted_by_name.body["data"]]
        call("DELETE", f"/v1/contacts/{target['id']}")
    assert_consistent(org_id)


def test_memberships_become_the_union_with_exact_counts(call, org_id):
    # Given audiences: both in A, only the source in B, only the target in C, another in A
    target, source, other = (call.create({"phone": p}) for p in (P1, P2, "+27821234562"))
    a = _audience(call, "A", [target["id"], source["id"], other["id"]])
    b = _audience(call, "B", [source["id"]])
    c = _audience(call, "C", [target["id"]])
    # When the source is merged into the target
    assert _merge(call, target["id"], source["id"]).status == 200
    # Then the target is in A, B and C; A lost one member, B kept one (the target now)
    counts = {aud: call("GET", f"/v1/audiences/{aud}").body["contact_count"]
              for aud in (a, b, c)}
    assert counts == {a: 2, b: 1, c: 1}
    audiences = call("GET", f"/v1/contacts/{target['id']}/audiences").body["data"]
    assert sorted(x["id"] for x in audiences) == sorted([a, b, c])
    members_b = call("GET", f"/v1/audiences/{b}/contacts").body["data"]
    assert [m["id"] for m in members_b] == [target["id"]]
    assert_consistent(org_id)


def test_if_match_applies_to_the_target(call, org_id):
    target, source = call.create({"phone": P1}), call.create({"phone": P2})
    stale = _merge(call, target["id"], source["id"], **{"If-Match": '"7"'})
    assert stale.status == 412 and stale.body["current_version"] == 1
    assert call("GET", f"/v1/contacts/{source['id']}").status == 200
    fresh = _merge(call, target["id"], source["id"], **{"If-Match": '"1"'})
    assert fresh.status == 200 and fresh.body["version"] == 2
    assert_consistent(org_id)


def test_same_id_is_a_400_and_unknown_or_foreign_ids_are_404(call, api, org_id):
    target = call.create({"phone": P1})
    foreign = api.request("POST", "/v1/contacts", org_id=f"{org_id}_b",
                          json_body={"phone": P2}).body
    same = _merge(call, target["id"], target["id"])
    assert same.status == 400 and same.body["errors"][0]["field"] == "source_id"
    for source in (foreign["id"], "con_01JD8Q2M6W3YQ0V4C7N5T9KX2B", "nope"):
        missing = _merge(call, target["id"], source)
        assert missing.status == 404 and source in missing.body["detail"]
    assert _merge(call, "con_01JD8Q2M6W3YQ0V4C7N5T9KX2B", target["id"]).status == 404
    for body in ({}, {"source_id": 7}, {"source_id": target["id"], "x": 1}):
        bad = call("POST", f"/v1/contacts/{target['id']}/merge", body)
        assert bad.status == 400, body
    assert call("GET", f"/v1/contacts/{target['id']}").body["version"] == 1
    assert api.request("GET", f"/v1/contacts/{foreign['id']}", org_id=f"{org_id}_b").status == 200


def test_a_merge_over_a_contact_limit_is_refused_and_changes_nothing(call, org_id):
    # Given two contacts whose tags and attribute keys together are over 50 each
    target = call.create({"phone": P1, "tags": [f"t{i}" for i in range(30)],
                          "attributes": {f"a{i}": i for i in range(26)}})
    source = call.create({"phone": P2, "tags": [f"s{i}" for i in range(30)],
                          "attributes": {f"b{i}": i for i in range(25)}})
    # When they are merged
    response = _merge(call, target["id"], source["id"])
    # Then the merge is refused as a PATCH over those limits is (SPEC §7: 400), naming both
    assert response.status == 400 and response.body["code"] == "validation_error"
    messages = {e["field"]: e["message"] for e in response.body["errors"]}
    assert "60 tags" in messages["tags"] and "51 attribute keys" in messages["attributes"]
    assert call("GET", f"/v1/contacts/{source['id']}").status == 200
    assert call("GET", f"/v1/contacts/{target['id']}").body["version"] == 1
    assert_consistent(org_id)


def test_the_409_of_a_two_contact_upsert_is_resolved_by_the_merge_it_names(call, org_id):
    # Given the phone on one contact and the email on another
    call.create({"phone": P1, "first_name": "Thandi"})
    call.create({"email": E1, "last_name": "Nkosi"})
    body = {"phone": P1, "email": E1, "language": "en"}
    conflict = call("POST", "/v1/contacts/upsert", body)
    assert conflict.status == 409
    hint = conflict.body["merge"]
    # When the integrator merges as the problem says, and sends the upsert again
    assert _merge(call, hint["target_id"], hint["source_id"]).status == 200
    retried = call("POST", "/v1/contacts/upsert", body)
    # Then it updates the one contact left
    assert retried.status == 200 and retried.body["matched_on"] == "phone_and_email"
    contact = retried.body["contact"]
    assert (contact["first_name"], contact["last_name"], contact["language"]) == (
        "Thandi", "Nkosi", "en")
    assert call("GET", "/v1/contacts").body["data"] == [contact]
    assert_consistent(org_id)


def test_merge_held_after_its_read_while_the_source_joins_an_audience_retries(
        call, hooks: Hooks, org_id):
    # Given a merge held right after it read both contacts
    target, source = call.create({"phone": P1}), call.create({"phone": P2, "email": E2})
    aud = _audience(call, "A", [])
    held = hooks.add(Pause("BatchGetItem", table="Contacts", actor="merge"))
    merge = Background(lambda: _merge(call, target["id"], source["id"]), "merge", hooks)
    held.wait()
    # When the source joins an audience and changes its email meanwhile
    assert call("POST", f"/v1/audiences/{aud}/contacts",
                {"contact_ids": [source["id"]]}).status == 200
    assert call("PATCH", f"/v1/contacts/{source['id']}", {"email": E1}).status == 200
    held.release.set()
    response = merge.result()
    # Then the merge re-read: the target has the source's membership and its new email
    assert response.status == 200, response.body
    assert response.body["email"] == E1
    assert call("GET", f"/v1/audiences/{aud}").body["contact_count"] == 1
    audiences = call("GET", f"/v1/contacts/{target['id']}/audiences").body["data"]
    assert [a["id"] for a in audiences] == [aud]
    assert_consistent(org_id)
