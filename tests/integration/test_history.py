"""A randomized concurrent history over the in-process API, then every invariant.

16 worker threads send ``HISTORY_OPS`` requests (default 400; ``make stress`` sends
10,000) to one org: creates, upserts, PATCHes (moves and nulls of phone/email, other
fields), deletes, bulk upserts with overlapping identifiers (moves and nulls too), bulk
deletes, merges, audience create/add/remove/delete, CSV import jobs (uploaded, started
and run to their end by the worker) and the name re-index job (every contact). Six
phones, six emails and six external ids are shared by everything, so nearly every write
collides with another. The run is seeded
(``HISTORY_SEED``, default 20261121): each request's content comes from
``random.Random(f"{seed}:{n}")``, which ids it picks depends on timing.

A fifth of the requests carry an ``Idempotency-Key`` and are sent twice: the second
must replay the first. Asserted: no answer ≥ 500; every 409 is ``identity_conflict``,
``concurrent_modification`` or ``audience_name_conflict`` (bulk item errors likewise);
then the checker (no duplicate, no orphan or missing guard, exact audience counts,
consistent memberships, no half-deleted audience once the stream-driven step has run)
and the replay of the Contacts stream
(no moment with one phone or email on two live contacts). A one-line summary (ops,
statuses, duration, checker) is printed for the long profile.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.integration.conftest import Api, OrgClient, Response
from tests.support.hooks import Hooks, hooks_fixture  # noqa: F401
from tests.support.imports import Imports, csv_row, csv_text, imports_env  # noqa: F401
from tests.support.invariants import check
from tests.support.streams import read_stream, replay, transaction_pairs

OPS = int(os.environ.get("HISTORY_OPS", "400"))
SEED = int(os.environ.get("HISTORY_SEED", "20261121"))
WORKERS = 16
PHONES = [f"+2782123456{i}" for i in range(6)]
EMAILS = [f"person{i}@example.com" for i in range(6)]
EXTERNAL_IDS = [f"crm-{i}" for i in range(6)]
IDENTIFIERS = (("phone", PHONES, 0.3), ("email", EMAILS, 0.3), ("external_id", EXTERNAL_IDS, 0.5))
# the last two look like the first and third (an invisible character): one name each
AUDIENCE_NAMES = ["Donors", "Volunteers", "Board", "Do\u200bnors", "board\ufeff"]
CONFLICTS = {"identity_conflict", "concurrent_modification", "audience_name_conflict",
             "merge_refused"}
OMIT = object()
WRITES = {"TransactWriteItems", "UpdateItem", "PutItem", "DeleteItem"}


class History:
    """Shared state of the run: ids seen so far and every answer's (op, status, code)."""

    def __init__(self, api: Api, org_id: str, hooks: Hooks) -> None:
        self.api, self.org_id, self.hooks = api, org_id, hooks
        self.contacts: list[str] = []
        self.audiences: list[str] = []
        self.deleted_audiences: set[str] = set()
        self.outcomes: Counter[tuple[str, int, str]] = Counter()
        self.bulk_items: Counter[str] = Counter()
        self.errors: list[str] = []
        self.log: dict[str | None, str] = {}  # actor (#n) → the request and its answer
        self._lock = threading.Lock()

    def send(self, op: str, method: str, path: str, body: Any, key: str | None = None
             ) -> Response:
        """One request; with an ``Idempotency-Key`` it is sent twice, and the second must
        replay the first (unless the first was not kept: 400/413/5xx, or a 409 marked
        ``retryable``, whose retry runs again as the answer asks)."""
        headers = {"Idempotency-Key": key} if key else None
        response = self.api.request(method, path, org_id=self.org_id, json_body=body,
                                    headers=headers)
        code = response.body.get("code", "") if isinstance(response.body, dict) else ""
        retryable = isinstance(response.body, dict) and response.body.get("retryable") is True
        if key and response.status not in (400, 413) and response.status < 500 \
                and not retryable:
            again = self.api.request(method, path, org_id=self.org_id, json_body=body,
                                     headers=headers)
            if (again.status, again.body) != (response.status, response.body) or \
                    again.headers.get("Idempotent-Replayed") != "true":
                with self._lock:
                    self.errors.append(f"keyed retry of {op} {method} {path} {body}: "
                                       f"{response.status} then {again.status} {again.body}")
        with self._lock:
            self.log[self.hooks.actor()] = f"{method} {path} {body} → {response.status} {code}"
            self.outcomes[(op, response.status, code)] += 1
            if response.status >= 500 or (response.status == 409 and code not in CONFLICTS):
                self.errors.append(f"{op} {method} {path} {body} → {response.status} "
                                   f"{response.body}")
        return response

    def pick(self, rng: random.Random, pool: list[str]) -> str | None:
        with self._lock:
            return rng.choice(pool) if pool else None

    def sample(self, rng: random.Random, pool: list[str], most: int) -> list[str]:
        with self._lock:
            return rng.sample(pool, min(len(pool), rng.randint(1, most))) if pool else []

    def remember(self, pool: list[str], value: str) -> None:
        with self._lock:
            pool.append(value)


