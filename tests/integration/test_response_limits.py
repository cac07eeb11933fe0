"""Every response fits Lambda's 6 MB proxy limit as encoded (SPEC §9.1): list pages and
bulk results are cut by their encoded size, whatever the contacts hold; and stored numbers
come back in a form the API takes again."""

from __future__ import annotations

import json
from typing import Any

import boto3

from contacts_core.contacts.changes import ContactChanges
from contacts_core.contacts.requests import ContactCreate
from contacts_core.contacts.store import ContactStore
from contacts_core.dynamodb import serialize
from contacts_core.http.responses import LAMBDA_RESPONSE_LIMIT

# 50 attributes of 1,000 quotes: 100 KB in the API's JSON, 200 KB once escaped into the
# Lambda response — what a contact grown by attribute merges (PATCH) could hold before
# stored contacts were held to 16 KB too, so what older items may still hold.
GROWN = {f"k{n:02d}": '"' * 1000 for n in range(50)}


def seed_grown(dynamodb: str, org_id: str, count: int) -> list[str]:
    """``count`` contacts as large as merges can make them, written straight to the table."""
    client = boto3.client("dynamodb", endpoint_url=dynamodb)
    store = ContactStore(client)
    ids = []
    for i in range(count):
        body = ContactCreate(phone=f"+2782125{i:04d}", first_name="Grown")
        item = ContactChanges.from_request(body).new_item(org_id)
        item.attributes = dict(GROWN)
        store.create(item)
        client.put_item(TableName=store.contacts_table, Item=serialize(item.model_dump()))
        ids.append(item.contact_id)
    return ids


def rendered_size(response: Any) -> int:
    """Bytes of the proxy response as Lambda serializes it."""
    body = json.dumps(response.body) if not isinstance(response.body, str) else response.body
    return len(json.dumps({"statusCode": response.status, "headers": response.headers,
                           "body": body}))


def walk(api, org_id: str, path: str) -> tuple[list[str], list[int]]:
    """Every id a paged listing returns, 100 a page, and each page's rendered size."""
    seen: list[str] = []
    sizes: list[int] = []
    query: dict[str, str] = {"limit": "100"}
    while True:
        page = api.request("GET", path, org_id=org_id, query=query)
        assert page.status == 200, page.body
        sizes.append(rendered_size(page))
        seen += [c["id"] for c in page.body["data"]]
        if page.body["next_cursor"] is None:
            return seen, sizes
        query = {"limit": "100", "cursor": page.body["next_cursor"]}


def test_list_pages_are_cut_to_fit_and_walking_still_returns_everyone(api, org_id, dynamodb):
    # Given 100 contacts of ~200 KB each once encoded (20 MB for a page of 100)
    ids = seed_grown(dynamodb, org_id, 100)
    # When every page of 100 is walked
    seen, sizes = walk(api, org_id, "/v1/contacts")
    # Then each page fits 6 MB, pages were cut, and every contact came exactly once
    assert all(size <= LAMBDA_RESPONSE_LIMIT for size in sizes), sizes
    assert len(sizes) > 1
    assert sorted(seen) == sorted(ids) and len(seen) == len(set(seen))


def test_bulk_results_fit_and_keep_every_items_outcome(api, org_id, dynamodb):
    # Given 100 grown contacts
    ids = seed_grown(dynamodb, org_id, 100)
    # When a bulk upsert touches each of them
    # (a change that does not grow them: an item over 16 KB may not grow any more)
    items = [{"phone": f"+2782125{i:04d}", "first_name": "Grew"} for i in range(100)]
    response = api.request("POST", "/v1/contacts/bulk", org_id=org_id,
                           json_body={"contacts": items})
    # Then the response fits 6 MB, every item has its outcome and id, some without contact
    assert response.status == 200
    assert rendered_size(response) <= LAMBDA_RESPONSE_LIMIT
    results = response.body["results"]
    assert [r["status"] for r in results] == ["updated"] * 100
    assert [r["id"] for r in results] == ids
    with_contact = [r for r in results if r["contact"] is not None]
    assert 0 < len(with_contact) < 100
    assert all(r["contact"]["first_name"] == "Grew" for r in with_contact)


def test_stored_numbers_read_back_in_a_form_the_api_takes(api, org_id):
    # Given a contact with numbers at DynamoDB's edges
    attributes = {"long": 0.12345678901234566, "tiny": 1e-130, "int": 10**38 - 1,
                  "neg": -2.5e-100}
    created = api.request("POST", "/v1/contacts", org_id=org_id,
                          json_body={"email": "n@example.com", "attributes": attributes})
    assert created.status == 201, created.body
    # When it is read and its attributes are sent back as read
    read = api.request("GET", f"/v1/contacts/{created.body['id']}", org_id=org_id).body
    again = api.request("PATCH", f"/v1/contacts/{read['id']}", org_id=org_id,
                        json_body={"attributes": read["attributes"]})
    # Then they are the same numbers and the API takes them back (nothing changes)
    assert read["attributes"] == attributes
    assert again.status == 200, again.body
    assert again.body["version"] == read["version"]


def test_member_pages_are_cut_to_fit_and_walking_still_returns_everyone(api, org_id,
                                                                        dynamodb):
    # Given an audience of 60 contacts of ~200 KB each once encoded
    ids = seed_grown(dynamodb, org_id, 60)
    audience = api.request("POST", "/v1/audiences", org_id=org_id,
                           json_body={"name": "Grown"}).body
    added = api.request("POST", f"/v1/audiences/{audience['id']}/contacts", org_id=org_id,
                        json_body={"contact_ids": ids})
    assert added.body["added"] == 60
    # When its members are walked 100 at a time
    seen, sizes = walk(api, org_id, f"/v1/audiences/{audience['id']}/contacts")
    # Then each page fits 6 MB and every member came exactly once
    assert all(size <= LAMBDA_RESPONSE_LIMIT for size in sizes), sizes
    assert len(sizes) > 1
    assert sorted(seen) == sorted(ids) and len(seen) == len(set(seen))


def test_an_audience_name_too_long_for_its_key_is_refused(api, org_id):
    # Given a 128-character name whose folded form is 4 KB ("ﷺ" folds to 18 characters)
    name = "ﷺ" * 128
    # When an audience is created with it
    response = api.request("POST", "/v1/audiences", org_id=org_id, json_body={"name": name})
    # Then 400 naming the field, and no audience exists
    assert response.status == 400, response.body
    assert [e["field"] for e in response.body["errors"]] == ["name"]
    assert api.request("GET", "/v1/audiences", org_id=org_id).body["data"] == []
