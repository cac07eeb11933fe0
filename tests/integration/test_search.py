"""Search, filters and incremental sync (SPEC §9.3) through the list handler, against
DynamoDB Local: word-prefix names, exact identifiers through the guards, every filter,
the read budget, and the DynamoDB calls (round trips, read units, never a Scan)."""

from __future__ import annotations

import random
import threading
import time
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contacts_core.audiences import operations as audiences
from contacts_core.audiences.store import AudienceStore
from contacts_core.contacts import search
from contacts_core.contacts.search import ListQuery, list_contacts
from contacts_core.contacts.store import ContactStore
from contacts_core.ids import now
from tests.integration.conftest import OrgClient


def ids(response: Any) -> list[str]:
    assert response.status == 200, response.body
    return [c["id"] for c in response.body["data"]]


def walk(call: Any, query: dict[str, str]) -> list[dict[str, Any]]:
    """Every page of ``GET /v1/contacts`` with ``query``; the contacts in order."""
    found: list[dict[str, Any]] = []
    cursor = None
    for _ in range(1000):
        page = call("GET", "/v1/contacts", query=query | ({"cursor": cursor} if cursor else {}))
        assert page.status == 200, page.body
        found += page.body["data"]
        cursor = page.body["next_cursor"]
        if cursor is None:
            return found
    raise AssertionError("the walk did not end")


def test_a_long_search_term_is_searched_by_its_first_words(call):
    # Given Ahmed Hassan
    ahmed = call.create({"email": "ahmed@example.com", "first_name": "Ahmed",
                         "last_name": "Hassan"})
    # When the term's first words are his and it goes on far past any limit of ours
    found = call("GET", "/v1/contacts",
                 query={"search": "ahm has " + "x" * 70 + " " + "y " * 3000})
    longer = call("GET", "/v1/contacts", query={"search": "ahm has " + "x" * 70})
    # Then it is searched like the words that are indexed: his name and a 64-character
    # prefix of the third word, which his name lacks, so no match — and never a 400
    assert ids(found) == [] and ids(longer) == []
    assert ids(call("GET", "/v1/contacts", query={"search": "ahm has"})) == [ahmed["id"]]


@pytest.mark.parametrize("query", [
    {"tag": ",".join(f"{n:02d}" + "t" * 62 for n in range(50))},
    {"search": "sam " * 400},
    {"sort": "name"},
])
def test_every_cursor_a_listing_issues_it_takes_back(call, query):
    # Given contacts that every query below matches, with the longest names there are
    # ("ﷺ" folds to 18 characters: the name-index key is near DynamoDB's 1,024 bytes)
    tags = query.get("tag", "vip").split(",")
    for n in range(3):
        call.create({"email": f"long{n}@example.com", "first_name": "Sam" + "ﷺ" * 13,
                     "last_name": "ﷺ" * 14, "tags": tags})
    # When the whole listing is walked one contact a page
    walked = walk(call, query | {"limit": "1"})
    # Then every cursor was accepted and each contact came once
    assert len(walked) == 3 and len({c["id"] for c in walked}) == 3


# ---------------------------------------------------------------------- names
def test_name_search_is_word_prefix_over_first_last_and_display_name(call):
    # Given a few people
    ahmed = call.create({"email": "ahmed@example.com", "first_name": "Ahmed",
                         "last_name": "Hassan"})
    zoe = call.create({"email": "zoe@example.com", "first_name": "Zoë",
                       "last_name": "Ångström-Lee"})
    boss = call.create({"email": "boss@example.com", "first_name": "Maria",
                        "name": "The Boss"})

    def find(term: str) -> list[str]:
        return ids(call("GET", "/v1/contacts", query={"search": term}))

    # Then any word of any name part matches by prefix, case- and accent-insensitive
    assert find("hass") == [ahmed["id"]]
    assert find("ahm has") == [ahmed["id"]] == find("HAS ahm")
    assert find("ahmed x") == []
    assert find("assan") == []  # a prefix of a word, not any substring
    assert find("angstrom") == [zoe["id"]] == find("LEE zo")
    assert find("boss") == [boss["id"]] == find("maria")  # first_name and the set name
    assert find("the boss maria") == [boss["id"]]


