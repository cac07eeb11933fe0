"""Asynchronous CSV imports (SPEC §9.5, issue 12) in-process against DynamoDB Local and
moto's S3: a job applies its file like bulk upsert in file order, in chunks, and reports
counts, progress and an errors file."""

from __future__ import annotations

import json
from typing import Any

import pytest

from contacts_core.contacts.bulk import bulk_upsert
from contacts_core.imports import operations
from tests.integration.test_bulk import EXISTING, MIXED
from tests.support.imports import Imports, csv_row, csv_text, imports_env  # noqa: F401
from tests.support.invariants import assert_consistent

pytestmark = pytest.mark.usefixtures("imports_env")


def people(call: Any) -> list[dict[str, Any]]:
    """The org's contacts without ids and timestamps, in a stable order."""
    response = call("GET", "/v1/contacts/export")
    assert response.status == 200
    import csv
    import io
    rows = list(csv.DictReader(io.StringIO(response.body if isinstance(response.body, str)
                                           else response.body.decode())))
    drop = ("id", "created_at", "updated_at")
    return sorted(({k: v for k, v in r.items() if k not in drop} for r in rows),
                  key=lambda r: json.dumps(r, sort_keys=True))


@pytest.fixture
def imports(call: Any, api: Any) -> Imports:
    return Imports(call, api)


def test_an_import_is_bulk_upsert_of_its_rows_in_file_order(imports, call, api, org_id):
    # Given an org with contacts, and a file whose rows mix creates, updates, no-ops,
    # conflicts, invalid rows and rows that depend on earlier rows
    bulk_upsert(org_id, EXISTING)
    reference_org = org_id + "_ref"
    bulk_upsert(reference_org, EXISTING)
    expected = bulk_upsert(reference_org, MIXED, source="import")
    # When the file is uploaded to a new import job and the job runs
    job = imports.create()
    assert job["status"] == "awaiting_upload" and job["id"].startswith("imp_")
    imports.upload(job, csv_text([csv_row(b) for b in MIXED]))
    assert imports.get(job["id"])["status"] == "running"
    assert imports.run(job["id"]) == "done"
    # Then its counts are those of bulk upsert, progress is complete …
    done = imports.get(job["id"])
    assert done["status"] == "completed"
    assert {k: done[k] for k in ("created", "updated", "unchanged", "failed")} == {
        "created": expected.created, "updated": expected.updated,
        "unchanged": expected.unchanged, "failed": expected.failed}
    assert done["progress"] == {"rows_done": len(MIXED), "rows_total": len(MIXED),
                                "percent": 100.0}
    # … the contacts are those bulk upsert leaves
    reference = type(call)(api, reference_org)
    assert people(call) == people(reference)
    # … those it created have the source "import", those it updated keep theirs ("api")
    sources = {r["email"] or r["external_id"]: r["source"] for r in people(call)}
    assert sources["priya@example.com"] == sources["crm-4"] == "import"
    assert sources["sam@example.com"] == sources["ahmed.new@example.com"] == "api"
    # … and the errors file names each failed row by its line (header = line 1)
    failed_lines = [str(r.index + 2) for r in expected.results if r.status == "failed"]
    errors = imports.errors(done)
    assert errors[0] == ["line", "reason"]
    assert [row[0] for row in errors[1:]] == failed_lines
    assert all(row[1] for row in errors[1:])
    assert_consistent(org_id)


def test_a_new_job_waits_for_its_upload_and_other_orgs_never_see_it(imports, call, api):
    # Given a new job
    job = imports.create({"mode": "create_only"})
    # Then it waits for its file, with a presigned PUT URL for it
    assert job["status"] == "awaiting_upload" and job["mode"] == "create_only"
    assert "X-Amz-Signature=" in job["upload_url"] and job["upload_expires_at"].endswith("Z")
    assert job["progress"] == {"rows_done": 0, "rows_total": None, "percent": 0.0}
    assert imports.get(job["id"])["status"] == "awaiting_upload"
    # And it is listed for its org only
    assert [j["id"] for j in call("GET", "/v1/imports").body["data"]] == [job["id"]]
    stranger = type(call)(api, "org_stranger")
    assert stranger("GET", f"/v1/imports/{job['id']}").status == 404
    assert stranger("GET", "/v1/imports").body["data"] == []
    # And bad input is a 400 naming the field, unknown ids a 404
    refused = call("POST", "/v1/imports", {"mode": "sometimes"})
    assert refused.status == 400 and refused.body["errors"][0]["field"] == "mode"
    assert call("POST", "/v1/imports", {"file": "x"}).status == 400
    assert call("GET", "/v1/imports/imp_nope").status == 404


