"""Pydantic models of import jobs: the request, the stored job, the API output (SPEC §9.5).

A job moves ``awaiting_upload`` → ``running`` (the upload's S3 event) → ``completed`` or
``failed``. Its progress is a checkpoint: the byte ``offset`` in the file after the last
applied row and the physical ``line`` there, with the counts so far; a chunk of rows is
applied and the checkpoint moved in that order, so a run that stops anywhere continues
from the last checkpoint (see :mod:`contacts_core.imports.operations`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field

from contacts_core.base_model import Model
from contacts_core.contacts.operations import UpsertMode

ImportStatus = Literal["awaiting_upload", "running", "completed", "failed"]
TERMINAL: tuple[ImportStatus, ...] = ("completed", "failed")
IMPORT_PREFIX = "imp_"
MAX_IMPORT_BYTES = 1024 ** 3  # SPEC §9.5: files up to 1 GB


class ImportCreate(Model):
    """Body of ``POST /v1/imports`` (may be empty): ``mode`` as in bulk upsert
    (``upsert``, ``create_only``, ``update_only``)."""

    model_config = ConfigDict(extra="forbid")

    mode: UpsertMode = "upsert"


class ImportItem(Model):
    """An import job as stored in ``IMPORTS_TABLE`` (PK ``org_id``, SK ``import_id``).

    ``offset``/``line``: bytes and physical lines of the file already applied (the header
    included once ``columns`` is known); ``rows_total``: data rows in the file, counted
    before the first chunk; ``chunk``: number of chunks applied; ``chunk_started_at``: set
    while a chunk is being applied (kept by a redo after a crash, see
    :func:`contacts_core.imports.operations.run_import`); ``error_parts``: chunk numbers
    that wrote a part of the errors file; ``errors_key``: the assembled errors file.
    """

    model_config = ConfigDict(extra="ignore")

    org_id: str
    import_id: str
    status: ImportStatus
    mode: UpsertMode = "upsert"
    created_at: str
    updated_at: str
    upload_key: str
    started_at: str | None = None
    completed_at: str | None = None
    bytes_total: int | None = None
    etag: str | None = None
    columns: list[str] | None = None
    rows_total: int | None = None
    offset: int = 0
    line: int = 0
    rows_done: int = 0
    chunk: int = 0
    chunk_started_at: str | None = None
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    error_parts: list[int] = Field(default_factory=list)
    errors_key: str | None = None
    failure_reason: str | None = None
    rev: int = 0  # bumped by every write; each write is conditional on the one it read


class ImportProgress(Model):
    """Rows applied so far and rows in the file (``null`` until the file has been
    counted), and ``percent`` of them (0–100, one decimal)."""

    rows_done: int
    rows_total: int | None
    percent: float


class Import(Model):
    """An import job as the API returns it.

    ``created``/``updated``/``unchanged``/``failed`` count rows as bulk upsert does;
    ``errors_url`` is a presigned link (valid for an hour from the GET) to a CSV of
    ``line,reason`` for every failed row, once the job is over; ``failure_reason`` says why
    a ``failed`` job stopped (the rows before it stay applied).
    """

    id: str
    status: ImportStatus
    mode: UpsertMode
    created: int
    updated: int
    unchanged: int
    failed: int
    progress: ImportProgress
    errors_url: str | None = None
    failure_reason: str | None = None
    created_at: str
    started_at: str | None
    completed_at: str | None

    @classmethod
    def from_item(cls, item: ImportItem, errors_url: str | None = None) -> Import:
        """Render a stored job (``errors_url`` presigned by the caller)."""
        total = item.rows_total
        percent = 100.0 if item.status == "completed" else (
            round(100 * item.rows_done / total, 1) if total else 0.0)
        return cls(id=item.import_id, status=item.status, mode=item.mode, created=item.created,
                   updated=item.updated, unchanged=item.unchanged, failed=item.failed,
                   progress=ImportProgress(rows_done=item.rows_done, rows_total=total,
                                           percent=percent),
                   errors_url=errors_url, failure_reason=item.failure_reason,
                   created_at=item.created_at, started_at=item.started_at,
                   completed_at=item.completed_at)


class ImportCreated(Import):
    """``POST /v1/imports`` answer: the job, and where to ``PUT`` the CSV file
    (``upload_url``, an S3 presigned URL valid until ``upload_expires_at``)."""

    upload_url: str
    upload_expires_at: str


class ImportPage(Model):
    """One page of import jobs, newest first; ``next_cursor`` is ``null`` on the last page."""

    data: list[Import]
    next_cursor: str | None