def test_sort_by_name_puts_a_name_before_longer_ones_and_the_nameless_last(call):
    # Given names that begin other names, accents, and contacts without a name
    people = {label: call.create({"email": f"n{n}@example.com"} | body)["id"]
              for n, (label, body) in enumerate([
                  ("Ahmed van der Berg", {"first_name": "Ahmed", "last_name": "van der Berg"}),
                  ("nameless 1", {}),
                  ("Ahmed", {"first_name": "Ahmed"}),
                  ("anna García", {"name": "anna García"}),
                  ("Anna", {"first_name": "Anna"}),
                  ("Anna Garcia", {"first_name": "Anna", "last_name": "Garcia"}),
                  ("nameless 2", {}),
                  ("Zoë", {"first_name": "Zoë"})])}
    named = ["Ahmed", "Ahmed van der Berg", "Anna", "anna García", "Anna Garcia", "Zoë"]
    nameless = sorted(["nameless 1", "nameless 2"], key=people.__getitem__)
    # When they are listed by name, both ways, two to a page
    ascending = walk(call, {"sort": "name", "order": "asc", "limit": "2"})
    descending = walk(call, {"sort": "name", "order": "desc", "limit": "2"})
    # Then a name comes before the longer names it begins (equal folded names by id), and
    # contacts without a name come after every name (before, descending)
    labels = {v: k for k, v in people.items()}
    order = [labels[c["id"]] for c in ascending]
    assert order[:2] == ["Ahmed", "Ahmed van der Berg"] and order[-2:] == nameless
    assert order[2] == "Anna" and set(order[3:5]) == {"anna García", "Anna Garcia"}
    assert order[5] == "Zoë" and sorted(order) == sorted([*named, *nameless])
    assert [labels[c["id"]] for c in descending] == order[::-1]


def test_name_follows_first_and_last_until_the_client_sets_it(call):
    ahmed = call.create({"email": "a@example.com", "first_name": "Ahmed",
                         "last_name": "Hassan"})
    path = f"/v1/contacts/{ahmed['id']}"
    # When the first name changes, the display name follows and is searchable
    renamed = call("PATCH", path, {"first_name": "Johnny"}).body
    assert renamed["name"] == "Johnny Hassan"
    assert ids(call("GET", "/v1/contacts", query={"search": "johnny"})) == [ahmed["id"]]
    assert ids(call("GET", "/v1/contacts", query={"search": "ahmed"})) == []
    # When the client sets the name, it stays through later part changes
    call("PATCH", path, {"name": "JH"})
    assert call("PATCH", path, {"last_name": "Smith"}).body["name"] == "JH"
    assert ids(call("GET", "/v1/contacts", query={"search": "hassan"})) == []
    assert ids(call("GET", "/v1/contacts", query={"search": "smith jh"})) == [ahmed["id"]]
    # And clearing it puts the default back
    assert call("PATCH", path, {"name": None}).body["name"] == "Johnny Smith"
    # An upsert and a bulk item follow the same rule
    upserted = call("POST", "/v1/contacts/upsert", {"email": "a@example.com",
                                                     "first_name": "John"}).body
    assert upserted["contact"]["name"] == "John Smith"
    bulk = call("POST", "/v1/contacts/bulk", {"contacts": [
        {"email": "a@example.com", "last_name": "Doe"}]}).body
    assert bulk["results"][0]["contact"]["name"] == "John Doe"
    assert ids(call("GET", "/v1/contacts", query={"search": "doe"})) == [ahmed["id"]]


def test_a_name_match_appears_once_however_many_of_its_words_match(call):
    anna = call.create({"email": "anna@example.com", "first_name": "Anna",
                        "last_name": "Andersson", "name": "Anna Annika Andersson"})
    assert ids(call("GET", "/v1/contacts", query={"search": "an"})) == [anna["id"]]
    assert ids(call("GET", "/v1/contacts",
                    query={"search": "an", "order": "desc"})) == [anna["id"]]


# ---------------------------------------------------------------------- exact
def test_phone_search_takes_e164_international_digits_and_national_with_country(call):
    # international digits also after the 00 prefix, whatever country_code says
    sam = call.create({"phone": "+971501234567", "first_name": "Sam"})
    for query in [{"search": "+971501234567"}, {"search": "+971 50 123 4567"},
                  {"search": "971501234567"}, {"search": "050 123 4567", "country_code": "AE"},
                  {"search": "0501234567", "country_code": "ae"},
                  {"search": "00971501234567"}, {"search": "00 971 50 123 4567"},
                  {"search": "00971501234567", "country_code": "ZA"}]:
        assert ids(call("GET", "/v1/contacts", query=query)) == [sam["id"]], query


@pytest.mark.parametrize("term", [
    "5012", "50123", "+9715", "0501234567", "+", "@", "a@", "@@x", "%", "((", "x" * 2000,
    "x" * 3000, "zed " * 5000, "+" + "9" * 5000, "a@" + "b" * 5000, "ﷺ" * 3000,
    "🙂", "\u200b", "con_01JD8Q2M6W3YQ0V4C7N5T9KX2B", "-1", "null", "*", "a\\b"])
def test_a_search_term_never_answers_400_and_no_match_is_an_empty_page(call, term):
    call.create({"phone": "+971501234567", "first_name": "Sam"})
    response = call("GET", "/v1/contacts", query={"search": term})
    assert response.status == 200, response.body
    assert response.body["data"] == [] and response.body["next_cursor"] is None