def test_a_job_stops_before_the_time_limit_and_continues_from_its_checkpoint(
        imports, call, api, org_id, monkeypatch):
    # Given chunks of 4 rows and a file of 19 rows (some repeating earlier identities)
    monkeypatch.setattr(operations, "CHUNK_ROWS", 4)
    rows = [{"phone": f"+2782123{i % 13:04d}", "first_name": f"P{i}"} for i in range(19)]
    job = imports.create()
    imports.upload(job, csv_text(rows))
    # When each run has time for two chunks only
    runs = 0
    while True:
        budget = iter([900.0, 900.0, 0.0])
        outcome = imports.run(job["id"], lambda b=budget: next(b, 0.0))
        runs += 1
        status = imports.get(job["id"])
        if outcome == "done":
            break
        # Then between runs the job is running, part done
        assert outcome == "continue" and status["status"] == "running"
        assert 0 < status["progress"]["rows_done"] < 19
    # Then the job took several runs and ends as one bulk upsert of the rows would
    assert runs == 3
    expected = bulk_upsert(org_id + "_ref", rows, source="import")
    assert (status["created"], status["updated"], status["unchanged"]) == (
        expected.created, expected.updated, expected.unchanged)
    assert people(call) == people(type(call)(api, org_id + "_ref"))


def test_files_that_cannot_be_imported_fail_the_job_with_a_reason(imports):
    # An empty file
    empty = imports.create()
    imports.upload(empty, "")
    imports.run(empty["id"])
    assert imports.get(empty["id"])["status"] == "failed"
    assert "header" in imports.get(empty["id"])["failure_reason"]
    # Files that are not CSV exports: binary (here a PNG's first bytes, and an xlsx), or
    # text whose first line names none of the export's columns
    for content in (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\xff\xfe",
                    b"PK\x03\x04\x14\x00\x06\x00phone,\xff",
                    b"Dear customer,\nthank you\n"):
        other = imports.create()
        imports.upload(other, content)
        imports.run(other["id"])
        refused = imports.get(other["id"])
        assert refused["status"] == "failed", (content, refused)
        assert "header" in refused["failure_reason"] and refused["created"] == 0
    # A header naming a column twice (which cell would hold the phone?), however spaced
    for header in ("phone,email,phone", "email, first_name ,first_name"):
        twice = imports.create()
        imports.upload(twice, header + "\n+27821234567,a@example.com,+27821234568\n")
        imports.run(twice["id"])
        refused = imports.get(twice["id"])
        assert refused["status"] == "failed" and refused["created"] == 0, (header, refused)
        assert "twice" in refused["failure_reason"], refused
    # Files a CSV reader could only misread: a quote never closed (every later row would
    # become one cell), text after a closing quote, lines ending in a lone CR (classic Mac)
    for content, reason in (
            ('phone,first_name\n+27821234567,Sam\n+27821234568,"Open,b\n'
             '+27821234569,Lost\n', "line 3: a quoted cell is never closed"),
            ('phone,first_name\n+27821234567,"Sam"my\n', "line 2: text after a closing quote"),
            ("phone,first_name\r+27821234567,Sam\r", "carriage return")):
        misread = imports.create()
        imports.upload(misread, content)
        imports.run(misread["id"])
        refused = imports.get(misread["id"])
        assert refused["status"] == "failed" and refused["created"] == 0, refused
        assert reason in refused["failure_reason"], refused
    # A spreadsheet's "Unicode text" (UTF-16, with or without a byte order mark) or UTF-32
    text = "phone,first_name\r\n+27821234567,José\r\n"
    for content, encoding in ((text.encode("utf-16"), "UTF-16"),
                              (text.encode("utf-16-le"), "UTF-16"),
                              (text.encode("utf-32"), "UTF-32")):
        unicode_text = imports.create()
        imports.upload(unicode_text, content)
        imports.run(unicode_text["id"])
        refused = imports.get(unicode_text["id"])
        assert refused["status"] == "failed" and refused["created"] == 0, refused
        assert f"line 1: the file is {encoding}, not UTF-8" in refused["failure_reason"], refused
    # A line over 1 MB
    long = imports.create()
    imports.upload(long, "phone,first_name\n+27821234567," + "x" * (1024 * 1024 + 10) + "\n")
    imports.run(long["id"])
    failed = imports.get(long["id"])
    assert failed["status"] == "failed" and "line 2" in failed["failure_reason"]


