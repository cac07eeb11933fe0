"""Benchmark: a 100,000-row CSV import job vs raw BatchWriteItem of what it stores.

Both run in the same process against the same DynamoDB Local, so the ratio cancels out
the machine. The file has the export's columns (:data:`contacts_core.contacts.csv_format.COLUMNS`,
cells neutralised as the export writes them) and one new person a row: a unique phone and
email, a first and a last name. It goes into the template's imports bucket on a moto server
in this process (:mod:`bench.local_aws`, which also holds the template's queues), a job is
created (:func:`~contacts_core.imports.operations.create_import`) and started as the
upload's S3 event would (:func:`~contacts_core.imports.operations.start_upload`), and
:func:`~contacts_core.imports.operations.run_import` runs it to the end in one call — what
the import function does over one or more invocations: read and count the file, then bulk
upsert it in checkpointed chunks of 1000 rows.

The floor writes what those rows become — each contact item with its guard items (phone,
email) and its NameWords items, built by the domain's own code
(:class:`~contacts_core.contacts.changes.ContactChanges`,
:class:`~contacts_core.contacts.store.ContactStore`) from the file's rows — with plain
``BatchWriteItem`` (25 items a call, unprocessed items retried), from as many threads as a
bulk upsert writes with (:data:`contacts_core.contacts.bulk.WRITERS`), for another org.
Items are built 1000 rows at a time outside the clock; only the writes are timed. A warm-up
floor of 1000 rows runs first; then the floor, then the import.

    .venv/bin/python bench/import_100k.py [--rows 100000]     (or: make bench-import [ROWS=…])

Last run (2026-11-22, 2 cores shared with other test runs, DynamoDB Local in memory):

    100000 rows, 8.2 MB of CSV (uploaded to moto's S3 in 0.1 s, not counted)
                                       seconds    rows/s
    import job (run_import)              387.8       258
    floor: raw BatchWriteItem            210.4       475
    floor: 500000 items (contacts, guards, name words), 25 a call, 8 threads
    ratio import / floor: 1.84x

Small runs read higher ratios (2.5x at 200 rows, 2.0x at 2000): a job's fixed costs
(reading the file once to count it, the errors file, a checkpoint per chunk) and the JIT
warm-up weigh more there.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import itertools
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
TEMPLATE = REPO / "template.yaml"
sys.path.insert(0, str(REPO))

from bench.bulk_upsert import environment  # noqa: E402
from bench.local_aws import local_aws  # noqa: E402
from devstack.dynamodb_local import DynamoDBLocal  # noqa: E402
from devstack.tables import create_tables  # noqa: E402

BUCKET = "importsbucket"  # ImportsBucket, as a bucket may be named (lower case)
BLOCK = 1000  # rows built at a time for the floor (outside the clock)
BATCH = 25  # BatchWriteItem limit


# ---------------------------------------------------------------------- data
def write_csv(path: Path, rows: int, tag: str) -> None:
    """``rows`` new people in the export's columns: unique phone and email, two names."""
    from contacts_core.contacts.csv_format import COLUMNS, neutralise

    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow(COLUMNS)
        for i in range(rows):
            person = {"first_name": f"Bench{i % 997}", "last_name": f"Person{i}",
                      "phone": f"+2782{i:07d}", "email": f"p{i}.{tag}@bench.example.com"}
            writer.writerow([neutralise(person.get(c, "")) for c in COLUMNS])


def csv_bodies(path: Path) -> Iterator[dict[str, Any]]:
    """The upsert bodies of the file's rows, as an import reads them."""
    from contacts_core.contacts.csv_format import upsert_body

    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            yield upsert_body(row)


# ---------------------------------------------------------------------- floor
def stored_items(store: Any, org_id: str, body: dict[str, Any]
                 ) -> list[tuple[str, dict[str, Any]]]:
    """``(table, item)`` of everything one new contact stores: the contact, a guard per
    identity, a NameWords item per word of its names."""
    from contacts_core.contacts.changes import ContactChanges
    from contacts_core.contacts.requests import ContactUpsert

    item = ContactChanges.from_request(ContactUpsert.model_validate(body)).new_item(org_id)
    actions = [store.put_new_action(item),
               *(store.guard_transfer(org_id, field, value, None, item.contact_id)
                 for field, value in item.identities().items()),
               *store.word_actions(None, item)]
    return [(a["Put"]["TableName"], a["Put"]["Item"]) for a in actions]


def _batch_write(client: Any, items: list[tuple[str, dict[str, Any]]]) -> None:
    """One ``BatchWriteItem`` of ≤ 25 items (any tables), retrying ``UnprocessedItems``."""
    request: dict[str, list[dict[str, Any]]] = {}
    for table, item in items:
        request.setdefault(table, []).append({"PutRequest": {"Item": item}})
    for attempt in itertools.count():
        request = client.batch_write_item(RequestItems=request).get("UnprocessedItems")
        if not request:
            return
        time.sleep(min(0.05 * 2**attempt, 1.0))