def test_exact_searches_read_the_guards_consistently_and_never_query(call, org_id, log):
    sam = call.create({"phone": "+27821234567", "email": "Sam@Example.com",
                       "external_id": "crm-42", "first_name": "Sam"})
    for term in ["+27821234567", "27821234567", "SAM@example.com", "crm-42"]:
        page, calls = log.during(lambda t=term: list_contacts(org_id, ListQuery(search=t)))
        assert [c.id for c in page.data] == [sam["id"]], term
        # one BatchGetItem of the guards, one GetItem of the contact, both consistent
        assert calls == ["BatchGetItem", "GetItem"], term
        guards, contact = (params for _, params in log.requests)
        assert all(r["ConsistentRead"] for r in guards["RequestItems"].values())
        assert contact["ConsistentRead"] is True


def test_an_external_id_equal_to_a_phone_email_or_name_hides_no_holder(call, org_id):
    # Given Sam (phone, email), Ahmed Hassan (vip), and contacts whose external ids are
    # Sam's phone, Sam's email and the word "hassan"
    sam = call.create({"phone": "+27821234567", "email": "sam@example.com"})
    ahmed = call.create({"email": "ahmed@example.com", "first_name": "Ahmed",
                         "last_name": "Hassan", "tags": ["vip"]})
    by_phone, by_email, by_word = (call.create({"external_id": x, "first_name": "Ext"})
                                   for x in ("+27821234567", "sam@example.com", "hassan"))
    # When each term is searched
    # Then every holder comes, the external id's first, each once
    assert ids(call("GET", "/v1/contacts", query={"search": "+27821234567"})) == \
        [by_phone["id"], sam["id"]]
    assert ids(call("GET", "/v1/contacts", query={"search": "sam@example.com"})) == \
        [by_email["id"], sam["id"]]
    # And filters judge each holder; a text term whose external-id holder is filtered
    # out is a name search
    assert ids(call("GET", "/v1/contacts", query={"search": "+27821234567",
                                                  "has_email": "true"})) == [sam["id"]]
    assert ids(call("GET", "/v1/contacts", query={"search": "hassan"})) == [by_word["id"]]
    assert ids(call("GET", "/v1/contacts", query={"search": "hassan", "tag": "vip"})) == \
        [ahmed["id"]]
    assert ids(call("GET", "/v1/contacts", query={"search": "+27821234567",
                                                  "tag": "vip"})) == []


# ---------------------------------------------------------------------- filters
def test_tags_are_all_required_whether_repeated_or_comma_joined(call):
    both = call.create({"email": "both@example.com", "tags": ["a", "b"]})
    call.create({"email": "one@example.com", "tags": ["a"]})
    # API Gateway (payload 2.0) joins a repeated parameter with commas
    assert ids(call("GET", "/v1/contacts", query={"tag": "a,b"})) == [both["id"]]
    assert ids(call("GET", "/v1/contacts", query={"tag": "b"})) == [both["id"]]
    assert len(ids(call("GET", "/v1/contacts", query={"tag": "a"}))) == 2
    # each filter value is trimmed, as stored tags are
    assert ids(call("GET", "/v1/contacts", query={"tag": " a , b "})) == [both["id"]]


def test_an_audience_filter_that_names_no_audience_is_an_empty_page_repeated_a_400(call):
    contact = call.create({"email": "member@example.com"})
    audience = call("POST", "/v1/audiences", {"name": "Filter"}).body["id"]
    assert call("POST", f"/v1/audiences/{audience}/contacts",
                {"contact_ids": [contact["id"]]}).status == 200
    assert ids(call("GET", "/v1/contacts", query={"audience_id": audience})) == [contact["id"]]
    # an id of any length or bytes is an audience with no members: an empty page
    for odd in ("aud_" + "A" * 300, "x", "aud_nope"):
        page = call("GET", "/v1/contacts", query={"audience_id": odd})
        assert page.status == 200 and page.body == {"data": [], "next_cursor": None}
    # a repeated parameter (payload 2.0 joins it with a comma) names none: 400, not a
    # silently empty page
    repeated = call("GET", "/v1/contacts", query={"audience_id": f"{audience},{audience}"})
    assert repeated.status == 400
    assert [e["field"] for e in repeated.body["errors"]] == ["audience_id"]


def test_a_tag_matches_however_its_accents_were_encoded(call):
    # Given contacts tagged "café" decomposed (e + U+0301) and composed (U+00E9)
    decomposed = call.create({"email": "d@example.com", "tags": ["cafe\u0301"]})
    composed = call.create({"email": "c@example.com", "tags": ["caf\u00e9"]})
    assert decomposed["tags"] == composed["tags"] == ["caf\u00e9"]
    # When either form is the filter, Then both contacts are found
    for tag in ("cafe\u0301", "caf\u00e9"):
        assert sorted(ids(call("GET", "/v1/contacts", query={"tag": tag}))) == \
            sorted([decomposed["id"], composed["id"]])


