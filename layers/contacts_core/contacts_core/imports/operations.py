"""Import jobs (SPEC §9.5): create, read, start on upload, run in resumable chunks.

Running a job (:func:`run_import`), one invocation at a time per org (FIFO group):

1. *Survey*, once: the whole file is streamed to read its header (the export's columns,
   see :mod:`contacts_core.contacts.csv_format`) and count its rows, so progress has a
   total; the job records ``columns``, ``rows_total`` and the checkpoint after the header.
2. *Chunks* of :data:`CHUNK_ROWS` rows, each read with a ranged GET from the checkpoint
   and cut into *parts*: runs of consecutive rows that touch disjoint people (no shared
   identity value, no shared contact holding one). Each part is applied with the
   checkpoint moved around it: the job is marked ``chunk_started_at``; the rows go through
   :func:`contacts_core.contacts.bulk.bulk_upsert` (bulk-upsert semantics, in file order);
   the part's failed rows are written as one errors part; then the checkpoint moves past
   the part with its counts, in one conditional write. A run that dies anywhere in a part
   (crash, timeout) leaves the checkpoint before it, and the next run applies the same
   rows again. Within a part no row depends on another, so upserting a row that was
   already applied changes nothing and fails where it failed: the part ends as if it had
   run once (a file whose rows move an email from one person to the next would not, were
   those rows redone together). The counts are mended with ``chunk_started_at``, kept
   from the first attempt: a row whose contact was created or changed since then counts
   as created or updated, as the first attempt counted it, not as ``unchanged``.
3. Before Lambda's 15-minute limit (:data:`RESERVE_SECONDS` left) the run stops after a
   chunk and the handler queues the continuation; at the end of the file the errors parts
   are assembled into the errors file and the job is ``completed``.

A job fails (``failure_reason``, rows before stay applied) when the file is over 1 GB,
has no header (or a first line that names none of the export's columns, or is not UTF-8:
not a CSV export, e.g. a spreadsheet or an image), names a column twice, cannot be read
as CSV, is replaced during the import, or when runs keep crashing at the same checkpoint
(:data:`MAX_ATTEMPTS` deliveries of one message).
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from pydantic import ValidationError

from contacts_core.contacts.bulk import bulk_upsert
from contacts_core.contacts.csv_format import (
    column_of,
    neutralise,
    row_fields,
    upsert_body,
)
from contacts_core.contacts.models import IDENTITY_FIELDS, Contact
from contacts_core.contacts.requests import ContactUpsert
from contacts_core.contacts.store import ContactStore
from contacts_core.errors import ImportNotFound
from contacts_core.http.cursor import decode_cursor, encode_cursor
from contacts_core.http.paging import PageQuery
from contacts_core.ids import iso_timestamp, now
from contacts_core.imports.csv_stream import (
    NOT_UTF8,
    CsvRecords,
    MalformedCsv,
    Record,
    refused_header,
)
from contacts_core.imports.files import UPLOAD_URL_SECONDS, FileChanged, ImportFiles, upload_key
from contacts_core.imports.models import (
    IMPORT_PREFIX,
    MAX_IMPORT_BYTES,
    Import,
    ImportCreate,
    ImportCreated,
    ImportItem,
    ImportPage,
)
from contacts_core.imports.queue import enqueue_run
from contacts_core.imports.store import ImportStore
from contacts_core.observability import logger

CHUNK_ROWS = 1000  # rows per bulk upsert (SPEC §7 bulk limit) and per checkpoint
RESERVE_SECONDS = 120.0  # a run stops starting chunks with less time than this left
MAX_ATTEMPTS = 5  # deliveries of one run message before the job is failed
ERRORS_HEADER = "line,reason\r\n"
IMPORT_SOURCE = "import"  # the source of the contacts an import creates (when a row gives none)
RunOutcome = Literal["done", "continue", "lost"]


def create_import(org_id: str, body: ImportCreate, store: ImportStore | None = None,
                  files: ImportFiles | None = None) -> ImportCreated:
    """A new job ``awaiting_upload`` and the presigned URL to ``PUT`` its CSV to."""
    from ulid import ULID  # on first use (cold start, issue 11)

    ulid = ULID()
    created = iso_timestamp(ulid.datetime)
    import_id = f"{IMPORT_PREFIX}{ulid}"
    item = ImportItem(org_id=org_id, import_id=import_id, status="awaiting_upload",
                      mode=body.mode, created_at=created, updated_at=created,
                      upload_key=upload_key(org_id, import_id))
    (store or ImportStore()).create(item)
    s3 = files or ImportFiles()
    expires = iso_timestamp(ulid.datetime + timedelta(seconds=UPLOAD_URL_SECONDS))
    return ImportCreated(**Import.from_item(item).model_dump(),
                         upload_url=s3.upload_url(org_id, import_id), upload_expires_at=expires)


def _render(item: ImportItem, files: ImportFiles | None) -> Import:
    url = (files or ImportFiles()).errors_url(item.errors_key) if item.errors_key else None
    return Import.from_item(item, url)


def get_import(org_id: str, import_id: str, store: ImportStore | None = None,
               files: ImportFiles | None = None) -> Import:
    """The job with its counts and progress, and a fresh errors file link once it is over.

    Raises:
        ImportNotFound: no such job in the org.
    """
    item = (store or ImportStore()).get(org_id, import_id)
    if item is None:
        raise ImportNotFound(import_id)
    return _render(item, files)


def list_imports(org_id: str, query: PageQuery, store: ImportStore | None = None,
                 files: ImportFiles | None = None) -> ImportPage:
    """One page of the org's jobs, newest first. Raises ValidationFailed on ``cursor``."""
    signed = {"list": "imports"}
    start = decode_cursor(query.cursor, org_id, signed) if query.cursor else None
    items, last = (store or ImportStore()).page(org_id, query.limit, start)
    return ImportPage(data=[_render(i, files) for i in items],
                      next_cursor=encode_cursor(org_id, signed, last) if last else None)


