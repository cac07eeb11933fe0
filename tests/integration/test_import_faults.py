"""Imports under injected crashes (issue 12): a run that dies at any DynamoDB call, before or
after it, or while writing its errors file, is redone from the job's checkpoint by the next
delivery of its message, and the job ends exactly as an uninterrupted run ends it — same
contacts, same counts, same errors file, no row duplicated or skipped — with the identity
invariants holding right after the crash and at the end.
"""

from __future__ import annotations

import contextlib
import re
from typing import Any, cast

import pytest

from contacts_core.contacts.bulk import bulk_upsert
from contacts_core.imports import operations
from contacts_core.imports.files import ImportFiles
from tests.integration.conftest import OrgClient
from tests.integration.test_bulk import EXISTING, MIXED
from tests.integration.test_imports import people
from tests.support.hooks import Crash, Hooks, InjectedCrash, hooks_fixture  # noqa: F401
from tests.support.imports import Imports, csv_row, csv_text, imports_env  # noqa: F401
from tests.support.invariants import assert_consistent, check

pytestmark = pytest.mark.usefixtures("imports_env")
FILE = csv_text([csv_row(cast(dict[str, Any], b)) for b in MIXED])
CHUNK = 6  # rows per chunk: MIXED's 22 rows are 4 chunks


def prepared(api: Any, org_id: str) -> tuple[Imports, str]:
    """An org with EXISTING contacts and an uploaded, started import of MIXED."""
    client = OrgClient(api, org_id)
    bulk_upsert(org_id, EXISTING)
    imports = Imports(client, api)
    job = imports.create()
    imports.upload(job, FILE)
    return imports, job["id"]


def outcome(imports: Imports, import_id: str) -> dict[str, Any]:
    """What an import leaves: the job's counts and progress, errors file, contacts."""
    job = imports.get(import_id)
    assert job["status"] == "completed", job
    errors = [[re.sub(r"con_[0-9A-Z]{26}", "con_…", cell) for cell in row]
              for row in imports.errors(job)]  # reasons name the org's own contacts
    return {"counts": {k: job[k] for k in ("created", "updated", "unchanged", "failed")},
            "progress": job["progress"], "errors": errors,
            "people": people(imports.client)}


def finish(imports: Imports, import_id: str) -> None:
    """Redeliver the run's message until the job is over (as SQS would)."""
    for attempt in range(2, 5):
        if imports.run(import_id, attempt=attempt) == "done":
            return
    raise AssertionError("the job did not finish")


WRITES = ("TransactWriteItems", "UpdateItem", "PutItem", "DeleteItem")
MAX_CRASHES = 32  # crash points tried, spread evenly over the run (each takes about 1 s)


def crash_sides(call: Any) -> tuple[str, ...]:
    """Where to crash around a call: both sides of a write (it landed or not), before a
    read (after it, nothing has changed yet either)."""
    return ("before", "after") if call.op in WRITES else ("before",)


@pytest.fixture
def reference(api, org_id, monkeypatch) -> dict[str, Any]:
    monkeypatch.setattr(operations, "CHUNK_ROWS", CHUNK)
    imports, import_id = prepared(api, f"{org_id}_ref")
    assert imports.run(import_id) == "done"
    return outcome(imports, import_id)


def test_a_crash_at_any_dynamodb_call_of_a_run_is_mended_by_the_next_delivery(
        api, hooks: Hooks, org_id, reference, monkeypatch):
    monkeypatch.setattr(operations, "CHUNK_ROWS", CHUNK)
    # Given the calls an uninterrupted run makes
    imports, import_id = prepared(api, f"{org_id}_rec")
    hooks.clear()
    imports.run(import_id)
    calls = list(hooks.calls)
    hooks.clear()
    assert len(calls) > 20
    failures: list[str] = []
    points = [(k, call, when) for k, call in enumerate(calls, start=1)
              for when in crash_sides(call)]
    for k, call, when in points[::max(1, len(points) // MAX_CRASHES)]:
        where = f"crash {when} call {k} {call.label()}"
        imports, import_id = prepared(api, f"{org_id}_{k}{when[0]}")
        # When the run dies at that call
        crash = hooks.add(Crash(k, when))  # type: ignore[arg-type]
        with contextlib.suppress(InjectedCrash):
            imports.run(import_id)
        hooks.rules.remove(crash)
        if crash.crashed_at is None:
            failures.append(f"{where}: never reached")
            continue
        # Then the identity invariants hold at once
        problems = check(imports.client.org_id).violations(allow_pending=True)
        if problems:
            failures.append(f"{where}: right after the crash: {problems}")
        # And the next deliveries finish the job as if nothing had happened
        finish(imports, import_id)
        got = outcome(imports, import_id)
        if got != reference:
            diff = {f: (got[f], reference[f]) for f in got if got[f] != reference[f]}
            failures.append(f"{where}: {diff}")
        assert_consistent(imports.client.org_id)
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("method", ["put_errors_part", "assemble_errors"])
def test_a_crash_while_writing_the_errors_file_is_mended_too(
        api, org_id, reference, monkeypatch, method):
    monkeypatch.setattr(operations, "CHUNK_ROWS", CHUNK)
    imports, import_id = prepared(api, org_id)
    real = getattr(ImportFiles, method)
    calls = {"n": 0}

    def dying(self: ImportFiles, *args: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2 or method == "assemble_errors":
            raise InjectedCrash(method)
        return real(self, *args)

    # Given the run dies while writing (part of) its errors file
    monkeypatch.setattr(ImportFiles, method, dying)
    with pytest.raises(InjectedCrash):
        imports.run(import_id)
    monkeypatch.setattr(ImportFiles, method, real)
    # When the message comes back, the job ends as an uninterrupted run ends it
    finish(imports, import_id)
    assert outcome(imports, import_id) == reference