@pytest.mark.parametrize("path", ["/v1/contacts", "/v1/contacts/upsert"])
def test_a_tag_cannot_hold_a_comma_the_filter_could_not_name_it(call, path):
    response = call("POST", path, {"email": "comma@example.com", "tags": ["ok", "x,y"]})
    assert response.status == 400
    assert [e["field"] for e in response.body["errors"]] == ["tags.1"]
    assert ids(call("GET", "/v1/contacts", query={"search": "comma@example.com"})) == []


def test_filters_combine_with_search_sort_and_paging(call):
    # Given Hassans in various states, and others
    made = [call.create({"phone": f"+2782123{i:04d}", "first_name": f"Ahmed{i}",
                         "last_name": "Hassan", "tags": ["vip"] if i % 2 else [],
                         "consent": {"sms": "opted_in" if i % 3 == 0 else "unknown"}})
            for i in range(12)]
    call.create({"email": "other@example.com", "first_name": "Other", "tags": ["vip"]})
    # When searching with filters, in pages of 2
    found = walk(call, {"search": "hass", "tag": "vip", "consent_sms": "opted_in",
                        "limit": "2"})
    # Then exactly the matching ones come, once each
    expected = {c["id"] for i, c in enumerate(made) if i % 2 and i % 3 == 0}
    assert [c["id"] for c in found] == sorted(expected)  # one matched word: by creation
    assert len(found) == len(expected) == 2


@pytest.mark.parametrize("query,expected", [
    ({"suppressed": "true"}, {"quiet"}),
    ({"suppressed": "false", "has_email": "true"}, {"mail", "both"}),
    ({"has_phone": "true"}, {"phone", "both", "quiet"}),
    ({"has_phone": "false"}, {"mail"}),
    ({"has_email": "false", "suppressed": "false"}, {"phone"}),
    ({"source": "import"}, {"both"}),
    ({"consent_whatsapp": "opted_out"}, {"quiet"}),
    ({"consent_email": "opted_in", "has_phone": "true"}, {"both"}),
    ({"consent_voice": "unknown", "source": "api"}, {"phone", "mail", "quiet"}),
])
def test_each_filter_against_its_definition(call, query, expected):
    made = {
        "phone": call.create({"phone": "+27821230001"}),
        "mail": call.create({"email": "m@example.com", "consent": {"email": "opted_out"}}),
        "both": call.create({"phone": "+27821230002", "email": "b@example.com",
                             "source": "import", "consent": {"email": "opted_in",
                                                             "voice": "opted_in"}}),
        "quiet": call.create({"phone": "+27821230003", "suppressed": True,
                              "consent": {"whatsapp": "opted_out"}}),
    }
    for sort in ("created_at", "updated_at", "name"):
        found = ids(call("GET", "/v1/contacts", query=query | {"sort": sort}))
        assert set(found) == {made[k]["id"] for k in expected}, (query, sort)


def test_audience_filter_reads_the_members_and_keeps_other_filters(call, log, org_id):
    a, b, c = (call.create({"email": f"{n}@example.com", "tags": [n]}) for n in "abc")
    audience = call("POST", "/v1/audiences", {"name": "Friends"}).body
    call("POST", f"/v1/audiences/{audience['id']}/contacts", {"contact_ids": [a["id"], c["id"]]})
    query = {"audience_id": audience["id"]}
    assert ids(call("GET", "/v1/contacts", query=query)) == [c["id"], a["id"]]
    assert ids(call("GET", "/v1/contacts", query=query | {"tag": "a"})) == [a["id"]]
    assert ids(call("GET", "/v1/contacts", query=query | {"order": "asc"})) == [a["id"], c["id"]]
    assert ids(call("GET", "/v1/contacts", query={"audience_id": "aud_nope"})) == []
    assert b["id"] not in ids(call("GET", "/v1/contacts", query=query | {"sort": "name"}))
    # served by the membership table, not by reading the whole org
    _, calls = log.during(lambda: list_contacts(org_id, ListQuery(audience_id=audience["id"])))
    assert calls == ["GetItem", "Query", "BatchGetItem"]  # the audience is the org's, live
    assert log.requests[1][1]["TableName"].endswith("AudienceMembersTable")


def test_another_orgs_audience_filters_like_an_unknown_one(api, call, log, org_id):
    # Given another org's audience with members
    other = OrgClient(api, f"{org_id}_other")
    members = [other.create({"email": f"o{i}@example.com"})["id"] for i in range(3)]
    theirs = other("POST", "/v1/audiences", {"name": "Theirs"}).body["id"]
    other("POST", f"/v1/audiences/{theirs}/contacts", {"contact_ids": members})
    call.create({"email": "mine@example.com"})
    # When this org filters by it, under every plan
    for query in ({}, {"sort": "name"}, {"sort": "updated_at"}, {"limit": "1"}):
        page = call("GET", "/v1/contacts", query=query | {"audience_id": theirs})
        # Then it is an empty last page, as for an id that does not exist (I4)
        assert page.status == 200 and page.body == {"data": [], "next_cursor": None}, query
    # without reading the other org's members (whose count its empty pages would show)
    _, calls = log.during(lambda: list_contacts(org_id, ListQuery(audience_id=theirs)))
    assert calls == ["GetItem"]