def floor(path: Path, rows: int) -> tuple[float, int]:
    """Seconds spent in ``BatchWriteItem`` storing the file's rows as new contacts of a
    fresh org (WRITERS threads), and the number of items written."""
    from contacts_core.contacts.bulk import WRITERS
    from contacts_core.contacts.store import ContactStore

    store = ContactStore()
    org = f"org_{uuid.uuid4().hex[:8]}"
    bodies = itertools.islice(csv_bodies(path), rows)
    elapsed, written = 0.0, 0
    with ThreadPoolExecutor(WRITERS) as pool:
        while block := list(itertools.islice(bodies, BLOCK)):
            items = [i for body in block for i in stored_items(store, org, body)]
            batches = [items[at:at + BATCH] for at in range(0, len(items), BATCH)]
            started = time.perf_counter()
            list(pool.map(lambda b: _batch_write(store.client, b), batches))
            elapsed += time.perf_counter() - started
            written += len(items)
    return elapsed, written


# ---------------------------------------------------------------------- import
def import_job(path: Path, rows: int) -> tuple[float, float, dict[str, Any]]:
    """Upload the file to a new job of a fresh org and run it to the end; the upload's and
    the run's seconds and the job as the API shows it."""
    from contacts_core.imports.files import ImportFiles, upload_key
    from contacts_core.imports.models import ImportCreate
    from contacts_core.imports.operations import create_import, get_import, run_import, start_upload

    org = f"org_{uuid.uuid4().hex[:8]}"
    job = create_import(org, ImportCreate())
    files = ImportFiles()
    key = upload_key(org, job.id)
    started = time.perf_counter()
    files.client.upload_file(str(path), files.bucket, key)
    uploaded = time.perf_counter() - started
    head = files.client.head_object(Bucket=files.bucket, Key=key)
    assert start_upload(org, job.id, head["ContentLength"], head["ETag"].strip('"'))
    chunks = itertools.count(1)

    def time_left() -> float:  # asked before each chunk: never short of time, and a pulse
        chunk = next(chunks)
        if chunk % 10 == 0:
            print(f"  import: chunk {chunk} of {-(-rows // 1000)}", file=sys.stderr, flush=True)
        return 900.0

    # stdout is the result: the EMF lines the domain's metrics print (every 100 values, as
    # in the function's log) go to stderr
    with contextlib.redirect_stdout(sys.stderr):
        started = time.perf_counter()
        outcome = run_import(org, job.id, time_left)
        ran = time.perf_counter() - started
    done = get_import(org, job.id).model_dump()
    assert outcome == "done" and done["status"] == "completed", done
    assert (done["created"], done["failed"]) == (rows, 0), done
    return uploaded, ran, done


# ---------------------------------------------------------------------- report
def table(rows: int, size: int, uploaded: float, ran: float, floor_s: float,
          items: int) -> str:
    """The result as a short table."""
    from contacts_core.contacts.bulk import WRITERS

    out = io.StringIO()
    print(f"{rows} rows, {size / 1e6:.1f} MB of CSV (uploaded to moto's S3 in "
          f"{uploaded:.1f} s, not counted)", file=out)
    print(f"{'':32}{'seconds':>10}{'rows/s':>10}", file=out)
    print(f"{'import job (run_import)':32}{ran:10.1f}{rows / ran:10.0f}", file=out)
    print(f"{'floor: raw BatchWriteItem':32}{floor_s:10.1f}{rows / floor_s:10.0f}", file=out)
    print(f"floor: {items} items (contacts, guards, name words), {BATCH} a call, "
          f"{WRITERS} threads", file=out)
    print(f"ratio import / floor: {ran / floor_s:.2f}x", file=out)
    return out.getvalue().rstrip("\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="rows in the file")
    args = parser.parse_args(argv)
    if args.rows < 1:
        parser.error("--rows must be ≥ 1")
    with tempfile.TemporaryDirectory() as tmp, DynamoDBLocal() as ddb:
        create_tables(TEMPLATE, ddb.endpoint_url)
        environment(ddb.endpoint_url)
        with local_aws(TEMPLATE, queues=True) as moto:
            os.environ.update({"AWS_ENDPOINT_URL_S3": moto, "IMPORTS_BUCKET": BUCKET})
            from contacts_core.imports.files import s3_client

            s3_client().create_bucket(Bucket=BUCKET)
            warmup, path = Path(tmp) / "warmup.csv", Path(tmp) / "people.csv"
            write_csv(warmup, BLOCK, "warmup")
            write_csv(path, args.rows, "bench")
            floor(warmup, BLOCK)  # JIT-warm DynamoDB Local and the client
            print(f"floor: {args.rows} rows…", file=sys.stderr, flush=True)
            floor_s, items = floor(path, args.rows)
            print(f"import: {args.rows} rows…", file=sys.stderr, flush=True)
            uploaded, ran, _ = import_job(path, args.rows)
            print(table(args.rows, path.stat().st_size, uploaded, ran, floor_s, items))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