# ---------------------------------------------------------------- the upload's S3 event
def start_upload(org_id: str, import_id: str, size: int, etag: str,
                 store: ImportStore | None = None) -> bool:
    """The job's file was uploaded (``size`` bytes, ``etag``): mark it ``running`` and
    queue it, or ``failed`` when the file is over 1 GB. Returns True when it was queued.

    A repeated event (S3 delivers at least once) queues a job that is still where this
    function leaves it, so a crash between the two writes is mended by the retry; an upload
    to a job that already started (a second ``PUT``) is ignored.
    """
    db = store or ImportStore()
    job = db.get(org_id, import_id)
    if job is None:
        logger.warning("upload for an unknown import", import_id=import_id)
        return False
    if job.status == "awaiting_upload":
        started = job.model_copy(update={"status": "running", "started_at": now(),
                                         "updated_at": now(), "bytes_total": size,
                                         "etag": etag})
        if size > MAX_IMPORT_BYTES:
            started = _failed(started, f"the file is {size} bytes; imports take at most "
                                       f"{MAX_IMPORT_BYTES} bytes (1 GB)")
        if not db.replace(job, started):
            return start_upload(org_id, import_id, size, etag, db)
        job = started
    if job.status != "running" or job.etag != etag or job.columns is not None:
        return False
    enqueue_run(org_id, import_id, "start")
    return True


# ---------------------------------------------------------------- running a job
def _failed(job: ImportItem, reason: str) -> ImportItem:
    stamp = now()
    return job.model_copy(update={"status": "failed", "failure_reason": reason,
                                  "completed_at": stamp, "updated_at": stamp,
                                  "chunk_started_at": None})


@dataclass
class _Row:
    """One record of the file: its upsert ``body``, or the ``error`` that stops it (neither
    for a blank line)."""

    record: Record
    body: dict[str, Any] | None = None
    error: str | None = None


def _identities(body: dict[str, Any] | None) -> list[tuple[str, str]]:
    """The ``(field, value)`` identities of an upsert body as stored (E.164, lower-case
    email); none when the body is invalid (it fails on its own)."""
    if body is None:
        return []
    try:
        upsert = ContactUpsert.model_validate(body)
    except ValidationError:
        return []
    return [(f, getattr(upsert, f)) for f in IDENTITY_FIELDS if getattr(upsert, f, None)]


