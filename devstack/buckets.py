"""S3 buckets of template.yaml on a local S3 endpoint (the stack's moto server), and the
environment that points the functions at them.

Each ``AWS::S3::Bucket`` is created under a valid S3 name derived from its logical id
(:func:`bucket_name`: ``ImportsBucket`` -> ``importsbucket``); its other properties
(encryption, lifecycle, public access block) and bucket policies have no local effect and
are not applied. SAM resolves ``!Ref Bucket`` in environment variables to the logical id;
the returned ``{logical_id: bucket name}`` turns those into the local names
(:func:`devstack.queues.resolve_queue_refs` takes them like queue URLs).

Functions reach the endpoint through :func:`s3_environment`: ``AWS_ENDPOINT_URL_S3``
(boto3's own variable) and ``S3_ENDPOINT_URL`` (the template's, read by the code). Clients
use path-style addressing there (``http://127.0.0.1:PORT/bucket/key``), so presigned URLs
the functions hand out are reachable from this machine. Bucket notifications are
delivered by :class:`devstack.event_sources.S3EventPoller`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from botocore.config import Config
from botocore.exceptions import ClientError

from devstack.aws import local_client
from devstack.tables import load_template

BUCKET_TYPE = "AWS::S3::Bucket"


def bucket_definitions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{logical_id: Properties}`` of every S3 bucket in a loaded template."""
    return {lid: r.get("Properties") or {} for lid, r in template["Resources"].items()
            if r.get("Type") == BUCKET_TYPE}


def bucket_name(logical_id: str) -> str:
    """The local name of the bucket ``logical_id``: lowercase, only letters, digits and
    hyphens, 3 to 63 characters (a valid S3 name)."""
    name = re.sub(r"[^a-z0-9-]", "-", logical_id.lower()).strip("-")[:63].rstrip("-")
    if len(name) < 3:
        name = f"{name}-bucket".lstrip("-")
    return name


def s3_client(endpoint_url: str) -> Any:
    """An S3 client for the local endpoint: fake credentials, SigV4, path-style URLs."""
    return local_client("s3", endpoint_url, Config(signature_version="s3v4",
                                                   s3={"addressing_style": "path"}))


def create_buckets(template_path: Path, endpoint_url: str) -> dict[str, str]:
    """Create the template's buckets (idempotent); returns ``{logical_id: bucket name}``."""
    client = s3_client(endpoint_url)
    names: dict[str, str] = {}
    for logical_id in bucket_definitions(load_template(template_path)):
        name = bucket_name(logical_id)
        try:
            client.create_bucket(Bucket=name)
        except ClientError as err:
            if err.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou",
                                                     "BucketAlreadyExists"):
                raise
        names[logical_id] = name
    return names


def s3_environment(endpoint_url: str) -> dict[str, str]:
    """The variables that point the functions' S3 clients at ``endpoint_url``."""
    return {"AWS_ENDPOINT_URL_S3": endpoint_url, "S3_ENDPOINT_URL": endpoint_url}
