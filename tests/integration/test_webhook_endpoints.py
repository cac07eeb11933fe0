"""Webhook endpoints API (SPEC §5) and the URL rules that keep deliveries off internal
networks (issue 4 outcome 1)."""

from __future__ import annotations

import pytest

from contacts_core.errors import ValidationFailed
from contacts_core.webhooks.endpoints import check_url
from contacts_core.webhooks.urls import UnsafeTarget, parse_url, resolve
from tests.support.hooks import Background, Pause, hooks_fixture  # noqa: F401 - fixture


def create(api, org_id, **body):
    return api.request("POST", "/v1/webhook-endpoints", org_id=org_id,
                       json_body={"url": "https://hooks.example.com/contacts", "events": ["*"]}
                       | body)


def test_secret_is_shown_once_at_creation(api, org_id):
    created = create(api, org_id, events=["contact.created", "contact.deleted"],
                     description="CRM sync")
    assert created.status == 201
    hook = created.body
    assert hook["id"].startswith("whe_") and hook["secret"].startswith("whsec_")
    assert hook["enabled"] is True and hook["events"] == ["contact.created", "contact.deleted"]
    fetched = api.request("GET", f"/v1/webhook-endpoints/{hook['id']}", org_id=org_id).body
    listed = api.request("GET", "/v1/webhook-endpoints", org_id=org_id).body["data"]
    assert "secret" not in fetched and all("secret" not in e for e in listed)
    assert hook["secret"] not in str(fetched) + str(listed)
    assert [e["id"] for e in listed] == [hook["id"]]


def test_an_endpoint_created_without_events_receives_every_event(api, org_id):
    # Given a create body that names only the URL
    created = api.request("POST", "/v1/webhook-endpoints", org_id=org_id,
                          json_body={"url": "https://hooks.example.com/all"})
    # Then the endpoint subscribes to everything, and says so
    assert created.status == 201, created.body
    assert created.body["events"] == ["*"]
    fetched = api.request("GET", f"/v1/webhook-endpoints/{created.body['id']}", org_id=org_id)
    assert fetched.body["events"] == ["*"]


def test_update_and_delete(api, org_id):
    hook = create(api, org_id).body
    path = f"/v1/webhook-endpoints/{hook['id']}"
    updated = api.request("PATCH", path, org_id=org_id,
                          json_body={"enabled": False, "events": ["audience.created"]})
    assert updated.status == 200
    assert (updated.body["enabled"], updated.body["events"]) == (False, ["audience.created"])
    assert api.request("PATCH", path, org_id=org_id, json_body={}).status == 400
    assert api.request("GET", path, org_id=org_id + "x").status == 404
    assert api.request("DELETE", path, org_id=org_id + "x").status == 404
    assert api.request("DELETE", path, org_id=org_id).status == 204
    assert api.request("DELETE", path, org_id=org_id).status == 404


def test_a_blank_description_is_none(api, org_id):
    hook = create(api, org_id, description=" ").body
    assert hook["description"] is None
    path = f"/v1/webhook-endpoints/{hook['id']}"
    assert api.request("PATCH", path, org_id=org_id,
                       json_body={"description": "CRM"}).body["description"] == "CRM"
    assert api.request("PATCH", path, org_id=org_id,
                       json_body={"description": ""}).body["description"] is None


def test_repeated_event_types_are_kept_once_on_create_and_on_patch(api, org_id):
    twice = ["contact.created", "contact.created", "contact.updated"]
    hook = create(api, org_id, events=twice).body
    assert hook["events"] == ["contact.created", "contact.updated"]
    path = f"/v1/webhook-endpoints/{hook['id']}"
    patched = api.request("PATCH", path, org_id=org_id, json_body={"events": twice[::-1]})
    assert patched.body["events"] == ["contact.updated", "contact.created"]
    assert api.request("GET", path, org_id=org_id).body["events"] == patched.body["events"]
    star = api.request("PATCH", path, org_id=org_id, json_body={"events": ["*", "*"]})
    assert star.status == 200 and star.body["events"] == ["*"]


def test_the_list_pages_like_every_list_oldest_first(api, org_id):
    # Given five endpoints
    made = [create(api, org_id, description=f"hook {i}").body["id"] for i in range(5)]
    # When the list is walked two at a time
    seen, cursor, pages = [], None, 0
    while True:
        query = {"limit": "2"} | ({"cursor": cursor} if cursor else {})
        page = api.request("GET", "/v1/webhook-endpoints", org_id=org_id, query=query)
        assert page.status == 200, page.body
        assert len(page.body["data"]) <= 2
        seen += [e["id"] for e in page.body["data"]]
        pages += 1
        cursor = page.body["next_cursor"]
        if cursor is None:
            break
    # Then every endpoint comes once, oldest first, over three pages
    assert seen == made and pages == 3
    # And the default page holds them all, with no next page
    whole = api.request("GET", "/v1/webhook-endpoints", org_id=org_id).body
    assert [e["id"] for e in whole["data"]] == made and whole["next_cursor"] is None