def _identity(rng: random.Random, values: list[str], omit: float = 0.3) -> Any:
    roll = rng.random()
    if roll < omit:
        return OMIT
    if roll < omit + 0.15:
        return None
    return rng.choice(values)


def _contact_body(rng: random.Random, *, need_identity: bool) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for field, values, omit in IDENTIFIERS:
        value = _identity(rng, values, omit)
        if value is not OMIT:
            body[field] = value
    if need_identity and not any(body.get(f) for f, _, _ in IDENTIFIERS):
        field, values, _ = rng.choice(IDENTIFIERS)
        body[field] = rng.choice(values)
    if rng.random() < 0.6:
        body["first_name"] = rng.choice(["Ama", "Bo", "Chen", "Dee", "Søren"])
    if rng.random() < 0.3:  # name words move with these (SPEC §9.3); null = the default
        body[rng.choice(["last_name", "name"])] = rng.choice(["Ng Li", "Dee Ama", None])
    if rng.random() < 0.3:
        body["tags"] = rng.sample(["vip", "lead", "new"], rng.randint(0, 2))
    if rng.random() < 0.3:
        body["attributes"] = {rng.choice(["plan", "city"]): rng.choice(["a", "b", None])}
    return body


def _one(history: History, n: int) -> None:
    rng = random.Random(f"{SEED}:{n}")
    kind = rng.choices(
        ["create", "upsert", "patch", "delete", "bulk", "bulk_delete", "aud_create",
         "aud_add", "aud_remove", "aud_delete", "merge", "import", "reindex"],
        weights=[12, 20, 20, 6, 12, 3, 3, 12, 6, 2, 5, 2, 1])[0]
    key = f"history-{SEED}-{n}" if rng.random() < 0.2 else None  # a client that retries

    def send(op: str, method: str, path: str, body: Any) -> Response:
        return history.send(op, method, path, body, key)

    if kind == "reindex":  # the operator's job (README "Upgrading") while the API serves
        from contacts_core.contacts.reindex import reindex_names

        reindex_names(everything=True, org_id=history.org_id)
    elif kind == "create":
        response = send(kind, "POST", "/v1/contacts", _contact_body(rng, need_identity=True))
        if response.status == 201:
            history.remember(history.contacts, response.body["id"])
    elif kind == "upsert":
        response = send(kind, "POST", "/v1/contacts/upsert",
                        _contact_body(rng, need_identity=True))
        if response.status == 201:
            history.remember(history.contacts, response.body["contact"]["id"])
    elif kind == "patch" and (cid := history.pick(rng, history.contacts)):
        body = _contact_body(rng, need_identity=False) or {"first_name": "Eve"}
        send(kind, "PATCH", f"/v1/contacts/{cid}", body)
    elif kind == "delete" and (cid := history.pick(rng, history.contacts)):
        send(kind, "DELETE", f"/v1/contacts/{cid}", None)
    elif kind == "bulk":
        items = [_contact_body(rng, need_identity=True) for _ in range(rng.randint(1, 6))]
        mode = rng.choice(["upsert", "upsert", "create_only", "update_only"])
        response = send(kind, "POST", "/v1/contacts/bulk", {"contacts": items, "mode": mode})
        if response.status == 200:
            for result in response.body["results"]:
                status = result["status"]
                code = (result.get("error") or {}).get("code", "")
                with history._lock:
                    history.bulk_items[f"{status}{':' + code if code else ''}"] += 1
                if status == "created":
                    history.remember(history.contacts, result["id"])
                expected = CONFLICTS | ({"not_found"} if mode == "update_only" else set())
                if status == "failed" and code not in expected:
                    with history._lock:
                        history.errors.append(f"bulk item {result}")
    elif kind == "import":
        _import(history, [_contact_body(rng, need_identity=True)
                          for _ in range(rng.randint(1, 6))], key)
    elif kind == "merge" and len(pair := history.sample(rng, history.contacts, 2)) == 2:
        send(kind, "POST", f"/v1/contacts/{pair[0]}/merge", {"source_id": pair[1]})
    elif kind == "bulk_delete" and (ids := history.sample(rng, history.contacts, 4)):
        send(kind, "POST", "/v1/contacts/bulk-delete", {"contact_ids": ids})
    elif kind == "aud_create":
        response = send(kind, "POST", "/v1/audiences", {"name": rng.choice(AUDIENCE_NAMES)})
        if response.status == 201:
            history.remember(history.audiences, response.body["id"])
    elif kind in ("aud_add", "aud_remove") and (aud := history.pick(rng, history.audiences)):
        ids = history.sample(rng, history.contacts, 4)
        if ids:
            suffix = "" if kind == "aud_add" else "/remove"
            send(kind, "POST", f"/v1/audiences/{aud}/contacts{suffix}", {"contact_ids": ids})
    elif kind == "aud_delete" and (aud := history.pick(rng, history.audiences)):
        response = send(kind, "DELETE", f"/v1/audiences/{aud}", None)
        if response.status in (202, 204):
            with history._lock:
                history.deleted_audiences.add(aud)


