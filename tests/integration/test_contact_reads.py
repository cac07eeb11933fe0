"""Batch get and a contact's audiences through their handlers, against DynamoDB Local
(SPEC §9.2, I4)."""

from __future__ import annotations

import pytest

from contacts_core.audiences.store import AudienceStore
from contacts_core.http.responses import LAMBDA_RESPONSE_LIMIT
from contacts_core.ids import new_contact_id
from tests.integration.test_response_limits import rendered_size, seed_grown

BATCH_GET = "/v1/contacts/batch-get"


def new_contacts(api, org_id: str, count: int, start: int = 0) -> list[str]:
    ids = []
    for i in range(start, start + count):
        created = api.request("POST", "/v1/contacts", org_id=org_id,
                              json_body={"email": f"r{i}@example.com", "first_name": f"R{i}"})
        assert created.status == 201, created.body
        ids.append(created.body["id"])
    return ids


def new_audience(api, org_id: str, name: str) -> str:
    created = api.request("POST", "/v1/audiences", org_id=org_id, json_body={"name": name})
    assert created.status == 201, created.body
    return created.body["id"]


def join(api, org_id: str, audience_id: str, contact_ids: list[str]) -> None:
    added = api.request("POST", f"/v1/audiences/{audience_id}/contacts", org_id=org_id,
                        json_body={"contact_ids": contact_ids})
    assert added.status == 200, added.body


def batch_get(api, org_id: str, ids: object):
    return api.request("POST", BATCH_GET, org_id=org_id, json_body={"ids": ids})


# ---------------------------------------------------------------------- batch get
def test_batch_get_answers_in_request_order_with_duplicates_once(api, org_id):
    # Given three contacts
    a, b, c = new_contacts(api, org_id, 3)
    # When they are asked for out of creation order, with repeats and an unknown id
    unknown = new_contact_id()[0]
    response = batch_get(api, org_id, [c, a, unknown, c, b, a, unknown])
    # Then the found ones come in request order, each once, and the unknown once
    assert response.status == 200, response.body
    assert [x["id"] for x in response.body["data"]] == [c, a, b]
    assert response.body["not_found"] == [unknown]
    assert response.body["not_returned"] == []
    # and each contact is the full object, as GET returns it
    single = api.request("GET", f"/v1/contacts/{a}", org_id=org_id)
    assert response.body["data"][1] == single.body


def test_batch_get_does_not_see_another_orgs_or_deleted_contacts(api, org_id):
    # Given a contact of another org and a deleted contact of ours
    (theirs,) = new_contacts(api, org_id + "x", 1)
    ours, gone = new_contacts(api, org_id, 2)
    assert api.request("DELETE", f"/v1/contacts/{gone}", org_id=org_id).status == 204
    # When all three are asked for
    response = batch_get(api, org_id, [theirs, ours, gone])
    # Then only ours is returned; the other org's id is not found, like a deleted one (I4)
    assert response.status == 200
    assert [x["id"] for x in response.body["data"]] == [ours]
    assert response.body["not_found"] == [theirs, gone]


@pytest.mark.parametrize("odd", [
    "con_nope", "", " ", "CON_01JD8Q2M6W3YQ0V4C7N5T9KX2B", "con_01JD8Q2M6W3YQ0V4C7N5T9KX2BX",
    "aud_01JD8Q2M6W3YQ0V4C7N5T9KX2B", "con_81JD8Q2M6W3YQ0V4C7N5T9KX2B", "x" * 2000,
    "con_\u00e9\U0001f600", "con_01JD8Q2M6W3YQ0V4C7N5T9KX2\u0000",
])
def test_malformed_ids_are_not_found_without_an_error(api, org_id, odd):
    # Given a contact
    (ours,) = new_contacts(api, org_id, 1)
    # When it is asked for along with an id we never issue
    response = batch_get(api, org_id, [odd, ours])
    # Then the odd id is simply not found
    assert response.status == 200, response.body
    assert [x["id"] for x in response.body["data"]] == [ours]
    assert response.body["not_found"] == [odd]


