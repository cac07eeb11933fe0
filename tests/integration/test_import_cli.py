"""``contacts-import`` (both ways: ``--async`` import jobs and the bulk endpoint) over real
HTTP against the in-process API, with the job's files on the session's moto S3.

A small HTTP server on 127.0.0.1 stands in for API Gateway: it routes each request to the
in-process :class:`~tests.integration.conftest.Api` as the org named by the bearer token.
It also plays the platform's asynchronous part at each ``GET /v1/imports/{id}``: an
uploaded file's S3 event is handed to ``StartImportFunction``, then each read runs one
chunk of the job (chunks of 2 rows here), so the command sees the job start, get counted
and progress before it is over.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from contacts_cli import importer
from contacts_core.imports import operations
from tests.integration.conftest import Api, OrgClient
from tests.support.imports import Imports, imports_env, s3_event  # noqa: F401 - fixture

pytestmark = pytest.mark.usefixtures("imports_env")

PEOPLE = ("phone,country_code,first_name,tags\n"
          "082 123 4567,ZA,Sam,vip;gold\n"
          "12,ZA,Short,\n"                     # line 3: not a phone number
          "+27821234567,,Samuel,\n"            # updates line 2's contact
          "+14155557890,US,Sarah,[not json\n"  # line 5: tags are not JSON
          "+971501234567,,Ahmed,\n")


@dataclass
class LocalApi:
    """The API on ``url``; ``advance``: whether job reads move the job on; ``seen``: the
    ``(status, rows_done, rows_total)`` of every job read answered."""

    api: Api
    url: str = ""
    advance: bool = True
    seen: list[tuple[str, int, int | None]] = field(default_factory=list)

    def step(self, org_id: str, import_id: str) -> None:
        """What the platform does meanwhile: start an uploaded job, or run one chunk."""
        from contacts_core.imports.files import ImportFiles, upload_key
        from contacts_core.imports.store import ImportStore

        job = ImportStore().get(org_id, import_id)
        imports = Imports(OrgClient(self.api, org_id), self.api)
        if job is None or not self.advance:
            return
        if job.status == "awaiting_upload":
            files = ImportFiles()
            found = files.client.list_objects_v2(Bucket=files.bucket, Prefix=job.upload_key)
            if found.get("KeyCount"):
                head = files.client.head_object(Bucket=files.bucket, Key=job.upload_key)
                imports.started(s3_event(files.bucket, upload_key(org_id, import_id),
                                         head["ContentLength"], head["ETag"]))
        elif job.status == "running":
            budget = iter([900.0])
            imports.run(import_id, lambda: next(budget, 0.0))  # one chunk

    def handle(self, method: str, target: str, authorization: str, body: bytes
               ) -> tuple[int, dict[str, str], bytes]:
        if not authorization.startswith("Bearer org_"):
            return 401, {"Content-Type": "application/json"}, b'{"message": "Unauthorized"}'
        org_id = authorization.removeprefix("Bearer ")
        parts = urlsplit(target)
        if method == "GET" and parts.path.startswith("/v1/imports/"):
            self.step(org_id, parts.path.rsplit("/", 1)[1])
        answer = self.api.request(method, parts.path, org_id=org_id,
                                  raw_body=body.decode() or None,
                                  query=dict(parse_qsl(parts.query)) or None)
        if method == "GET" and parts.path.startswith("/v1/imports/") and answer.status == 200:
            job = answer.body
            self.seen.append((job["status"], job["progress"]["rows_done"],
                              job["progress"]["rows_total"]))
        payload = answer.body if isinstance(answer.body, bytes | str) else json.dumps(
            answer.body) if answer.body is not None else ""
        data = payload.encode() if isinstance(payload, str) else payload
        return answer.status, {"Content-Type": answer.headers.get(
            "Content-Type", "application/json")}, data


@pytest.fixture
def local_api(api: Api, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalApi]:
    """The API over HTTP on a free port of 127.0.0.1 for one test (jobs in chunks of 2
    rows, read every 10 ms)."""
    monkeypatch.setattr(operations, "CHUNK_ROWS", 2)
    monkeypatch.setattr(importer, "POLL_SECONDS", 0.01)
    served = LocalApi(api)

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            status, headers, data = served.handle(
                self.command, self.path, self.headers.get("Authorization", ""),
                self.rfile.read(length))
            self.send_response(status)
            for name, value in {**headers, "Content-Length": str(len(data))}.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _answer

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    served.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield served
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def contacts_import(local_api: LocalApi, org_id: str, csv_file: Path, *args: str,
                    capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    """Run the command; its exit status and the lines it printed (the summary; without
    the JSON lines the in-process functions log and emit metrics with)."""
    status = importer.main([str(csv_file), "--api-url", local_api.url, "--api-key", org_id,
                            *args])
    return status, [line for line in capsys.readouterr().out.splitlines()
                    if not line.startswith("{")]


def test_async_import_follows_the_job_and_reports_failed_lines_like_the_bulk_way(
        local_api, org_id, call, tmp_path, capsys):
    # Given a file with good rows, a row updating an earlier one, and two bad rows
    csv_file = tmp_path / "people.csv"
    csv_file.write_text(PEOPLE)
    # When it is imported as a job
    status, out = contacts_import(local_api, org_id, csv_file, "--async", capsys=capsys)
    # Then the command followed the job from its start (total unknown), through its
    # counted rows, to its end
    assert local_api.seen[0] == ("running", 0, None)
    assert ("running", 2, 5) in local_api.seen and local_api.seen[-1] == ("completed", 5, 5)
    # And it reports the counts and every failed line with its reason, exit status 1
    assert status == 1
    assert out[0].startswith("import imp_") and out[0].endswith(" completed")
    assert out[1] == "2 created, 1 updated, 0 unchanged, 2 failed"
    assert [line.split(":")[0] for line in out[2:]] == ["line 3", "line 5"]
    assert "phone" in out[2]
    assert {c["first_name"] for c in call("GET", "/v1/contacts").body["data"]} == {
        "Samuel", "Ahmed"}
    # And the bulk way reports the same into another org
    other = org_id + "_bulk"
    bulk_status, bulk_out = contacts_import(local_api, other, csv_file, "--chunk", "2",
                                            "--quiet", capsys=capsys)
    assert (bulk_status, bulk_out) == (1, out[1:])


def test_async_import_of_good_rows_exits_0_and_passes_the_mode(
        local_api, org_id, call, tmp_path, capsys):
    call.create({"phone": "+27821230001", "first_name": "Kept"})
    csv_file = tmp_path / "people.csv"
    csv_file.write_text("phone,first_name\n+27821230001,Changed\n+27821230002,New\n")
    # update_only: the new person fails, the known one is updated
    status, out = contacts_import(local_api, org_id, csv_file, "--async", "--quiet",
                                  "--mode", "update_only", capsys=capsys)
    assert status == 1 and out[1:] == ["0 created, 1 updated, 0 unchanged, 1 failed",
                                       out[2]] and out[2].startswith("line 3: ")
    # upsert (the default): all rows succeed
    status, out = contacts_import(local_api, org_id, csv_file, "--async", "--quiet",
                                  capsys=capsys)
    assert (status, out[1:]) == (0, ["1 created, 0 updated, 1 unchanged, 0 failed"])


def test_a_failed_job_reports_why_and_exits_1(local_api, org_id, tmp_path, capsys):
    csv_file = tmp_path / "empty.csv"
    csv_file.write_text("")
    status, out = contacts_import(local_api, org_id, csv_file, "--async", "--quiet",
                                  capsys=capsys)
    assert status == 1
    assert "failed: the file is empty" in out[0]
    assert out[1] == "0 created, 0 updated, 0 unchanged, 0 failed"


def test_a_header_naming_a_column_twice_fails_the_import_both_ways(local_api, org_id, call,
                                                                   tmp_path, capsys):
    # Given a file whose header names phone twice
    csv_file = tmp_path / "twice.csv"
    csv_file.write_text("phone,first_name,phone\n+27821234567,Sam,+27821234568\n")
    # When it is imported through the bulk endpoint, and as a job
    outcomes = [contacts_import(local_api, org_id, csv_file, *how, capsys=capsys)
                for how in (["--quiet"], ["--async", "--quiet"])]
    # Then both fail saying so, exit status 1, and no one is created
    for status, out in outcomes:
        assert status == 1 and "'phone' twice" in out[0], out
    assert call("GET", "/v1/contacts").body["data"] == []


def test_ragged_blank_and_multi_line_rows_get_the_same_lines_and_reasons_both_ways(
        local_api, org_id, call, tmp_path, capsys):
    # Given a file with a row holding text past the header's last column, rows with fewer
    # cells or empty extra cells (as spreadsheets write them), a blank line, a quoted
    # cell spanning two lines, and a row that is not UTF-8
    csv_file = tmp_path / "ragged.csv"
    csv_file.write_bytes(
        b"phone,email,first_name\n"
        b"+12025557101,ann@example.com,Ann,EXTRA\n"   # line 2: the extra cell has no column
        b"+12025557102,bo@example.com\n"              # fewer cells: first_name is empty
        b"\n"                                        # a blank line is no row
        b"+12025557103,cy@example.com,Cy,,\n"         # empty cells past the header: fine
        b'+12025557104,di@example.com,"Di\nDee"\n'    # lines 6-7: one row
        b"12,ed@example.com,Ed\n"                     # line 8: not a phone number
        b"+12025557106,fe@example.com,F\xe9\n")       # line 9: Latin-1, not UTF-8
    # When it is imported as a job, and through the bulk endpoint into another org
    status, out = contacts_import(local_api, org_id, csv_file, "--async", "--quiet",
                                  capsys=capsys)
    bulk_status, bulk_out = contacts_import(local_api, org_id + "_bulk", csv_file, "--quiet",
                                            capsys=capsys)
    # Then both report the same counts, and the same reasons at the file's own lines
    assert status == bulk_status == 1
    assert out[1:] == bulk_out, (out, bulk_out)
    assert out[1] == "3 created, 0 updated, 0 unchanged, 3 failed"
    assert [line.split(":")[0] for line in out[2:]] == ["line 2", "line 8", "line 9"]
    assert "cell 4 ('EXTRA') has no column" in out[2]
    assert "phone" in out[3] and "UTF-8" in out[4]
    # And nothing of the ragged row was imported without its extra cell
    names = {c["email"]: c["first_name"] for c in call("GET", "/v1/contacts").body["data"]}
    assert names == {"bo@example.com": None, "cy@example.com": "Cy",
                     "di@example.com": "Di\nDee"}


def test_a_quote_never_closed_fails_the_import_both_ways(local_api, org_id, call, tmp_path,
                                                        capsys):
    # Given a file whose second row opens a quote it never closes
    csv_file = tmp_path / "open.csv"
    csv_file.write_text('phone,first_name\n+27821234567,Sam\n+27821234568,"Open\n'
                        '+27821234569,Lost\n')
    # When it is imported through the bulk endpoint, and as a job
    outcomes = [contacts_import(local_api, org_id, csv_file, *how, capsys=capsys)
                for how in (["--quiet"], ["--async", "--quiet"])]
    # Then both fail saying so, exit status 1, and no row is half-read into a contact
    for status, out in outcomes:
        assert status == 1 and "never closed" in out[0], out
    assert call("GET", "/v1/contacts").body["data"] == []


def test_wait_gives_up_following_a_job_that_is_not_over(local_api, org_id, tmp_path, capsys):
    # Given a platform that never starts the job
    local_api.advance = False
    csv_file = tmp_path / "people.csv"
    csv_file.write_text(PEOPLE)
    # When the command waits 0.2 s only
    status, out = contacts_import(local_api, org_id, csv_file, "--async", "--quiet",
                                  "--wait", "0.2", capsys=capsys)
    # Then it stops with exit status 3 and says how to follow the job
    job_id = out[0].split()[1]
    assert status == 3 and out[0] == (f"import {job_id} still awaiting_upload "
                                      f"(follow it: GET /v1/imports/{job_id})")
    assert len(local_api.seen) > 1  # read more than once meanwhile


def test_the_api_refusing_the_job_exits_1_with_its_reason(local_api, tmp_path, capsys):
    csv_file = tmp_path / "people.csv"
    csv_file.write_text(PEOPLE)
    status = importer.main([str(csv_file), "--api-url", local_api.url, "--api-key", "ck_bad",
                            "--async"])
    assert status == 1 and "HTTP 401: Unauthorized" in capsys.readouterr().err


@pytest.mark.parametrize("args", [["--wait", "5"], ["--async", "--chunk", "10"],
                                  ["--async", "--wait", "-1"], ["--chunk", "1001"]])
def test_usage_errors_exit_2(tmp_path, capsys, args):
    csv_file = tmp_path / "people.csv"
    csv_file.write_text(PEOPLE)
    assert importer.main([str(csv_file), "--api-key", "ck_x", *args]) == 2
    assert "usage:" in capsys.readouterr().err