def _explain(violations: list[str], history: History, records: list[dict[str, Any]]) -> str:
    """For each contact named by a violation: its stream records and the requests that
    wrote it (from the recorded write calls), in order."""
    lines: list[str] = []
    named = {word.strip("[]',") for v in violations for word in v.split()
             if word.strip("[]',").startswith("con_")}
    for cid in sorted(named):
        lines.append(f"{cid}:")
        for record in records:
            if record["dynamodb"]["Keys"]["contact_id"]["S"] == cid:
                new = record["dynamodb"].get("NewImage") or {}
                lines.append(f"  stream {record['dynamodb']['SequenceNumber']} "
                             f"{record['eventName']} v{new.get('version', {}).get('N')} "
                             f"phone {new.get('phone', {}).get('S')} "
                             f"email {new.get('email', {}).get('S')}")
        for call in history.hooks.calls:
            if cid in repr(call.params):
                guards = [f"{kind} {body['Item' if 'Item' in body else 'Key']['identity']['S']}"
                          f" → {body.get('Item', {}).get('contact_id', {}).get('S')}"
                          f" if {body.get('ExpressionAttributeValues', {})}"
                          for action in call.params.get("TransactItems", [])
                          for kind, body in action.items()
                          if body["TableName"] == os.environ["IDENTITIES_TABLE"]]
                lines.append(f"  {call.actor} {call.label()}: {history.log.get(call.actor)} "
                             f"guards {guards}")
    return "\n" + "\n".join(lines)


def _import(history: History, rows: list[dict[str, Any]], key: str | None) -> None:
    """An import job of ``rows``, uploaded, started and run to its end in this thread."""
    from contacts_core.imports.operations import run_import

    response = history.send("import", "POST", "/v1/imports", {}, key)
    if response.status != 201:
        return
    client = OrgClient(history.api, history.org_id)
    job = Imports(client, history.api)
    job.upload(response.body, csv_text([csv_row(r) for r in rows]))
    run_import(history.org_id, response.body["id"], lambda: 900.0)
    done = job.get(response.body["id"])
    if done["status"] != "completed" or done["progress"]["rows_done"] != len(rows):
        with history._lock:
            history.errors.append(f"import {done}")


@pytest.mark.usefixtures("imports_env")
def test_randomized_concurrent_history_keeps_every_invariant(api, org_id, hooks: Hooks,
                                                             capsys: pytest.CaptureFixture):
    # Given one org and 16 workers over a pool of 6 phones and 6 emails
    hooks.record_ops = WRITES  # who wrote what, to explain a violation
    history = History(api, org_id, hooks)
    counter = iter(range(OPS))
    lock = threading.Lock()

    def worker() -> None:
        while True:
            with lock:
                n = next(counter, None)
            if n is None:
                return
            with hooks.acting(f"#{n}"):
                _one(history, n)

    # When they send OPS random requests at once
    started = time.monotonic()
    with ThreadPoolExecutor(WORKERS) as pool:
        for future in [pool.submit(worker) for _ in range(WORKERS)]:
            future.result()
    duration = time.monotonic() - started
    # Then every invariant holds once the stream-driven step has finished flagged audience
    # deletes (as FinishAudienceDeleteFunction does), and the stream never showed a phone
    # or email on two live contacts
    from contacts_core.audiences.operations import finish_audience_delete

    flagged = check(org_id).pending
    for audience_id in {p.split()[0] for p in flagged}:
        finish_audience_delete(org_id, audience_id)
    report = check(org_id)
    records = read_stream()
    outcome = replay(records, org_id,
                     together=transaction_pairs(hooks.committed))
    answers = list(history.outcomes.elements())
    statuses = Counter(status for (_, status, _) in answers)
    conflicts = Counter(code for (_, status, code) in answers if status == 409)
    refusals = Counter(f"{op}:{code}" for (op, status, code) in answers if status == 400)
    merges = Counter(status for (op, status, _) in answers if op == "merge")
    imports = Counter(status for (op, status, _) in answers if op == "import")
    summary = (f"history: {OPS} ops, seed {SEED}, {WORKERS} workers, {duration:.1f} s "
               f"({OPS / duration:.0f} ops/s); statuses {dict(sorted(statuses.items()))}; "
               f"409 codes {dict(conflicts)}; 400 codes {dict(refusals)}; "
               f"bulk items {dict(history.bulk_items)}; merges {dict(merges)}; "
               f"imports {dict(imports)}; "
               f"audience deletes finished by the "
               f"stream step {len(flagged)}; checker: {report.summary()}; "
               f"stream: {outcome.records} records, {outcome.transient} transient, "
               f"{len(outcome.violations)} violations")
    with capsys.disabled():
        print("\n" + summary)
    assert not history.errors, "\n".join(history.errors[:20])
    assert report.violations() == [], "\n".join(report.violations()) + _explain(
        report.violations(), history, records)
    assert report.snapshot is not None
    assert not set(history.deleted_audiences) & set(report.snapshot.audiences)
    assert outcome.violations == [], "\n".join(outcome.violations[:20]) + _explain(
        outcome.violations[:3], history, records)
    assert report.snapshot.contacts, "the run should leave some contacts behind"
