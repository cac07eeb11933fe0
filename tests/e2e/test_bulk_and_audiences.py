"""Bulk operations and audiences over HTTP through the local stack (issue 3)."""

from __future__ import annotations

import uuid

import pytest

pytestmark = pytest.mark.e2e


@pytest.fixture
def acme(stack):
    return stack.client(stack.mint_key(f"org_{uuid.uuid4().hex[:10]}"))


def test_bulk_import_then_audience_then_bulk_delete(acme):
    # Given the seed's bulk import, with one item repeating a phone and one invalid
    contacts = [{"phone": "+971501111111", "name": "Contact One", "tags": ["imported"]},
                {"phone": "+971502222222", "name": "Contact Two", "tags": ["imported"]},
                {"phone": "+971503333333", "name": "Contact Three", "email": "three@example.com"},
                {"phone": "+971 50 111 1111", "language": "ar-AE"},
                {"phone": "not a number"}]
    bulk = acme.post("/v1/contacts/bulk", json={"contacts": contacts})
    assert bulk.status_code == 200, bulk.text
    body = bulk.json()
    assert (body["created"], body["updated"], body["failed"]) == (3, 1, 1)
    assert body["results"][3]["id"] == body["results"][0]["id"]
    assert body["results"][4]["error"]["errors"][0]["field"] == "phone"
    ids = [r["id"] for r in body["results"][:3]]
    # When they join an audience (twice, through both routes)
    audience = acme.post("/v1/audiences", json={"name": "Imported"}).json()
    added = acme.post(f"/v1/audiences/{audience['id']}/contacts",
                      json={"contact_ids": ids}).json()
    again = acme.post("/v1/contacts/add-to-audience",
                      json={"audience_id": audience["id"], "contact_ids": ids}).json()
    assert (added["added"], again["already_members"], again["contact_count"]) == (3, 3, 3)
    members = acme.get(f"/v1/audiences/{audience['id']}/contacts").json()["data"]
    assert sorted(m["id"] for m in members) == sorted(ids)
    # Then bulk delete removes them from the audience too
    deleted = acme.post("/v1/contacts/bulk-delete", json={"contact_ids": [*ids, "con_x"]})
    assert deleted.json() == {"deleted": 3, "not_found": ["con_x"], "failed": []}
    assert acme.get(f"/v1/audiences/{audience['id']}").json()["contact_count"] == 0
    assert acme.delete(f"/v1/audiences/{audience['id']}").status_code == 204


def test_more_than_1000_items_is_refused_whole(acme):
    too_many = [{"email": f"p{i}@example.com"} for i in range(1001)]
    response = acme.post("/v1/contacts/bulk", json={"contacts": too_many})
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "contacts"
    assert acme.get("/v1/contacts").json()["data"] == []