@pytest.mark.parametrize("body", [
    {"ids": []}, {"ids": [new_contact_id()[0]] * 101}, {}, {"ids": "con_x"}, {"ids": [1]},
    {"ids": None}, {"ids": [None]},
])
def test_batch_get_refuses_bodies_that_are_not_1_to_100_strings_naming_ids(api, org_id, body):
    # When the ids are missing, empty, over 100 or not strings
    response = api.request("POST", BATCH_GET, org_id=org_id, json_body=body)
    # Then the answer is 400 naming ids
    assert response.status == 400, response.body
    assert any(e["field"].startswith("ids") for e in response.body["errors"])


def test_batch_get_refuses_unknown_fields(api, org_id):
    response = api.request("POST", BATCH_GET, org_id=org_id,
                           json_body={"ids": [new_contact_id()[0]], "fields": ["email"]})
    assert response.status == 400
    assert [e["field"] for e in response.body["errors"]] == ["fields"]


def test_batch_get_of_100_contacts_returns_all_of_them(api, org_id):
    # Given 100 contacts
    ids = new_contacts(api, org_id, 100)
    # When all are asked for, newest first
    response = batch_get(api, org_id, ids[::-1])
    # Then all come back in that order
    assert response.status == 200
    assert [x["id"] for x in response.body["data"]] == ids[::-1]
    assert response.body["not_found"] == response.body["not_returned"] == []


def test_contacts_that_do_not_fit_the_response_are_listed_to_fetch_again(api, org_id, dynamodb):
    # Given 40 contacts of ~200 KB each once encoded (8 MB together)
    ids = seed_grown(dynamodb, org_id, 40)
    unknown = new_contact_id()[0]
    # When all of them are asked for in one batch
    response = batch_get(api, org_id, [*ids, unknown])
    # Then the answer fits Lambda's 6 MB, and every id is in exactly one list, in order
    assert response.status == 200
    assert rendered_size(response) <= LAMBDA_RESPONSE_LIMIT
    returned = [x["id"] for x in response.body["data"]]
    assert returned and response.body["not_returned"]
    assert returned + response.body["not_returned"] == ids
    assert response.body["not_found"] == [unknown]
    # and asking again for those left out returns them
    again = batch_get(api, org_id, response.body["not_returned"])
    assert [x["id"] for x in again.body["data"]] == response.body["not_returned"]


# ---------------------------------------------------------------------- contact audiences
def audiences_of(api, org_id: str, contact_id: str, limit: int) -> list[list[str]]:
    """Walk every page; the ids of each page."""
    pages: list[list[str]] = []
    query = {"limit": str(limit)}
    while True:
        page = api.request("GET", f"/v1/contacts/{contact_id}/audiences", org_id=org_id,
                           query=query)
        assert page.status == 200, page.body
        pages.append([a["id"] for a in page.body["data"]])
        if page.body["next_cursor"] is None:
            return pages
        query = {"limit": str(limit), "cursor": page.body["next_cursor"]}


def test_walking_a_contacts_audiences_returns_each_once_in_creation_order(api, org_id):
    # Given a contact in 7 audiences, and an audience it is not in
    contact, other = new_contacts(api, org_id, 2)
    joined = [new_audience(api, org_id, f"A{i}") for i in range(7)]
    for audience in reversed(joined):
        join(api, org_id, audience, [contact])
    join(api, org_id, new_audience(api, org_id, "Not hers"), [other])
    # When its audiences are walked 3 at a time
    pages = audiences_of(api, org_id, contact, 3)
    # Then every audience comes exactly once, oldest first, in full pages
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [a for p in pages for a in p] == joined
    # and each is the audience object with its current count
    page = api.request("GET", f"/v1/contacts/{contact}/audiences", org_id=org_id)
    assert page.body["data"][0] == api.request("GET", f"/v1/audiences/{joined[0]}",
                                               org_id=org_id).body
    assert page.body["next_cursor"] is None


def test_a_contact_in_no_audience_has_an_empty_page(api, org_id):
    (contact,) = new_contacts(api, org_id, 1)
    assert audiences_of(api, org_id, contact, 20) == [[]]


