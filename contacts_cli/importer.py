"""``contacts-import FILE.csv``: import a CSV file of contacts into the API.

The CSV columns are those of the export (see :mod:`contacts_core.contacts.csv_format`); any
subset works, e.g. ``phone,country_code,first_name,last_name``. Cells the export
neutralised against spreadsheet formulas (``'=…``, ``'+27…``) are restored to their values.
Two ways to send it:

* By default the rows go through ``POST /v1/contacts/bulk`` in chunks of ``--chunk`` rows
  (at most 1000, the bulk limit) from this machine, with a progress bar of rows sent. The
  file is read into memory first.
* ``--async`` hands the file to the API as an import job (``POST /v1/imports``, files up
  to 1 GB): the file is streamed (never read whole) to the job's presigned ``upload_url``
  with a bar of bytes sent, the import runs in the API, and the command follows the job
  (``GET /v1/imports/{id}`` every second) with a bar of rows applied; the bar's total
  appears once the API has counted the file's rows. ``--wait SECONDS`` stops following
  after that long (default: until the job is over); the job goes on regardless, and so
  it does when the command is interrupted: its id is printed, to follow with
  ``GET /v1/imports/{id}``.

``--mode upsert|create_only|update_only`` is bulk upsert's mode (default ``upsert``).
Requests answered 429 or 5xx are retried with backoff (1, 2, 4 s). Both ways end with the
same summary: counts of created/updated/unchanged/failed rows and, for each failed line,
why (header = line 1; with ``--async`` read from the job's errors file), then why the job
failed if it did.

Exit status: 0 when every row succeeded; 1 when some row failed, the job failed, or the
API or the upload could not be reached; 2 on usage errors; 3 when ``--wait`` ran out before
the job was over.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import requests
from tqdm import tqdm
from tqdm.utils import CallbackIOWrapper

from contacts_core.contacts.csv_format import (
    restore,
    row_fields,
    upsert_body,
)
from contacts_core.imports.csv_stream import NOT_UTF8, CsvRecords, MalformedCsv, refused_header
from contacts_core.imports.operations import failure_reason

CHUNK = 1000  # SPEC §7 bulk limit
RETRIES = 4
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
POLL_SECONDS = 1.0
MODES = ("upsert", "create_only", "update_only")
OUTCOMES = ("created", "updated", "unchanged", "failed")
OVER = ("completed", "failed")
EXIT_WAIT_RAN_OUT = 3


class ApiError(Exception):
    """The API (or S3, for the job's files) refused a request the import cannot go
    without."""


@dataclass
class ImportSummary:
    """Counts per outcome and ``(line, reason)`` for every failed line (header is line 1).

    For an import job (``--async``) also its id, ``status`` and ``failure_reason``; a
    synchronous run is ``completed`` when it returns.
    """

    counts: Counter[str] = field(default_factory=Counter)
    failures: list[tuple[int, str]] = field(default_factory=list)
    job_id: str | None = None
    status: str = "completed"
    failure_reason: str | None = None

    def fail(self, line: int, reason: str) -> None:
        self.counts["failed"] += 1
        self.failures.append((line, reason))

    @property
    def exit_status(self) -> int:
        """0 all rows succeeded, 1 some row or the job failed, 3 the job is not over."""
        if self.status not in OVER:
            return EXIT_WAIT_RAN_OUT
        return 1 if self.counts["failed"] or self.status == "failed" else 0

    def report(self) -> str:
        """Human-readable summary, failed lines in file order."""
        lines = []
        if self.job_id:
            state = {"failed": f"failed: {self.failure_reason}", "completed": "completed"}.get(
                self.status, f"still {self.status} (follow it: GET /v1/imports/{self.job_id})")
            lines.append(f"import {self.job_id} {state}")
        elif self.status == "failed":
            lines.append(f"import failed: {self.failure_reason}")
        lines.append(", ".join(f"{self.counts[s]} {s}" for s in OUTCOMES))
        lines += [f"line {n}: {why}" for n, why in sorted(self.failures)]
        return "\n".join(lines)


def _session(api_key: str) -> requests.Session:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {api_key}"
    return session


def _retrying(send: Callable[[], requests.Response]) -> requests.Response:
    """``send()`` again (after 1, 2, 4 s) while it is answered 429 or 5xx; the last answer."""
    for attempt in range(RETRIES):
        response = send()
        if response.status_code not in RETRY_STATUSES or attempt == RETRIES - 1:
            break
        response.close()
        time.sleep(2**attempt)
    return response


def _problem(response: requests.Response) -> str:
    """``HTTP <status>: <why>`` of a refused request (a problem+json body, or its text)."""
    try:
        body = response.json()
        detail = failure_reason(body) if isinstance(body, dict) else str(body)
    except ValueError:  # not JSON (e.g. S3's XML errors)
        detail = response.text.strip()[:300] or response.reason
    return f"HTTP {response.status_code}: {detail}"


def _json(response: requests.Response, expected: int) -> dict[str, Any]:
    if response.status_code != expected:
        raise ApiError(f"{response.request.method} {response.url}: {_problem(response)}")
    return dict(response.json())


def _bar(progress: bool, **kwargs: Any) -> tqdm[Any]:
    return tqdm(disable=not progress, file=sys.stderr, **kwargs)


# ---------------------------------------------------------------- through the bulk endpoint
Row = tuple[int, tuple[list[str], list[str]]]  # (line, (header columns, cells))


def _read_rows(path: Path, summary: ImportSummary) -> list[Row] | None:
    """The rows of ``path`` read as an import job reads its file
    (:class:`contacts_core.imports.csv_stream.CsvRecords`: strict RFC 4180, UTF-8 with an
    optional BOM, blank lines skipped but counted in line numbers, a row that is not UTF-8
    failed alone), each with the line it starts on; None when the header is refused
    (:func:`contacts_core.imports.csv_stream.refused_header`), with ``summary`` failed.

    Raises:
        MalformedCsv: the file is not valid CSV from some line on (nothing is sent).
    """
    with path.open("rb") as handle:
        records = (r for r in CsvRecords(iter(partial(handle.read, 1 << 20), b""))
                   if not r.blank)
        header = next(records, None)
        refusal = refused_header(header)
        if refusal is not None:
            summary.status = "failed"
            summary.failure_reason = refusal
            return None
        assert header is not None  # refused_header refuses a file without one
        columns = [c.strip() for c in header.cells]
        rows: list[Row] = []
        for record in records:
            if record.undecodable:
                summary.fail(record.line, NOT_UTF8)
            else:
                rows.append((record.line, (columns, record.cells)))
        return rows


def import_csv(path: Path, api_url: str, api_key: str, chunk: int = CHUNK,
               progress: bool = True, mode: str | None = None) -> ImportSummary:
    """Import every row of ``path`` through the bulk endpoint; returns the summary (never
    raises for bad rows).

    Raises:
        requests.RequestException: the API cannot be reached.
    """
    summary = ImportSummary()
    session = _session(api_key)
    url = api_url.rstrip("/") + "/v1/contacts/bulk"
    pending: list[tuple[int, dict[str, Any]]] = []
    try:
        rows = _read_rows(path, summary)
    except MalformedCsv as err:
        summary.status = "failed"
        summary.failure_reason = f"the file is not valid CSV at {err}"
        return summary
    if rows is None:
        return summary
    for line, fields in rows:
        try:
            pending.append((line, upsert_body(row_fields(*fields))))
        except ValueError as err:  # json.JSONDecodeError is a ValueError
            summary.fail(line, str(err))
    bar = _bar(progress, total=len(rows), unit="contact")
    bar.update(len(rows) - len(pending))
    for start in range(0, len(pending), chunk):
        part = pending[start:start + chunk]
        request: dict[str, Any] = {"contacts": [body for _, body in part]}
        if mode:
            request["mode"] = mode
        response = _retrying(partial(session.post, url, json=request, timeout=60))
        if response.status_code != 200:
            for line, _ in part:
                summary.fail(line, _problem(response))
        else:
            for result in response.json()["results"]:
                line = part[result["index"]][0]
                if result["status"] == "failed":
                    summary.fail(line, failure_reason(result["error"]))
                else:
                    summary.counts[result["status"]] += 1
        bar.update(len(part))
    bar.close()
    summary.failures.sort()
    return summary


# ---------------------------------------------------------------- as an import job
def import_csv_async(path: Path, api_url: str, api_key: str, mode: str | None = None,
                     wait: float | None = None, progress: bool = True,
                     poll: float | None = None) -> ImportSummary:
    """Create an import job, upload ``path`` to it and follow it until it is over (or
    ``wait`` seconds after the upload), reading it every ``poll`` seconds (default
    :data:`POLL_SECONDS`); returns the summary of the job as last seen.

    Raises:
        ApiError: the job could not be created or read, the upload or the errors file
            was refused.
        requests.RequestException: the API or S3 cannot be reached.
    """
    session = _session(api_key)
    jobs = api_url.rstrip("/") + "/v1/imports"
    body: dict[str, str] = {"mode": mode} if mode else {}
    job = _json(_retrying(partial(session.post, jobs, json=body, timeout=60)), 201)
    if progress:
        print(f"import {job['id']}: uploading {path}", file=sys.stderr)
    _upload(path, job["upload_url"], progress)
    job = _follow(session, f"{jobs}/{job['id']}", wait, progress,
                  POLL_SECONDS if poll is None else poll)
    summary = ImportSummary(Counter({k: job[k] for k in OUTCOMES}), job_id=job["id"],
                            status=job["status"], failure_reason=job.get("failure_reason"))
    if job.get("errors_url"):
        summary.failures = _errors(job["errors_url"])
    return summary


def _upload(path: Path, url: str, progress: bool) -> None:
    """``PUT`` the file to the presigned URL, streamed from disk (no Authorization header:
    the URL carries its own signature)."""
    size = path.stat().st_size
    with path.open("rb") as handle, _bar(progress, total=size, unit="B", unit_scale=True,
                                          unit_divisor=1024, desc="upload") as bar:
        body = CallbackIOWrapper(bar.update, handle, "read")

        def put() -> requests.Response:
            handle.seek(0)
            bar.reset(total=size)
            # an empty body as bytes: requests would send an empty file object chunked,
            # which S3 refuses (a PUT needs a Content-Length)
            return requests.put(url, data=body if size else b"", timeout=(10, 300))

        response = _retrying(put)
    if response.status_code != 200:
        raise ApiError(f"the upload of {path} was refused: {_problem(response)}")


def _follow(session: requests.Session, url: str, wait: float | None, progress: bool,
            poll: float) -> dict[str, Any]:
    """``GET`` the job every ``poll`` seconds until it is over or ``wait`` runs out,
    showing its rows done (of its rows, once counted); the job as last read."""
    deadline = None if wait is None else time.monotonic() + wait
    with _bar(progress, total=None, unit="row", desc="import") as bar:
        while True:
            job = _json(_retrying(partial(session.get, url, timeout=60)), 200)
            done, total = job["progress"]["rows_done"], job["progress"]["rows_total"]
            if total is not None and bar.total != total:
                bar.total = total
                bar.refresh()
            bar.update(done - bar.n)
            if job["status"] in OVER:
                return job
            left = poll if deadline is None else min(poll, deadline - time.monotonic())
            if left <= 0:
                return job
            time.sleep(left)


def _errors(url: str) -> list[tuple[int, str]]:
    """``(line, reason)`` of every row of the job's errors file (``line,reason``, cells
    neutralised against spreadsheet formulas), streamed."""
    with _retrying(partial(requests.get, url, stream=True, timeout=60)) as response:
        if response.status_code != 200:
            raise ApiError(f"the errors file could not be read: {_problem(response)}")
        response.raw.decode_content = True
        response.raw.auto_close = False  # TextIOWrapper reads to the end and closes it
        rows = csv.reader(io.TextIOWrapper(response.raw, encoding="utf-8", newline=""))
        next(rows, None)  # the header
        return [(int(line), restore(reason)) for line, reason in rows]


# ---------------------------------------------------------------- command line
def main(argv: list[str] | None = None) -> int:
    """Console entry point (``contacts-import``)."""
    parser = argparse.ArgumentParser(
        prog="contacts-import", description=__doc__.split("\n")[0],
        epilog="exit status: 0 every row succeeded, 1 some row or the job failed, "
               "2 usage error, 3 --wait ran out")
    parser.add_argument("file", type=Path, help="CSV file with a header row")
    parser.add_argument("--api-url", default=os.environ.get("CONTACTS_API_URL",
                                                            "http://127.0.0.1:3000"))
    parser.add_argument("--api-key", default=os.environ.get("CONTACTS_API_KEY"),
                        help="ck_… key (default: $CONTACTS_API_KEY)")
    parser.add_argument("--async", dest="run_async", action="store_true",
                        help="upload the file as an import job (POST /v1/imports) and "
                             "follow it, instead of sending the rows through the bulk "
                             "endpoint (for big files: up to 1 GB)")
    parser.add_argument("--mode", choices=MODES, help="bulk upsert's mode (default: upsert)")
    parser.add_argument("--chunk", type=int, help="rows per bulk request (≤ 1000; "
                                                  "not with --async)")
    parser.add_argument("--wait", type=float, metavar="SECONDS",
                        help="with --async: stop following the job after SECONDS (it goes "
                             "on; exit status 3); default: until it is over")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    problems = [
        "need an existing FILE" if not args.file.is_file() else "",
        "need --api-key (or CONTACTS_API_KEY)" if not args.api_key else "",
        "--chunk must be 1 to 1000" if args.chunk is not None
        and not 1 <= args.chunk <= CHUNK else "",
        "--chunk is for the bulk endpoint, not --async" if args.chunk and args.run_async
        else "",
        "--wait needs --async" if args.wait is not None and not args.run_async else "",
        "--wait must be ≥ 0" if args.wait is not None and args.wait < 0 else "",
    ]
    if any(problems):
        parser.print_usage(sys.stderr)
        print("contacts-import: " + "; ".join(p for p in problems if p), file=sys.stderr)
        return 2
    try:
        if args.run_async:
            summary = import_csv_async(args.file, args.api_url, args.api_key, args.mode,
                                       args.wait, not args.quiet)
        else:
            summary = import_csv(args.file, args.api_url, args.api_key, args.chunk or CHUNK,
                                 not args.quiet, args.mode)
    except (ApiError, requests.RequestException) as err:
        print(f"contacts-import: {err}", file=sys.stderr)
        return 1
    print(summary.report())
    return summary.exit_status


if __name__ == "__main__":
    raise SystemExit(main())
