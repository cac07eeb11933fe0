"""S3 access for imports (``IMPORTS_BUCKET``) — boto3 for S3 lives here.

Keys: the upload ``uploads/{org_id}/{import_id}.csv``; one errors part per chunk with
failed rows ``errors/{org_id}/{import_id}/part-{chunk:06d}.csv`` (rewritten whole when a
chunk is redone, so a redo never duplicates a line); the errors file
``errors/{org_id}/{import_id}.csv`` (a header ``line,reason`` and the parts in order).

Presigned URLs (SigV4, query-string auth) carry the function role's credentials: the upload
URL allows one ``PUT`` of that key, the errors URL one ``GET``; S3 caps them at the
credentials' own lifetime. S3 cannot limit a presigned ``PUT``'s size, so the 1 GB limit
is checked on the uploaded object (the job fails with a reason).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from functools import cache
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

UPLOAD_URL_SECONDS = 3600
ERRORS_URL_SECONDS = 3600
READ_CHUNK = 1024 * 1024  # bytes per read of the uploaded file


class FileChanged(Exception):
    """The uploaded file is no longer the one the job started with (another upload)."""


def _endpoint() -> str | None:
    return os.environ.get("S3_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT_URL_S3") or None


@cache
def s3_client() -> Any:
    """The process-wide S3 client: SigV4; path-style addressing when an endpoint override
    is set (``S3_ENDPOINT_URL`` or boto3's ``AWS_ENDPOINT_URL_S3``, e.g. the local stack's
    moto server), virtual-hosted otherwise."""
    endpoint = _endpoint()
    config = Config(signature_version="s3v4",
                    s3={"addressing_style": "path" if endpoint else "virtual"})
    return boto3.client("s3", endpoint_url=endpoint, config=config)


def upload_key(org_id: str, import_id: str) -> str:
    """Where the job's CSV is uploaded."""
    return f"uploads/{org_id}/{import_id}.csv"


def parse_upload_key(key: str) -> tuple[str, str] | None:
    """``(org_id, import_id)`` of an upload key, None for any other key."""
    parts = key.split("/")
    if len(parts) != 3 or parts[0] != "uploads" or not parts[2].endswith(".csv"):
        return None
    return parts[1], parts[2].removesuffix(".csv")


def errors_key(org_id: str, import_id: str) -> str:
    """Where the job's assembled errors file goes."""
    return f"errors/{org_id}/{import_id}.csv"


def _part_key(org_id: str, import_id: str, chunk: int) -> str:
    return f"errors/{org_id}/{import_id}/part-{chunk:06d}.csv"


class ImportFiles:
    """The bucket's files of import jobs."""

    def __init__(self, client: Any | None = None, bucket: str | None = None) -> None:
        self.client = client or s3_client()
        self.bucket = bucket or os.environ["IMPORTS_BUCKET"]

    def upload_url(self, org_id: str, import_id: str) -> str:
        """A presigned ``PUT`` URL for the job's CSV, valid :data:`UPLOAD_URL_SECONDS`."""
        return str(self.client.generate_presigned_url(
            "put_object", Params={"Bucket": self.bucket, "Key": upload_key(org_id, import_id)},
            ExpiresIn=UPLOAD_URL_SECONDS))

    def errors_url(self, key: str) -> str:
        """A presigned ``GET`` URL for an errors file, valid :data:`ERRORS_URL_SECONDS`."""
        return str(self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key,
                                  "ResponseContentType": "text/csv; charset=utf-8"},
            ExpiresIn=ERRORS_URL_SECONDS))

    def read(self, key: str, etag: str | None, offset: int = 0) -> Iterator[bytes]:
        """The bytes of ``key`` from ``offset`` on, streamed in chunks of :data:`READ_CHUNK`
        (a ranged ``GetObject`` conditional on ``etag``).

        Raises:
            FileChanged: the object's ETag is no longer ``etag``.
        """
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if etag:
            params["IfMatch"] = f'"{etag.strip(chr(34))}"'  # quoted, as RFC 9110 has it
        if offset:
            params["Range"] = f"bytes={offset}-"
        try:
            body = self.client.get_object(**params)["Body"]
        except ClientError as err:
            code = err.response.get("Error", {}).get("Code")
            if code in ("PreconditionFailed", "412"):
                raise FileChanged(key) from err
            if code in ("InvalidRange", "416"):
                return  # nothing after offset
            raise
        try:
            yield from body.iter_chunks(READ_CHUNK)
        finally:
            body.close()

    def put_errors_part(self, org_id: str, import_id: str, chunk: int, text: str) -> None:
        """Write the errors of one chunk (CSV rows, no header)."""
        self.client.put_object(Bucket=self.bucket, Key=_part_key(org_id, import_id, chunk),
                               Body=text.encode(), ContentType="text/csv; charset=utf-8")

    def assemble_errors(self, org_id: str, import_id: str, header: str,
                        chunks: list[int]) -> str:
        """Write the errors file: ``header`` then the parts of ``chunks`` in order, streamed
        (multipart upload for large files). Returns its key."""
        key = errors_key(org_id, import_id)
        self.client.upload_fileobj(_Concatenated(self, header.encode(), [
            _part_key(org_id, import_id, c) for c in sorted(set(chunks))]),
            self.bucket, key, ExtraArgs={"ContentType": "text/csv; charset=utf-8"})
        return key


class _Concatenated:
    """A read-only file object over ``head`` and then the objects ``keys``, read lazily."""

    def __init__(self, files: ImportFiles, head: bytes, keys: list[str]) -> None:
        self.files, self.buffer, self.keys = files, head, list(keys)

    def read(self, size: int = -1) -> bytes:
        while (size < 0 or len(self.buffer) < size) and self.keys:
            self.buffer += b"".join(self.files.read(self.keys.pop(0), None))
        if size < 0:
            out, self.buffer = self.buffer, b""
        else:
            out, self.buffer = self.buffer[:size], self.buffer[size:]
        return out