@pytest.mark.parametrize(("query", "field"), [
    ({"limit": "0"}, "limit"), ({"limit": "101"}, "limit"), ({"limit": "abc"}, "limit"),
    ({"cursor": "zzz"}, "cursor"), ({"colour": "red"}, "colour"),
])
def test_a_bad_list_query_answers_400_naming_the_parameter(api, org_id, query, field):
    response = api.request("GET", "/v1/webhook-endpoints", org_id=org_id, query=query)
    assert response.status == 400, response.body
    assert field in [e["field"] for e in response.body["errors"]]


def test_a_cursor_from_another_list_or_org_answers_400(api, org_id):
    # Given a next-page cursor of this org's endpoints
    for _ in range(2):
        create(api, org_id)
    cursor = api.request("GET", "/v1/webhook-endpoints", org_id=org_id,
                         query={"limit": "1"}).body["next_cursor"]
    # When another org, or another list, is asked for that page
    foreign = api.request("GET", "/v1/webhook-endpoints", org_id=org_id + "x",
                          query={"cursor": cursor})
    other_list = api.request("GET", "/v1/audiences", org_id=org_id, query={"cursor": cursor})
    # Then both answer 400 on the cursor
    for response in (foreign, other_list):
        assert response.status == 400, response.body
        assert [e["field"] for e in response.body["errors"]] == ["cursor"]


@pytest.mark.parametrize(("body", "field"), [
    ({"url": "ftp://example.com/x"}, "url"),
    ({"url": "http://hooks.example.com/x"}, "url"),
    ({"events": ["contact.exploded"]}, "events.0"),
    ({"events": []}, "events"),
    ({"events": ["*", "contact.created"]}, "events"),
    ({"secret": "mine"}, "secret"),
])
def test_bad_endpoints_answer_400_naming_the_field(api, org_id, body, field):
    response = create(api, org_id, **body)
    assert response.status == 400
    assert field in [e["field"] for e in response.body["errors"]]


@pytest.mark.parametrize("url", [
    "https://127.0.0.1/hook", "https://localhost/hook", "https://10.0.0.5/hook",
    "https://192.168.1.10/hook", "https://169.254.169.254/latest/meta-data",
    "https://[::1]/hook", "https://[fe80::1]/hook", "http://127.0.0.1:4000/",
    "https://user:pass@hooks.example.com/",
])
def test_on_aws_internal_targets_are_refused(url):
    with pytest.raises(ValidationFailed) as refused:
        check_url(url, loopback_ok=False)
    assert refused.value.errors[0].field == "url"


def test_locally_loopback_http_is_allowed_but_not_other_http():
    check_url("http://127.0.0.1:4000/", loopback_ok=True)
    check_url("http://localhost:4000/hooks", loopback_ok=True)
    check_url("https://hooks.example.com/x", loopback_ok=True)
    with pytest.raises(ValidationFailed):
        check_url("http://hooks.example.com/x", loopback_ok=True)


def test_delivery_time_resolution_refuses_internal_addresses():
    with pytest.raises(UnsafeTarget):
        resolve(parse_url("http://localhost:4000/", loopback_ok=True), loopback_ok=False)
    assert [str(a) for a in resolve(parse_url("http://127.0.0.1:4000/", loopback_ok=True),
                                    loopback_ok=True)] == ["127.0.0.1"]


# ---------------------------------------------------------------- the 20-endpoint limit
def test_two_creates_racing_for_the_20th_place_leave_20_endpoints(api, org_id, hooks):
    # Given an org with 19 endpoints, and a create held right after it counted them
    for n in range(19):
        assert create(api, org_id, url=f"https://hooks.example.com/{n}").status == 201
    held = hooks.add(Pause("Query", table="WebhookEndpoints", actor="first"))
    first = Background(lambda: create(api, org_id, url="https://hooks.example.com/a"),
                       "first", hooks)
    held.wait()
    # When another create runs meanwhile, and then the first one goes on
    second = create(api, org_id, url="https://hooks.example.com/b")
    held.release.set()
    answers = [first.result(), second]
    # Then one of them got the 20th place and the other a 400 naming url: 20 endpoints
    assert sorted(a.status for a in answers) == [201, 400]
    refused = next(a for a in answers if a.status == 400)
    assert [e["field"] for e in refused.body["errors"]] == ["url"]
    listed = api.request("GET", "/v1/webhook-endpoints", org_id=org_id,
                         query={"limit": "100"}).body["data"]
    created = next(a for a in answers if a.status == 201)
    assert len(listed) == 20 and created.body["id"] in {e["id"] for e in listed}


def test_concurrent_creates_never_pass_20_endpoints(api, org_id):
    from concurrent.futures import ThreadPoolExecutor

    # When 30 endpoints are registered at once on an empty org
    with ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(
            lambda n: create(api, org_id, url=f"https://hooks.example.com/{n}"), range(30)))
    # Then at most 20 exist, exactly those answered 201; the rest got 400
    listed = api.request("GET", "/v1/webhook-endpoints", org_id=org_id,
                         query={"limit": "100"}).body["data"]
    created = {a.body["id"] for a in answers if a.status == 201}
    assert len(listed) <= 20 and {e["id"] for e in listed} == created
    assert all(a.status in (201, 400) for a in answers)