def test_an_audience_being_deleted_filters_nothing(api, call, org_id, monkeypatch):
    # Given an audience whose delete left members to the stream (it answers 404 already)
    monkeypatch.setattr(audiences, "INLINE_DELETE_MEMBERS", 0)
    members = [call.create({"email": f"d{i}@example.com"})["id"] for i in range(3)]
    audience = call("POST", "/v1/audiences", {"name": "Going"}).body["id"]
    call("POST", f"/v1/audiences/{audience}/contacts", {"contact_ids": members})
    assert call("DELETE", f"/v1/audiences/{audience}").status == 204
    assert call("GET", f"/v1/audiences/{audience}").status == 404
    left = AudienceStore().get(org_id, audience)
    assert left.deleting and left.contact_count > 0
    # When contacts are filtered by it
    page = call("GET", "/v1/contacts", query={"audience_id": audience})
    # Then none are, as for a deleted audience
    assert page.body == {"data": [], "next_cursor": None}


def test_created_and_updated_ranges_are_inclusive_after_exclusive_before(call):
    first = call.create({"email": "1@example.com"})
    time.sleep(0.01)
    second = call.create({"email": "2@example.com"})
    time.sleep(0.01)
    third = call.create({"email": "3@example.com"})
    t1, t2, t3 = first["created_at"], second["created_at"], third["created_at"]
    assert ids(call("GET", "/v1/contacts", query={"created_after": t2})) == \
        [third["id"], second["id"]]
    assert ids(call("GET", "/v1/contacts", query={"created_before": t2})) == [first["id"]]
    assert ids(call("GET", "/v1/contacts", query={"created_after": t1,
                                                   "created_before": t3})) == \
        [second["id"], first["id"]]
    assert ids(call("GET", "/v1/contacts", query={"created_after": t3,
                                                   "created_before": t1})) == []
    touched = call("PATCH", f"/v1/contacts/{first['id']}", {"tags": ["x"]}).body
    assert ids(call("GET", "/v1/contacts", query={
        "sort": "updated_at", "updated_after": touched["updated_at"]})) == [first["id"]]
    assert set(ids(call("GET", "/v1/contacts", query={
        "sort": "updated_at", "updated_before": touched["updated_at"]}))) == \
        {second["id"], third["id"]}
    # any ISO 8601 form: an offset, or none (UTC)
    assert ids(call("GET", "/v1/contacts", query={
        "created_after": t3.replace("Z", "+00:00")})) == [third["id"]]
    assert ids(call("GET", "/v1/contacts", query={"created_after": t3[:-1]})) == [third["id"]]


@pytest.mark.parametrize("query", [{}, {"sort": "updated_at"}, {"sort": "name"},
                                   {"search": "merged"}, {"tag": "t"}])
def test_a_merged_contact_is_in_exactly_one_half_of_any_created_split(call, query):
    # Given a source, then 20 ms later a target, merged: the target now shows the
    # source's earlier created_at (SPEC §9.2), while its id holds its own creation time
    source = call.create({"email": "s@example.com", "first_name": "Merged", "tags": ["t"]})
    time.sleep(0.02)
    target = call.create({"phone": "+27821230001", "first_name": "Merged", "tags": ["t"]})
    merged = call("POST", f"/v1/contacts/{target['id']}/merge", {"source_id": source["id"]})
    assert merged.body["created_at"] == source["created_at"] < target["created_at"]
    # When the org's contacts are listed on either side of a time between the two, or
    # either end, under each plan
    for split in (source["created_at"], _later(source["created_at"], 10), target["created_at"],
                  _later(target["created_at"], 1)):
        before = walk(call, query | {"created_before": split, "limit": "1"})
        after = walk(call, query | {"created_after": split, "limit": "1"})
        # Then the merged contact is in exactly one of them (ranged by its own creation)
        halves = [target["id"] in [c["id"] for c in half] for half in (before, after)]
        assert halves == [split > target["created_at"], split <= target["created_at"]], split


def _later(stamp: str, ms: int) -> str:
    moment = datetime.fromisoformat(stamp.replace("Z", "+00:00")) + timedelta(milliseconds=ms)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999Z",
                                    "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00",
                                    "1969-12-31T23:59:59.999Z", "2026-01-01"])
