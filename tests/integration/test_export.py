"""CSV export: every part fits Lambda's 6 MB response as encoded, walking ``Link: rel="next"``
returns every contact exactly once, and formula-looking values survive export → import
without ever being written as a formula (SPEC §9.1, issue 8)."""

from __future__ import annotations

import csv
import io
import json
import re
from typing import Any
from urllib.parse import unquote

from contacts_core.contacts.csv_format import FORMULA_TRIGGERS, upsert_body
from contacts_core.contacts.exports import export_contacts
from contacts_core.http.responses import LAMBDA_RESPONSE_LIMIT, encoded_size

NEXT = re.compile(r'^</v1/contacts/export\?cursor=([^>]+)>; rel="next"$')
COMPARED = ("first_name", "last_name", "name", "phone", "email", "external_id", "country_code",
            "language", "tags", "attributes", "consent", "suppressed", "source")


def bulk(api, org_id: str, contacts: list[dict[str, Any]]) -> list[str]:
    ids: list[str] = []
    for start in range(0, len(contacts), 100):
        response = api.request("POST", "/v1/contacts/bulk", org_id=org_id,
                               json_body={"contacts": contacts[start:start + 100]})
        assert response.status == 200, response.body
        results = response.body["results"]
        assert all(r["status"] == "created" for r in results), results
        ids += [r["id"] for r in results]
    return ids


def walk_export(api, org_id: str) -> list[Any]:
    """Every response of the export, following ``Link: rel="next"``."""
    pages, query = [], None
    while True:
        page = api.request("GET", "/v1/contacts/export", org_id=org_id, query=query)
        assert page.status == 200
        pages.append(page)
        link = page.headers.get("Link")
        if link is None:
            return pages
        match = NEXT.fullmatch(link)
        assert match, link
        query = {"cursor": unquote(match.group(1))}


def rows_of(pages) -> list[dict[str, str]]:
    header = next(csv.reader(io.StringIO(pages[0].body, newline="")))
    return [dict(zip(header, row, strict=True))
            for page in pages
            for row in list(csv.reader(io.StringIO(page.body, newline="")))[
                1 if page is pages[0] else 0:]]


def worst_case(i: int) -> dict[str, Any]:
    """A contact of at most 16 KB as sent whose CSV row is as large as possible once
    JSON-encoded: quote-, backslash- and control-character-heavy attributes of 1 KB each,
    non-ASCII (BMP and astral) text, and formula-looking names."""
    values = ['"' * 1024, "\\" * 1024, '"\\' * 512, "\x01\x1f\x7f\"" * 256, "é\"" * 341,
              "😀\"" * 204, '"' * 1024]
    contact: dict[str, Any] = {
        "phone": f"+2782{i:07d}", "first_name": '=cmd|" /C calc"!A0',
        "last_name": 'Zoë "\\" 😀', "tags": ['"q"', "\\b", "=t", "ü"], "attributes": {}}
    for n in range(50):
        candidate = contact["attributes"] | {f'k"{n}': values[n % len(values)]}
        if len(json.dumps(contact | {"attributes": candidate}, separators=(",", ":"))) > 16384:
            break
        contact["attributes"] = candidate
    return contact


def test_every_part_fits_lambdas_response_limit_and_no_contact_is_lost(api, org_id):
    # Given 300 contacts as large as they get once CSV and JSON escaping stack up
    ids = bulk(api, org_id, [worst_case(i) for i in range(300)])
    # When the export is walked through its Link headers
    pages = walk_export(api, org_id)
    # Then every part, as the Lambda response it is, stays under 6 MB
    rendered = [len(json.dumps({"statusCode": p.status, "headers": p.headers, "body": p.body}))
                for p in pages]
    assert all(size <= LAMBDA_RESPONSE_LIMIT for size in rendered), rendered
    # (it had to be split: the whole would not fit one response)
    assert len(pages) > 1 and sum(rendered) > LAMBDA_RESPONSE_LIMIT
    # And every contact comes exactly once, in creation order
    assert [row["id"] for row in rows_of(pages)] == ids


def test_a_smaller_budget_gives_more_parts_each_within_it(api, org_id):
    # Given 40 contacts
    ids = bulk(api, org_id, [{"phone": f"+2783{i:07d}", "name": f'"N{i}" é'}
                             for i in range(40)])
    # When the domain export runs with a budget of a few rows per part
    texts, cursor = [], None
    while True:
        text, cursor = export_contacts(org_id, cursor, budget=1_200)
        texts.append(text)
        if cursor is None:
            break
    # Then each part's encoded size is within the budget and no contact is lost or repeated
    assert len(texts) > 3
    assert all(encoded_size(t) <= 1_200 for t in texts)
    rows = list(csv.reader(io.StringIO("".join(texts), newline="")))
    assert [row[0] for row in rows[1:]] == ids


def test_formulas_are_neutralised_and_import_restores_every_value(api, org_id):
    # Given contacts whose values start like formulas (or like their escape)
    originals = [
        {"phone": "+27821230001", "first_name": "=HYPERLINK(\"http://evil\",\"x\")",
         "last_name": "+SUM(1)", "tags": ["-vip", "@x"], "attributes": {"note": "=1+1"}},
        {"email": "-minus@example.com", "name": "@admin", "language": "en",
         "external_id": "=crm|42"},
        {"external_id": "'+only-an-id"},
        {"phone": "+27821230002", "name": "'=already escaped", "first_name": "'Tis",
         "last_name": "''", "attributes": {"t": "\tx", "cr": "\rline"}},
    ]
    bulk(api, org_id, originals)
    # When the org is exported
    pages = walk_export(api, org_id)
    cells = [cell for page in pages
             for row in csv.reader(io.StringIO(page.body, newline="")) for cell in row]
    # Then no cell starts a formula — phones included ('+27…)
    assert not [c for c in cells if c.startswith(FORMULA_TRIGGERS)]
    assert "'+27821230001" in cells and "'=HYPERLINK(\"http://evil\",\"x\")" in cells
    # And importing the file (the importer's parsing, then bulk) into a new org gives the
    # same contacts back
    target = org_id + "_copy"
    bulk(api, target, [upsert_body(row) for row in rows_of(pages)])
    assert _contacts(api, target) == _contacts(api, org_id)


def _contacts(api, org_id: str) -> list[dict[str, Any]]:
    page = api.request("GET", "/v1/contacts", org_id=org_id, query={"limit": "100"}).body
    return sorted(({k: c[k] for k in COMPARED} for c in page["data"]),
                  key=lambda c: json.dumps(c, sort_keys=True))