class _Runner:
    """One run of one job: the job as last written, and the stores."""

    def __init__(self, job: ImportItem, store: ImportStore, files: ImportFiles,
                 contacts: ContactStore | None) -> None:
        self.job, self.store, self.files, self.contacts = job, store, files, contacts

    def write(self, after: ImportItem) -> bool:
        """Replace the job (conditional on the one read); False when another run moved it."""
        if not self.store.replace(self.job, after):
            return False
        self.job = after
        return True

    def records(self) -> Iterator[Record]:
        job = self.job
        return iter(CsvRecords(self.files.read(job.upload_key, job.etag, job.offset),
                               job.offset, job.line))

    def survey(self) -> bool:
        """Read the header and count the rows (once per job)."""
        records = (r for r in self.records() if not r.blank)
        header = next(records, None)
        refusal = refused_header(header)
        if refusal is not None:
            return self.write(_failed(self.job, refusal))
        assert header is not None  # refused_header refuses a file without one
        columns = [c.strip() for c in header.cells]
        total = sum(1 for _ in records)
        return self.write(self.job.model_copy(update={
            "columns": columns, "rows_total": total, "offset": header.end,
            "line": header.end_line, "updated_at": now()}))

    def next_chunk(self) -> list[Record]:
        """The records of the next chunk: up to :data:`CHUNK_ROWS` rows, with the blank
        lines among and after them."""
        chunk: list[Record] = []
        rows = 0
        for record in self.records():
            if rows == CHUNK_ROWS and not record.blank:
                break
            chunk.append(record)
            rows += not record.blank
        return chunk

    def rows(self, records: list[Record]) -> list[_Row]:
        """The chunk's records as rows: the upsert body of each, or why it has none."""
        columns = self.job.columns
        assert columns is not None
        rows = []
        for record in records:
            if record.blank:
                rows.append(_Row(record))
            elif record.undecodable:
                rows.append(_Row(record, error=NOT_UTF8))
            else:
                try:
                    rows.append(_Row(record, upsert_body(row_fields(columns, record.cells))))
                except ValueError as err:  # json.JSONDecodeError is a ValueError
                    rows.append(_Row(record, error=str(err)))
        return rows

    def parts(self, rows: list[_Row]) -> list[list[_Row]]:
        """The chunk cut into runs of consecutive rows that touch disjoint people: no two
        rows of a run share an identity value, or a contact holding one of them (guards
        read now). Upserting such a row again after it was applied changes nothing, so a
        run redone after a crash ends as if it had run once (see :data:`MAX_ATTEMPTS`)."""
        keys = [_identities(row.body) for row in rows]
        owners = (self.contacts or ContactStore()).guard_owners(
            self.job.org_id, list(dict.fromkeys(k for ks in keys for k in ks)))
        parts: list[list[_Row]] = [[]]
        taken: set[object] = set()
        for row, identities in zip(rows, keys, strict=True):
            touched = set(identities) | {owners[k] for k in identities if k in owners}
            if touched & taken:
                parts.append([])
                taken = set()
            parts[-1].append(row)
            taken |= touched
        return [p for p in parts if p]

    def apply(self, rows: list[_Row]) -> bool:
        """Apply one part of a chunk and move the checkpoint past it."""
        job = self.job
        redo_since = job.chunk_started_at
        if redo_since is None and not self.write(job.model_copy(update={
                "chunk_started_at": now()})):
            return False
        failures = [(r.record.line, r.error) for r in rows if r.error]
        bodies = [(r.record.line, r.body) for r in rows if r.body is not None]
        counts = Counter(failed=len(failures))
        if bodies:
            result = bulk_upsert(job.org_id, [b for _, b in bodies], self.contacts, job.mode,
                                 source=IMPORT_SOURCE)
            seen: set[str] = set()
            for (line, _), item in zip(bodies, result.results, strict=True):
                status: str = item.status
                if redo_since and item.contact and item.id not in seen:
                    status = _first_outcome(status, item.contact, redo_since)
                seen.add(item.id or "")
                if status == "failed" and item.error:
                    failures.append((line, failure_reason(item.error.model_dump())))
                counts[status] += 1
        if failures:
            self.files.put_errors_part(job.org_id, job.import_id, job.chunk,
                                       errors_csv(sorted(failures)))
        last = rows[-1].record
        return self.write(self.job.model_copy(update={
            "offset": last.end, "line": last.end_line,
            "rows_done": job.rows_done + sum(not r.record.blank for r in rows),
            "chunk": job.chunk + 1,
            "chunk_started_at": None, "updated_at": now(),
            "error_parts": job.error_parts + ([job.chunk] if failures else []),
            **{k: getattr(job, k) + counts[k]
               for k in ("created", "updated", "unchanged", "failed")}}))

    def finish(self, failure: str | None = None) -> bool:
        """Assemble the errors file and close the job (``completed``, or ``failed``)."""
        job = self.job
        key = self.files.assemble_errors(job.org_id, job.import_id, ERRORS_HEADER,
                                         job.error_parts) if job.error_parts else None
        stamp = now()
        done = job.model_copy(update={"status": "completed", "completed_at": stamp,
                                      "updated_at": stamp, "errors_key": key})
        return self.write(_failed(done, failure) if failure else done)


