"""Import jobs driven in-process: create through the API, upload to the presigned URL,
hand the S3 event (``events/s3_put_upload.json``) to ``StartImportFunction``, and run the
job with :func:`contacts_core.imports.operations.run_import` or through the queue.

Needs the session's moto server for S3 and SQS: :func:`imports_env` creates the template's
bucket there and points the functions at it (``IMPORTS_BUCKET``, the S3 endpoint,
``IMPORT_QUEUE_URL``).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from contacts_core.contacts.csv_format import COLUMNS
from tests.integration.conftest import _Context

REPO = Path(__file__).resolve().parents[2]
S3_EVENT = REPO / "events" / "s3_put_upload.json"


def csv_text(rows: list[dict[str, str]], columns: list[str] | None = None) -> str:
    """``rows`` as a CSV file with a header (``columns``: the keys of the rows, in order)."""
    names = columns or list(dict.fromkeys(k for row in rows for k in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=names, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def csv_row(body: dict[str, Any]) -> dict[str, str]:
    """A bulk upsert body as a CSV row in the export's columns."""
    row: dict[str, str] = {}
    for key, value in body.items():
        if key in ("tags", "attributes"):
            row[key] = json.dumps(value)
        elif key == "consent":
            row |= {f"consent_{channel}": state for channel, state in value.items()}
        elif key == "suppressed":
            row[key] = "true" if value else "false"
        else:
            row[key] = str(value)
    return row


def s3_event(bucket: str, key: str, size: int, etag: str) -> dict[str, Any]:
    """The sample S3 ``ObjectCreated:Put`` event for one object."""
    event = json.loads(S3_EVENT.read_text())
    record = event["Records"][0]["s3"]
    record["bucket"]["name"] = bucket
    record["bucket"]["arn"] = f"arn:aws:s3:::{bucket}"
    record["object"].update(key=key, size=size, eTag=etag.strip('"'))
    return event


class Imports:
    """One org's imports, in-process (``client`` is the org's API client)."""

    def __init__(self, client: Any, api: Any) -> None:
        self.client, self.api = client, api

    def create(self, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = self.client("POST", "/v1/imports", body if body is not None else {})
        assert response.status == 201, response.body
        return dict(response.body)

    def upload(self, job: dict[str, Any], content: bytes | str) -> dict[str, Any]:
        """PUT the file to the job's URL and hand the upload's S3 event to the function."""
        data = content.encode() if isinstance(content, str) else content
        put = requests.put(job["upload_url"], data=data, timeout=30)
        assert put.status_code == 200, put.text
        from contacts_core.imports.files import ImportFiles, upload_key

        files = ImportFiles()
        key = upload_key(self.client.org_id, job["id"])
        event = s3_event(files.bucket, key, len(data), put.headers["ETag"])
        self.started(event)
        return event

    def started(self, event: dict[str, Any]) -> None:
        """Hand an S3 event to ``StartImportFunction``."""
        self.api.handler_module(REPO / "functions" / "start_import").handler(event, _Context())

    def get(self, import_id: str) -> dict[str, Any]:
        response = self.client("GET", f"/v1/imports/{import_id}")
        assert response.status == 200, response.body
        return dict(response.body)

    def run(self, import_id: str, time_left: Any = lambda: 900.0, attempt: int = 1) -> str:
        from contacts_core.imports.operations import run_import

        return run_import(self.client.org_id, import_id, time_left, attempt)

    def errors(self, job: dict[str, Any]) -> list[list[str]]:
        """Rows of the job's errors file (header included), [] when it has none."""
        if not job.get("errors_url"):
            return []
        response = requests.get(job["errors_url"], timeout=30)
        assert response.status_code == 200, response.text
        return list(csv.reader(io.StringIO(response.content.decode())))


@pytest.fixture
def imports_env(moto_server: str, sqs: dict[str, str]) -> Iterator[str]:
    """The template's imports bucket on the session's moto server, the functions pointed at
    it and at ``ImportQueue``; yields the bucket name."""
    from devstack.aws import local_client

    bucket = "importsbucket"
    s3 = local_client("s3", moto_server)
    if bucket not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
        s3.create_bucket(Bucket=bucket)
    from contacts_core.imports.files import s3_client

    s3_client.cache_clear()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("IMPORTS_BUCKET", bucket)
        patch.setenv("AWS_ENDPOINT_URL_S3", moto_server)
        patch.setenv("IMPORT_QUEUE_URL", sqs["ImportQueue"])
        yield bucket
    s3_client.cache_clear()


__all__ = ["COLUMNS", "Imports", "csv_row", "csv_text", "imports_env", "s3_event"]
