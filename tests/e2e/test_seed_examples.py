"""End to end over HTTP through the local stack, with the vendor documents' own examples
(../shared/seeds): Sam Mokoena, Ahmed Hassan, Sarah Johnson, Priya Sharma, Ravi Kumar."""

from __future__ import annotations

import uuid

import pytest

pytestmark = pytest.mark.e2e


@pytest.fixture
def acme(stack):
    """A client for a fresh org, so e2e tests do not see each other's contacts."""
    return stack.client(stack.mint_key(f"org_{uuid.uuid4().hex[:10]}"))


def test_sync_upserts_sam_without_duplicates(acme):
    sam = {"phone": "+27821234567", "email": "sam@example.com", "first_name": "Sam",
           "last_name": "Mokoena", "tags": ["vip"]}
    created = acme.post("/v1/contacts/upsert", json=sam)
    assert created.status_code == 201 and created.json()["result"] == "created"
    contact = created.json()["contact"]
    assert contact["channels"] == {"has_whatsapp": True, "has_sms": True, "has_voice": True,
                                   "has_email": True}
    again = acme.post("/v1/contacts/upsert", json=sam)
    assert again.status_code == 200 and again.json()["result"] == "unchanged"
    renamed = acme.patch(f"/v1/contacts/{contact['id']}",
                         json={"first_name": "Samuel", "tags": ["vip", "renewed"]})
    assert renamed.status_code == 200 and renamed.headers["ETag"] == '"2"'
    cleared = acme.patch(f"/v1/contacts/{contact['id']}", json={"email": None},
                         headers={"If-Match": '"2"'})
    assert cleared.json()["channels"]["has_email"] is False
    page = acme.get("/v1/contacts", params={"limit": 100}).json()
    assert [c["id"] for c in page["data"]] == [contact["id"]] and page["next_cursor"] is None


def test_ahmed_and_sarah_are_listed_and_searchable(acme):
    ahmed = acme.post("/v1/contacts", json={
        "phone": "+971501234567", "email": "ahmed@example.com", "name": "Ahmed Hassan",
        "tags": ["vip", "returning-customer"],
        "attributes": {"shopify_customer_id": "cust_789012", "loyalty_tier": "gold"}})
    assert ahmed.status_code == 201, ahmed.text
    assert ahmed.json()["country_code"] == "AE"
    sarah = acme.post("/v1/contacts", json={"phone": "(415) 555-7890", "country_code": "US",
                                            "name": "Sarah Johnson", "tags": ["new-lead"]})
    assert sarah.json()["phone"] == "+14155557890"
    duplicate = acme.post("/v1/contacts", json={"phone": "+971 50 123 4567"})
    assert duplicate.status_code == 409
    assert duplicate.headers["Content-Type"] == "application/problem+json"
    assert duplicate.json()["conflicting_contact_id"] == ahmed.json()["id"]

    def search(term):
        return [c["name"] for c in acme.get("/v1/contacts", params={"search": term}).json()["data"]]

    assert search("ahmed@example.com") == ["Ahmed Hassan"]
    assert search("+14155557890") == ["Sarah Johnson"]
    assert search("sar") == ["Sarah Johnson"]
    vip = acme.get("/v1/contacts", params={"tag": "vip"}).json()["data"]
    assert [c["name"] for c in vip] == ["Ahmed Hassan"]
    updated = acme.patch(f"/v1/contacts/{ahmed.json()['id']}", json={
        "name": "Ahmed Hassan Al-Maktoum", "email": "ahmed.new@example.com",
        "attributes": {"loyalty_tier": "platinum"}})
    assert updated.json()["attributes"] == {"shopify_customer_id": "cust_789012",
                                            "loyalty_tier": "platinum"}
    assert search("ahmed hassan al") == ["Ahmed Hassan Al-Maktoum"]