def test_time_bounds_at_the_ends_of_the_calendar_answer_200(call, moment):
    made = call.create({"email": "t@example.com"})
    for sort in ("created_at", "updated_at"):
        for bound in ("created_after", "created_before", "updated_after", "updated_before"):
            response = call("GET", "/v1/contacts", query={bound: moment, "sort": sort})
            assert response.status == 200, (bound, moment, response.body)
            inside = (made["created_at"] >= moment) == bound.endswith("after")
            assert ids(response) == ([made["id"]] if inside else []), (bound, moment)


@pytest.mark.parametrize("query", [{"created_after": "yesterday"}, {"suppressed": "maybe"},
                                   {"consent_sms": "yes"}, {"sort": "phone"},
                                   {"country_code": "ZAF"}, {"has_email": "2"},
                                   {"has_phone": "yes"}, {"has_email": "1"},
                                   {"suppressed": "0"}, {"tag": ""}, {"tag": "vip,"}])
def test_a_bad_filter_answers_400_naming_it(call, query):
    response = call("GET", "/v1/contacts", query=query)
    assert response.status == 400, response.body
    assert response.body["errors"][0]["field"].split(".")[0] == next(iter(query))


def test_boolean_filters_take_true_or_false_in_any_case(call):
    phoned = call.create({"phone": "+27821239911"})
    emailed = call.create({"email": "bool@example.com"})
    for value, expected in (("true", [phoned]), ("TRUE", [phoned]), ("False", [emailed])):
        assert ids(call("GET", "/v1/contacts", query={"has_phone": value})) == [
            c["id"] for c in expected]


# ---------------------------------------------------------------------- budget and costs
def test_a_rare_filter_answers_within_the_read_budget_and_still_pages(call, org_id, monkeypatch,
                                                                      log):
    # Given 30 contacts of which only the oldest is tagged, and a budget of 10 entries
    made = call("POST", "/v1/contacts/bulk", {"contacts": [
        {"email": f"r{i}@example.com", "tags": ["rare"] if i == 0 else []}
        for i in range(30)]}).body
    rare = made["results"][0]["id"]
    monkeypatch.setattr(search, "READ_BUDGET", 10)
    # When the first page is asked for
    page, calls = log.during(lambda: list_contacts(org_id, ListQuery(tag=["rare"])))
    # Then it answers after the budget with no match but a cursor, in one Query
    assert page.data == [] and page.next_cursor
    assert calls == ["Query"] and log.requests[0][1]["Limit"] == 10
    # And walking on finds the one match, once, and ends
    assert [c["id"] for c in walk(call, {"tag": "rare"})] == [rare]


def test_page_costs_round_trips_and_read_units(call, org_id, log):
    # Given 25 contacts named Hassan
    call("POST", "/v1/contacts/bulk", {"contacts": [
        {"email": f"c{i}@example.com", "first_name": f"N{i}", "last_name": "Hassan",
         "tags": ["t"] if i % 5 == 0 else []} for i in range(25)]})
    costs: dict[str, tuple[list[str], float]] = {}
    for label, query in [("plain", ListQuery()), ("updated", ListQuery(sort="updated_at")),
                         ("name", ListQuery(sort="name")),
                         ("filtered", ListQuery(tag=["t"])),
                         ("words", ListQuery(search="hassan")),
                         ("exact", ListQuery(search="c3@example.com"))]:
        store = ContactStore()
        page, calls = log.during(lambda q=query, s=store: list_contacts(org_id, q, s))
        assert len(page.data) == (5 if label == "filtered" else 1 if label == "exact" else 20)
        costs[label] = (calls, store.reads.read_units)
    # Then each plan makes the calls it documents, and never scans
    assert costs["plain"][0] == costs["updated"][0] == ["Query"]
    assert costs["filtered"][0] == ["Query"]
    assert costs["name"][0] == ["Query", "BatchGetItem"]
    # a first search page checks whether the term is an external id (one guard read)
    assert costs["words"][0] == ["BatchGetItem", "Query", "BatchGetItem"]
    assert costs["exact"][0] == ["BatchGetItem", "GetItem"]
    # read units are reported by DynamoDB and stay small for a page of 20
    for label in ("plain", "updated", "name", "words", "filtered", "exact"):
        assert 0 < costs[label][1] <= 30, (label, costs[label])


