"""Trim the layer's botocore to the AWS services the functions call, as it ships.

botocore carries a model for each of ~440 AWS services, and its first client of a process
pays for all of them: ``Loader.load_service_model`` checks the service exists by listing
every service directory under ``botocore/data`` with its API versions (``listdir`` and
``stat`` of ~1,800 paths, once for ``service-2`` and once for ``endpoint-rule-set-1``), and
the session's endpoint resolver parses ``endpoints.json`` (1.2 MB, every service in every
partition). Measured on this machine: ~15 ms and ~20 ms of the ~50 ms a DynamoDB client
costs to make, a fifth of issue 11's cold-start floor. The layer ships botocore (the
X-Ray SDK that Powertools' Tracer uses depends on it, and it is first on the functions'
``sys.path``, ahead of the runtime's), so ``make build``, ``make build-aws`` and the local
stack's build keep only :data:`SERVICES` under ``botocore/data``, and only their entries
in ``endpoints.json``. The layer's zip shrinks by the same stroke (~25 MB unpacked).

Each kept service model (``service-2.json.gz``) is also shipped without its documentation
(the prose of every operation, shape and member: three quarters of DynamoDB's model), as
plain minified ``service-2.json``: botocore reads a model whole when it makes a client, so
DynamoDB's costs ~7 ms to unpack and parse, ~3 ms without. botocore uses that prose only for
docstrings (``help(client.get_item)``); requests, validation and errors do not read it.

A function that made a client of any other service would fail with botocore's
``UnknownServiceError``: ``tests/smoke/test_botocore_data.py`` checks that every service our
code names is kept and that each kept one makes a client from the trimmed build.

Run by ``python -m devstack.ship [BUILD_DIR]`` with the other build step.
"""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

# What the layer calls: DynamoDB (every store, Powertools' idempotency table), SQS (webhook
# deliveries), Secrets Manager (the cursor key ring), KMS (webhook secrets), S3 (imports
# and exports, through boto3), and STS, which botocore's credential chain may call for a
# role to assume (never on Lambda, whose role credentials are in the environment).
SERVICES = frozenset({"dynamodb", "kms", "s3", "secretsmanager", "sqs", "sts"})


def trim_botocore_data(build_dir: Path) -> list[Path]:
    """Keep only :data:`SERVICES` in every ``botocore/data`` under ``build_dir``.

    Removes each other service's directory and rewrites ``endpoints.json`` with only the
    kept services of each partition (its regions and defaults unchanged), and each kept
    service's ``service-2`` model without documentation (:func:`_slim_service_model`). The top-level
    files botocore reads for every client (``partitions.json``, ``_retry.json``,
    ``sdk-default-configuration.json``) stay. Running it again changes nothing.

    Returns the ``botocore/data`` directories trimmed (none when the build ships no
    botocore). Raises ``FileNotFoundError`` when ``build_dir`` does not exist.
    """
    if not build_dir.is_dir():
        raise FileNotFoundError(f"no build output at {build_dir}: run sam build first")
    trimmed = []
    for data in sorted(build_dir.glob("**/botocore/data")):
        if not (data / "endpoints.json").is_file():
            continue
        for entry in data.iterdir():
            if entry.is_dir() and entry.name not in SERVICES:
                shutil.rmtree(entry)
        _trim_endpoints(data / "endpoints.json")
        for model in sorted(data.glob("*/*/service-2.json*")):
            _slim_service_model(model)
        trimmed.append(data)
    return trimmed


def _trim_endpoints(path: Path) -> None:
    """Rewrite botocore's ``endpoints.json`` (format version 3: ``{"partitions": [{...,
    "services": {name: ...}}], "version": 3}``) with only the kept services."""
    endpoints = json.loads(path.read_text())
    for partition in endpoints["partitions"]:
        partition["services"] = {name: service for name, service
                                 in partition["services"].items() if name in SERVICES}
    path.write_text(json.dumps(endpoints, separators=(",", ":")))


def _slim_service_model(path: Path) -> None:
    """Rewrite a botocore service model (``service-2.json`` or ``.json.gz``: ``{"metadata",
    "operations": {name: {..., "documentation"}}, "shapes": {name: {..., "documentation",
    "members": {name: {..., "documentation"}}}}, "documentation"}``) as minified
    ``service-2.json`` without the ``documentation`` of the service, its operations, shapes
    and members; everything else (``clientContextParams`` keep theirs, which botocore
    requires) is unchanged, in the same order. botocore's loader tries ``.json`` before
    ``.json.gz``; the ``.gz`` file is removed so only one model is left."""
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    model = json.loads(raw)
    model.pop("documentation", None)
    for operation in model.get("operations", {}).values():
        operation.pop("documentation", None)
    for shape in model.get("shapes", {}).values():
        shape.pop("documentation", None)
        for member in shape.get("members", {}).values():
            member.pop("documentation", None)
    slim = path.with_name("service-2.json")
    slim.write_text(json.dumps(model, separators=(",", ":")))
    if slim != path:
        path.unlink()