def _first_outcome(status: str, contact: Contact, since: str) -> str:
    """What a redone chunk's row did to ``contact`` (its first row in the chunk) when the
    interrupted attempt, started at ``since``, may already have applied it: created if the
    contact is that recent, updated if it changed since (rather than ``unchanged``)."""
    if contact.created_at >= since:
        return "created"
    if status == "unchanged" and contact.updated_at >= since:
        return "updated"
    return status


def run_import(org_id: str, import_id: str, time_left: Callable[[], float], attempt: int = 1,
               store: ImportStore | None = None, files: ImportFiles | None = None,
               contacts: ContactStore | None = None) -> RunOutcome:
    """Run the job from its checkpoint until it is over or ``time_left()`` (seconds) drops
    under :data:`RESERVE_SECONDS`.

    ``attempt`` is the delivery count of the message that asked for this run: at
    :data:`MAX_ATTEMPTS` the job is failed instead (runs keep dying at the same place).
    Returns ``done`` (over, or nothing to run), ``continue`` (queue the continuation) or
    ``lost`` (another run moved the job meanwhile; it carries on, this one stops).
    Raises whatever DynamoDB or S3 raise (the message comes back: the run is redone from
    the checkpoint).
    """
    db = store or ImportStore()
    job = db.get(org_id, import_id)
    if job is None or job.status != "running":
        return "done"
    run = _Runner(job, db, files or ImportFiles(), contacts)
    if attempt >= MAX_ATTEMPTS:
        return "done" if run.finish(f"the import stopped at line {job.line + 1} and failed "
                                    f"{attempt} times there") else "lost"
    try:
        if job.columns is None and not run.survey():
            return "lost"
        while run.job.status == "running":
            if time_left() < RESERVE_SECONDS:
                return "continue"
            records = run.next_chunk()
            if not records:
                return "done" if run.finish() else "lost"
            for part in run.parts(run.rows(records)):
                if not run.apply(part):
                    return "lost"
    except FileChanged:
        return "done" if run.finish("the file was replaced during the import") else "lost"
    except MalformedCsv as err:
        return "done" if run.finish(f"the file is not valid CSV at {err}") else "lost"
    return "done"


def run_import_message(body: str, receive_count: int, time_left: Callable[[], float]) -> None:
    """Handle one ImportQueue message: run the job and queue its continuation if needed.

    Raises:
        ValueError: the message is not a job reference.
    """
    message = json.loads(body)
    org_id, import_id = str(message["org_id"]), str(message["import_id"])
    outcome = run_import(org_id, import_id, time_left, receive_count)
    logger.info("import run", import_id=import_id, outcome=outcome)
    if outcome == "continue":
        job = ImportStore().get(org_id, import_id)
        enqueue_run(org_id, import_id, str(job.chunk if job else "end"))


def failure_reason(error: Mapping[str, Any]) -> str:
    """A failed bulk item's ``error`` (as JSON) in one line: its field errors, each named
    by the file's column (:func:`column_of`: ``consent_sms``, not the API's
    ``consent.sms``; an error on the whole row, the API's ``body``, by its message alone),
    or its message."""
    fields = error.get("errors") or []
    if fields:
        return "; ".join(e["message"] if e["field"] == "body"
                         else f"{column_of(e['field'])}: {e['message']}" for e in fields)
    return str(error.get("message") or error.get("detail") or error)


def errors_csv(failures: list[tuple[int, str]]) -> str:
    """``line,reason`` rows (no header), cells neutralised against spreadsheet formulas."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(
        [str(line), neutralise(reason)] for line, reason in failures)
    return buffer.getvalue()