# ---------------------------------------------------------------------- incremental sync
def test_incremental_sync_returns_every_change_once_while_writes_go_on(call):
    # Given 40 contacts, then a sync point T, then changes to some of them
    made = call("POST", "/v1/contacts/bulk", {"contacts": [
        {"email": f"s{i}@example.com", "first_name": f"S{i}"} for i in range(40)]}).body
    contact_ids = [r["id"] for r in made["results"]]
    time.sleep(0.005)
    since = now()  # the same clock as the API's, in-process
    time.sleep(0.005)
    before_walk = contact_ids[:10]
    for cid in before_walk:
        call("PATCH", f"/v1/contacts/{cid}", {"tags": ["before"]})
    during_walk = contact_ids[10:30]
    # When the walk (pages of 3) runs while another client changes 20 more, one each
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            for cid in during_walk:
                call("PATCH", f"/v1/contacts/{cid}", {"tags": ["during"]})
                time.sleep(0.002)
        except BaseException as err:
            errors.append(err)

    thread = threading.Thread(target=writer)
    thread.start()
    query = {"sort": "updated_at", "updated_after": since, "limit": "3"}
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        writes_done = not thread.is_alive()  # before the read: nothing can come after it
        page = call("GET", "/v1/contacts", query=query | ({"cursor": cursor} if cursor else {}))
        seen += page.body["data"]
        cursor = page.body["next_cursor"]
        time.sleep(0.005)
        if cursor is None:
            if writes_done:
                break
            # the documented sync loop: at the end, sync again from the last change seen
            thread.join()
            query = query | {"updated_after": seen[-1]["updated_at"]}
    thread.join()
    assert not errors
    # Then every contact changed since T came exactly once (a repeat of the same version
    # at a resume point is the documented inclusive bound), in updated_at order
    versions = list(dict.fromkeys((c["id"], c["version"]) for c in seen))
    returned = [cid for cid, _ in versions]
    assert sorted(returned) == sorted(before_walk + during_walk)
    assert [c["updated_at"] for c in seen] == sorted(c["updated_at"] for c in seen)


# ---------------------------------------------------------------------- explored
def _model_accepts(contact: dict[str, Any], params: dict[str, Any],
                   members: set[str]) -> bool:
    """The filters as the README defines them, on an API contact (independent of the code)."""
    def has(value: Any) -> bool:
        return value is not None
    checks = [
        all(t in contact["tags"] for t in params.get("tag", [])),
        params.get("suppressed") is None or contact["suppressed"] == params["suppressed"],
        params.get("has_phone") is None or has(contact["phone"]) == params["has_phone"],
        params.get("has_email") is None or has(contact["email"]) == params["has_email"],
        params.get("source") is None or contact["source"] == params["source"],
        params.get("audience") is None or contact["id"] in members,
        params.get("created_after") is None or contact["created_at"] >= params["created_after"],
        params.get("created_before") is None or contact["created_at"] < params["created_before"],
        params.get("updated_after") is None or contact["updated_at"] >= params["updated_after"],
        params.get("updated_before") is None or contact["updated_at"] < params["updated_before"],
    ]
    checks += [contact["consent"][c] == params[f"consent_{c}"]
               for c in search.CHANNELS if params.get(f"consent_{c}")]
    return all(checks)


def test_any_combination_of_filters_sort_and_paging_matches_the_model(call, org_id):
    # Given 30 contacts with mixed attributes, some touched later, 10 in an audience
    rng = random.Random(7)
    made = []
    for i in range(30):
        body: dict[str, Any] = {"first_name": rng.choice(["Ann", "Bo", "Cy", None]),
                                "tags": rng.sample(["a", "b", "c"], rng.randint(0, 3)),
                                "suppressed": rng.random() < 0.3,
                                "source": rng.choice(["api", "import"]),
                                "consent": {"sms": rng.choice(["opted_in", "unknown"])}}
        if i % 3:
            body["phone"] = f"+2782555{i:04d}"
        if i % 3 != 1:
            body["email"] = f"m{i}@example.com"
        made.append(call.create(body))
    for contact in made[::4]:
        call("PATCH", f"/v1/contacts/{contact['id']}", {"tags": ["a", "touched"]})
    audience = call("POST", "/v1/audiences", {"name": "Model"}).body
    members = {c["id"] for c in made[5:15]}
    call("POST", f"/v1/audiences/{audience['id']}/contacts", {"contact_ids": sorted(members)})
    contacts = [call("GET", f"/v1/contacts/{c['id']}").body for c in made]
    stamps = sorted({c["created_at"] for c in contacts} | {c["updated_at"] for c in contacts})

    params_strategy = st.fixed_dictionaries({}, optional={
        "tag": st.lists(st.sampled_from(["a", "b", "c", "touched"]), max_size=2, unique=True),
        "suppressed": st.booleans(), "has_phone": st.booleans(), "has_email": st.booleans(),
        "source": st.sampled_from(["api", "import"]),
        "consent_sms": st.sampled_from(["opted_in", "unknown", "opted_out"]),
        "audience": st.just(True),
        "created_after": st.sampled_from(stamps), "created_before": st.sampled_from(stamps),
        "updated_after": st.sampled_from(stamps), "updated_before": st.sampled_from(stamps),
    })

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(params=params_strategy, sort=st.sampled_from(["created_at", "updated_at", "name"]),
           order=st.sampled_from([None, "asc", "desc"]), limit=st.integers(1, 7))
    def explore(params: dict[str, Any], sort: str, order: str | None, limit: int) -> None:
        # When the API is walked page by page with these filters
        query = {k: v for k, v in params.items() if k != "audience"}
        if params.get("audience"):
            query["audience_id"] = audience["id"]
        base = ListQuery(**query, sort=sort, order=order, limit=limit)
        found: list[Any] = []
        cursor = None
        while True:
            page = list_contacts(org_id, base.model_copy(update={"cursor": cursor}))
            found += page.data
            cursor = page.next_cursor
            if cursor is None:
                break
        # Then it returns exactly the model's contacts, once each, in the asked order
        got = [c.id for c in found]
        expected = {c["id"] for c in contacts if _model_accepts(c, params, members)}
        assert len(got) == len(set(got)) and set(got) == expected, (params, sort)
        keys = {"created_at": lambda c: c.id, "updated_at": lambda c: c.updated_at,
                "name": lambda c: (c.name is None, (c.name or "").casefold(), c.id)}[sort]
        ordered = [keys(c) for c in found]
        ascending = base.ascending()
        assert ordered == sorted(ordered, reverse=not ascending), (params, sort, order)

    explore()