def test_rows_that_are_not_utf8_or_not_readable_fail_alone(imports):
    job = imports.create()
    content = (b"phone,first_name,tags\r\n+27821230001,Ann,\r\n"
               + b"+27821230002,\xff\xfe,\r\n"
               + b"+27821230003,Bo,\"[not json\"\r\n\r\n"
               + b"+27821230004,\"Multi\nLine\",\r\n")
    imports.upload(job, content)
    imports.run(job["id"])
    done = imports.get(job["id"])
    assert done["status"] == "completed"
    assert (done["created"], done["failed"]) == (2, 2)
    assert done["progress"]["rows_total"] == 4
    errors = imports.errors(done)
    assert [row[0] for row in errors[1:]] == ["3", "4"]
    assert "UTF-8" in errors[1][1]


def test_the_errors_file_names_the_files_columns_not_the_apis_fields(imports):
    # Given a file whose rows have a bad consent cell, a bad phone, a tag over 64 chars,
    # and a row over a contact's 16 KB
    job = imports.create()
    big = json.dumps({f"k{i}": "v" * 1000 for i in range(17)})
    imports.upload(job, csv_text([
        {"phone": "+27821230011", "consent_sms": "maybe", "tags": "", "attributes": ""},
        {"phone": "12", "consent_sms": "", "tags": "", "attributes": ""},
        {"phone": "+27821230012", "consent_sms": "", "tags": json.dumps(["x" * 65]),
         "attributes": ""},
        {"phone": "+27821230013", "consent_sms": "", "tags": "", "attributes": big},
    ]))
    # When it runs
    imports.run(job["id"])
    # Then each reason starts with the column the author has to fix, as the header names
    # it, and the row that is too large as a whole says so without naming the API's "body"
    reasons = [row[1] for row in imports.errors(imports.get(job["id"]))[1:]]
    assert [r.split(":")[0] for r in reasons[:3]] == ["consent_sms", "phone", "tags.0"], reasons
    assert reasons[3].startswith("the contact is over 16384 bytes"), reasons


def test_a_file_over_1_gb_fails_without_being_read(imports, call):
    from contacts_core.imports.files import ImportFiles, upload_key
    from tests.support.imports import s3_event

    job = imports.create()
    files = ImportFiles()
    event = s3_event(files.bucket, upload_key(call.org_id, job["id"]), 1024 ** 3 + 1, "abc")
    imports.started(event)
    failed = imports.get(job["id"])
    assert failed["status"] == "failed" and "1 GB" in failed["failure_reason"]



def test_an_export_imported_into_another_org_gives_the_same_contacts(imports, call, api):
    # Given contacts whose values look like spreadsheet formulas, quotes and line breaks
    tricky = [
        {"phone": "+27821234567", "first_name": "=HYPERLINK(\"http://x\")", "last_name": "-1",
         "tags": ["+vip", "@team", "'quoted"], "attributes": {"note": "=1+1", "n": 3,
                                                               "ok": True}},
        {"email": "ann@example.com", "name": "Ann\nOn two lines", "external_id": "@crm-1",
         "consent": {"sms": "opted_out"}, "suppressed": True, "language": "en-ZA"},
        {"phone": "082 765 4321", "country_code": "ZA", "first_name": "'Tis", "tags": ["a"]},
    ]
    for body in tricky:
        assert call("POST", "/v1/contacts", body).status == 201
    exported = call("GET", "/v1/contacts/export").body
    exported = exported if isinstance(exported, str) else exported.decode()
    assert "'=HYPERLINK" in exported and "'+27821234567" in exported  # neutralised
    # When the export is imported into a new org through an import job
    other = type(call)(api, call.org_id + "_copy")
    copy = Imports(other, api)
    job = copy.create()
    copy.upload(job, exported)
    assert copy.run(job["id"]) == "done"
    done = copy.get(job["id"])
    # Then every row was created and the second org exports the same contacts
    assert (done["created"], done["failed"]) == (3, 0), copy.errors(done)
    assert people(other) == people(call)


@pytest.mark.parametrize("raw_body", [None, "", "  \n"])
def test_a_job_needs_no_body(api, org_id, raw_body):
    # When a job is created with no body at all (the mode has a default)
    response = api.request("POST", "/v1/imports", org_id=org_id, raw_body=raw_body)
    # Then it is created, as an upsert, waiting for its file
    assert response.status == 201, response.body
    assert (response.body["status"], response.body["mode"]) == ("awaiting_upload", "upsert")
    # And a body that is not an object is still refused, JSON null included
    for refused in ("[]", "null", " null "):
        answer = api.request("POST", "/v1/imports", org_id=org_id, raw_body=refused)
        assert answer.status == 400, (refused, answer.body)
        assert [e["field"] for e in answer.body["errors"]] == ["body"]