def test_left_and_deleting_audiences_are_not_listed(api, org_id):
    # Given a contact in three audiences, one it then leaves and one being deleted
    (contact,) = new_contacts(api, org_id, 1)
    kept, left, deleting = (new_audience(api, org_id, n) for n in ("Kept", "Left", "Going"))
    for audience in (kept, left, deleting):
        join(api, org_id, audience, [contact])
    api.request("POST", f"/v1/audiences/{left}/contacts/remove", org_id=org_id,
                json_body={"contact_ids": [contact]})
    store = AudienceStore()
    flagged = store.get(org_id, deleting)
    assert flagged is not None and store.mark_deleting(flagged)
    # When the contact's audiences are listed one per page
    pages = audiences_of(api, org_id, contact, 1)
    # Then only the kept one is there, and no page promises more
    assert pages == [[kept]]


def test_the_last_full_page_has_no_next_cursor_when_only_deleting_audiences_follow(api, org_id):
    # Given a contact in two audiences, the newer being deleted
    (contact,) = new_contacts(api, org_id, 1)
    first, second = new_audience(api, org_id, "First"), new_audience(api, org_id, "Second")
    join(api, org_id, first, [contact])
    join(api, org_id, second, [contact])
    store = AudienceStore()
    flagged = store.get(org_id, second)
    assert flagged is not None and store.mark_deleting(flagged)
    # When a page of one is asked for
    page = api.request("GET", f"/v1/contacts/{contact}/audiences", org_id=org_id,
                       query={"limit": "1"})
    # Then it holds the first audience and nothing follows
    assert [a["id"] for a in page.body["data"]] == [first]
    assert page.body["next_cursor"] is None


@pytest.mark.parametrize("contact_id", ["con_nope", new_contact_id()[0], "aud_x", "%00"])
def test_audiences_of_an_unknown_or_malformed_contact_are_404(api, org_id, contact_id):
    response = api.request("GET", f"/v1/contacts/{contact_id}/audiences", org_id=org_id)
    assert response.status == 404 and response.body["code"] == "not_found"


def test_audiences_of_another_orgs_contact_are_404_like_unknown_ones(api, org_id):
    # Given a contact of another org that is in an audience of that org
    other = org_id + "x"
    (theirs,) = new_contacts(api, other, 1)
    join(api, other, new_audience(api, other, "Theirs"), [theirs])
    # When we ask for its audiences
    response = api.request("GET", f"/v1/contacts/{theirs}/audiences", org_id=org_id)
    # Then it is not found, exactly like an unknown id (I4)
    unknown = api.request("GET", f"/v1/contacts/{new_contact_id()[0]}/audiences", org_id=org_id)
    assert response.status == unknown.status == 404
    assert (response.body["code"], response.body["title"]) == (unknown.body["code"],
                                                                unknown.body["title"])


def test_a_cursor_of_another_contact_or_a_tampered_one_is_400(api, org_id):
    # Given two contacts in the same two audiences, and a first page of one of them
    a, b = new_contacts(api, org_id, 2)
    for name in ("One", "Two"):
        join(api, org_id, new_audience(api, org_id, name), [a, b])
    first = api.request("GET", f"/v1/contacts/{a}/audiences", org_id=org_id,
                        query={"limit": "1"})
    cursor = first.body["next_cursor"]
    assert cursor
    # When the cursor is used for the other contact, or with its payload changed
    tampered = ("B" if cursor[0] == "A" else "A") + cursor[1:]
    for contact, query in ((b, {"limit": "1", "cursor": cursor}),
                           (a, {"limit": "1", "cursor": tampered})):
        response = api.request("GET", f"/v1/contacts/{contact}/audiences", org_id=org_id,
                               query=query)
        # Then it is refused naming the cursor
        assert response.status == 400
        assert [e["field"] for e in response.body["errors"]] == ["cursor"]


@pytest.mark.parametrize("query", [{"limit": "0"}, {"limit": "101"}, {"limit": "x"},
                                   {"page": "2"}])
def test_bad_paging_parameters_are_400(api, org_id, query):
    (contact,) = new_contacts(api, org_id, 1)
    response = api.request("GET", f"/v1/contacts/{contact}/audiences", org_id=org_id,
                           query=query)
    assert response.status == 400