def test_a_repeated_single_valued_parameter_is_a_400_a_repeated_tag_means_both(call):
    # Given contacts with external ids "a" and "a,b", and one tagged both "x" and "y"
    call.create({"external_id": "a"})
    call.create({"external_id": "a,b"})
    both = call.create({"email": "xy@example.com", "tags": ["x", "y"]})
    call.create({"email": "x@example.com", "tags": ["x"]})
    # When external_id is given twice (payload 2.0 joins the values: "a,b")
    repeated = call("GET", "/v1/contacts", query={"external_id": ["a", "b"]})
    # Then it is a 400 naming it, not the contact whose id happens to be "a,b"
    assert repeated.status == 400, repeated.body
    assert [e["field"] for e in repeated.body["errors"]] == ["external_id"]
    # And so for any parameter that takes one value, on every listing
    for path, name, value in [("/v1/contacts", "sort", "name"), ("/v1/contacts", "limit", "5"),
                              ("/v1/audiences", "limit", "5"),
                              ("/v1/contacts/export", "limit", "5")]:
        answer = call("GET", path, query={name: [value, value]})
        assert answer.status == 400 and answer.body["errors"][0]["field"] == name, (path, name)
    # While a repeated tag asks for contacts holding every one of them
    assert ids(call("GET", "/v1/contacts", query={"tag": ["x", "y"]})) == [both["id"]]


@pytest.mark.parametrize("path", ["/v1/contacts", "/v1/contacts/export", "/v1/audiences",
                                  "/v1/webhook-endpoints", "/v1/imports"])
def test_an_empty_cursor_is_a_400_not_the_first_page(call, path):
    # Given a listing and a client whose cursor variable went blank
    # When it sends cursor= (empty)
    answer = call("GET", path, query={"cursor": ""})
    # Then it is told so, instead of silently starting over from the first page
    assert answer.status == 400, answer.body
    assert [e["field"] for e in answer.body["errors"]] == ["cursor"]


@pytest.mark.parametrize(("first", "then"), [
    ({}, {"order": "desc"}),
    ({"order": "desc"}, {"order": None}),  # None: the parameter left out
    ({"sort": "updated_at", "updated_after": "2020-01-01"}, {"order": "asc"}),
    ({"tag": "a,b"}, {"tag": "b,a"}),
    ({"tag": "a,b"}, {"tag": "a,b,a"}),
    ({"search": "sam"}, {"order": "asc"}),
])
def test_a_cursor_pages_on_when_the_query_is_written_another_way_that_asks_the_same(
        call, first, then):
    # Given contacts the query matches
    for n in range(3):
        call.create({"email": f"same{n}@example.com", "first_name": "Sam", "tags": ["a", "b"]})
    # When the first page is read one way and the next with the default order spelled
    # out or left out, or the same tags in another order or repeated
    page = call("GET", "/v1/contacts", query=first | {"limit": "2"})
    assert page.status == 200 and page.body["next_cursor"], page.body
    rewritten = {k: v for k, v in (first | then).items() if v is not None}
    following = call("GET", "/v1/contacts",
                     query=rewritten | {"limit": "2", "cursor": page.body["next_cursor"]})
    # Then the cursor is taken and the walk ends with every contact once
    assert following.status == 200, following.body
    walked = ids(page) + ids(following)
    assert len(walked) == 3 == len(set(walked))


def test_a_cursor_is_refused_with_the_other_order(call):
    # Given a first page in the default (newest first) order
    for n in range(3):
        call.create({"email": f"order{n}@example.com"})
    page = call("GET", "/v1/contacts", query={"limit": "2"})
    # When its cursor is sent with the other order
    following = call("GET", "/v1/contacts", query={"limit": "2", "order": "asc",
                                                   "cursor": page.body["next_cursor"]})
    # Then it is refused, naming the cursor
    assert following.status == 400, following.body
    assert [e["field"] for e in following.body["errors"]] == ["cursor"]