def test_search_and_filters_as_the_seeds_use_them_over_http(acme):
    # Given Ahmed Hassan (seed 002) with two tags, and Sarah with one
    ahmed = acme.post("/v1/contacts", json={
        "phone": "+971501234567", "first_name": "Ahmed", "last_name": "Hassan",
        "tags": ["vip", "returning-customer"]}).json()
    acme.post("/v1/contacts", json={"phone": "+14155557890", "name": "Sarah Johnson",
                                     "tags": ["vip"]})

    def found(params):
        response = acme.get("/v1/contacts", params=params)
        assert response.status_code == 200, response.text
        return [c["id"] for c in response.json()["data"]]

    # Then a later word, international digits and national digits all find him
    assert found({"search": "hassan"}) == [ahmed["id"]]
    assert found({"search": "971501234567"}) == [ahmed["id"]]
    assert found({"search": "050 123 4567", "country_code": "AE"}) == [ahmed["id"]]
    # partial digits are an empty page, not a 400
    assert found({"search": "5012"}) == []
    # a repeated tag parameter requires both tags (the gateway joins them with commas)
    assert found([("tag", "vip"), ("tag", "returning-customer")]) == [ahmed["id"]]
    # and a renamed first name is found at once, with the display name following it
    renamed = acme.patch(f"/v1/contacts/{ahmed['id']}", json={"first_name": "Johnny"}).json()
    assert renamed["name"] == "Johnny Hassan"
    assert found({"search": "johnny"}) == [ahmed["id"]]


def test_priya_in_national_format_and_ravi_paged(acme):
    priya = acme.post("/v1/contacts", json={"name": "Priya Sharma", "phone": "098765 43210",
                                            "country_code": "IN", "language": "hi-IN",
                                            "attributes": {"city": "Mumbai", "tier": "premium"}})
    assert priya.status_code == 201 and priya.json()["phone"] == "+919876543210"
    ravi = acme.post("/v1/contacts", json={"name": "Ravi Kumar", "phone": "+919123456789",
                                           "language": "en-IN"})
    first = acme.get("/v1/contacts", params={"limit": 1}).json()
    second = acme.get("/v1/contacts", params={"limit": 1, "cursor": first["next_cursor"]}).json()
    assert [first["data"][0]["id"], second["data"][0]["id"]] == [ravi.json()["id"],
                                                                 priya.json()["id"]]
    assert second["next_cursor"] is None
    gone = acme.delete(f"/v1/contacts/{priya.json()['id']}")
    assert gone.status_code == 204
    assert acme.delete(f"/v1/contacts/{priya.json()['id']}").status_code == 404


def test_bad_input_names_the_field(acme):
    response = acme.post("/v1/contacts", json={"phone": "+2782", "nickname": "x"})
    assert response.status_code == 400
    assert {e["field"] for e in response.json()["errors"]} == {"phone", "nickname"}
    empty = acme.patch("/v1/contacts/con_01JD8Q2M6W3YQ0V4C7N5T9KX2B", json={})
    assert empty.status_code == 400 and "No valid fields to update" in empty.json()["detail"]


def test_another_org_cannot_see_or_touch_contacts(stack, acme):
    sam = acme.post("/v1/contacts", json={"phone": "+27821234567", "name": "Sam Mokoena"}).json()
    other = stack.client(stack.mint_key(f"org_{uuid.uuid4().hex[:10]}"))
    path = f"/v1/contacts/{sam['id']}"
    assert other.get(path).status_code == 404
    assert other.patch(path, json={"name": "Mallory"}).status_code == 404
    assert other.delete(path).status_code == 404
    assert other.get("/v1/contacts", params={"search": "+27821234567"}).json()["data"] == []
    assert other.get("/v1/contacts", params={"search": "sam"}).json()["data"] == []
    assert acme.get(path).json()["name"] == "Sam Mokoena"


def test_requests_without_a_valid_key_are_refused(stack):
    assert stack.client().get("/v1/contacts").status_code == 401
    bad = stack.client("ck_" + "x" * 43).get("/v1/contacts")
    assert bad.status_code == 403
