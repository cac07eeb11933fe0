"""Fault injection: every write operation crashes before and after each DynamoDB call it
makes, then the invariants must hold, and a retry of the same request must finish it.

For each operation a recording run (fresh org, same setup) lists the calls it makes;
then, for every call k and both sides of it, a fresh org is set up, the request runs with
a :class:`tests.support.hooks.Crash` rule (the process dies there: that call and every
later one raise ``InjectedCrash``, which no handler can catch), and

1. right after the crash the checker finds no duplicate, orphan or unguarded value and
   exact audience counts (a multi-step audience delete may be left *pending*, flagged);
2. the client retries the request unchanged: the answer is not a 5xx (a 409 conflict is
   fine when the first attempt had committed), and the org ends in the state the request
   asked for, with every invariant, pending work included.

A crash point that breaks this is reported with the call it hit.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.integration.conftest import Api, Response
from tests.support.hooks import (  # noqa: F401 - hooks_fixture
    Call,
    Cancel,
    Crash,
    Hooks,
    InjectedCrash,
    Throttle,
    hooks_fixture,
)
from tests.support.invariants import Snapshot, assert_consistent, check

P1, P2 = "+27821234560", "+27821234561"
E1, E2 = "thandi@example.com", "sipho@example.com"
X1 = "crm-0001"
CONFLICTS = {"identity_conflict", "concurrent_modification", "audience_name_conflict"}

Ctx = dict[str, Any]


class Client:
    """The API for one org, as a test client would call it."""

    def __init__(self, api: Api, org_id: str) -> None:
        self.api, self.org_id = api, org_id

    def __call__(self, method: str, path: str, body: Any = None) -> Response:
        return self.api.request(method, path, org_id=self.org_id, json_body=body)

    def contact(self, body: dict[str, Any]) -> str:
        response = self("POST", "/v1/contacts", body)
        assert response.status == 201, response.body
        return str(response.body["id"])

    def audience(self, members: list[str] = ()) -> str:  # type: ignore[assignment]
        return self.audience_named("Donors", members)

    def audience_named(self, name: str, members: list[str] = ()) -> str:  # type: ignore[assignment]
        aud = str(self("POST", "/v1/audiences", {"name": name}).body["id"])
        if members:
            assert self("POST", f"/v1/audiences/{aud}/contacts",
                        {"contact_ids": list(members)}).status == 200
        return aud


@dataclass
class Scenario:
    """A write request, the world it runs in, and what the world looks like once done."""

    name: str
    setup: Callable[[Client], Ctx]
    request: Callable[[Ctx], tuple[str, str, Any]]
    done: Callable[[Snapshot, Ctx], object]  # asserts (or pytest.fail) when not done
    background: Callable[[str, Ctx], None] | None = None  # what a stream consumer finishes


def _finish_audience_delete(org_id: str, ctx: Ctx) -> None:
    """What FinishAudienceDeleteFunction does with the stream record of the flag."""
    from contacts_core.audiences.operations import finish_audience_delete

    finish_audience_delete(org_id, ctx["aud"])


def _phones(snap: Snapshot) -> dict[str, str | None]:
    return {cid: c.get("phone") for cid, c in snap.contacts.items()}


def _only(snap: Snapshot) -> dict[str, Any]:
    assert len(snap.contacts) == 1, snap.contacts
    return next(iter(snap.contacts.values()))


def _x_with(body: dict[str, Any], **extra: Any) -> Callable[[Client], Ctx]:
    def setup(client: Client) -> Ctx:
        ctx: Ctx = {"x": client.contact(body)}
        if extra.get("audience"):
            ctx["aud"] = client.audience([ctx["x"]])
        return ctx
    return setup


def _two_in_audience(client: Client) -> Ctx:
    x, y = client.contact({"phone": P1}), client.contact({"phone": P2})
    return {"x": x, "y": y, "aud": client.audience([x, y])}


def _two_and_empty_audience(client: Client) -> Ctx:
    return {"x": client.contact({"phone": P1}), "y": client.contact({"phone": P2}),
            "aud": client.audience()}


def _members(snap: Snapshot, ctx: Ctx, expected: set[str]) -> None:
    assert snap.members == {(ctx["aud"], c) for c in expected}
    assert snap.audiences[ctx["aud"]]["contact_count"] == len(expected)


def _deleted(snap: Snapshot, ctx: Ctx) -> None:
    """The contacts are gone, and with them their memberships (the count follows)."""
    _members(snap, ctx, set())
    assert snap.contacts == {}, snap.contacts


def _source_in_two_audiences(client: Client) -> Ctx:
    """Target X (E1) and source Y (P1, X1, E2), both in audience A, only Y in B."""
    x = client.contact({"email": E1, "first_name": "Thandi"})
    y = client.contact({"phone": P1, "external_id": X1, "email": E2, "last_name": "Dube"})
    return {"x": x, "y": y, "aud": client.audience([x, y]), "b": client.audience_named("B", [y])}


def _merged(snap: Snapshot, ctx: Ctx) -> None:
    merged = _only(snap)
    assert merged["contact_id"] == ctx["x"], snap.contacts
    assert (merged["email"], merged["phone"], merged["external_id"], merged["last_name"]) == (
        E1, P1, X1, "Dube")
    assert snap.members == {(ctx["aud"], ctx["x"]), (ctx["b"], ctx["x"])}
    assert [snap.audiences[a]["contact_count"] for a in (ctx["aud"], ctx["b"])] == [1, 1]


def _bulk_done(snap: Snapshot, ctx: Ctx) -> None:
    by_phone = {c.get("phone"): c for c in snap.contacts.values()}
    assert sorted(map(str, by_phone)) == sorted([P1, P2, "None"]), _phones(snap)
    assert by_phone[P2]["contact_id"] == ctx["x"] and by_phone[P2]["email"] == E1
    assert by_phone[P1]["first_name"] == "Nomsa" and by_phone[None]["email"] == E2


def _run_done(snap: Snapshot, ctx: Ctx) -> None:
    only = _only(snap)
    assert only["contact_id"] == ctx["x"], snap.contacts
    assert (only["phone"], only["first_name"], only["last_name"]) == (P1, "Nomsa", "Dube")


SCENARIOS = [
    Scenario("create", lambda c: {},
             lambda ctx: ("POST", "/v1/contacts", {"phone": P1, "email": E1}),
             lambda snap, ctx: _only(snap)["email"] == E1 or pytest.fail("email lost")),
    Scenario("upsert_create", lambda c: {},
             lambda ctx: ("POST", "/v1/contacts/upsert", {"phone": P1, "first_name": "Nomsa"}),
             lambda snap, ctx: _only(snap)["first_name"] == "Nomsa" or pytest.fail("name")),
    Scenario("upsert_update", _x_with({"phone": P1}),
             lambda ctx: ("POST", "/v1/contacts/upsert", {"phone": P1, "first_name": "Nomsa"}),
             lambda snap, ctx: _only(snap)["first_name"] == "Nomsa" or pytest.fail("name")),
    Scenario("upsert_move", _x_with({"phone": P1, "email": E1}),
             lambda ctx: ("POST", "/v1/contacts/upsert", {"email": E1, "phone": P2}),
             lambda snap, ctx: _phones(snap) == {ctx["x"]: P2} or pytest.fail(str(snap))),
    Scenario("upsert_by_external_id", _x_with({"phone": P1, "external_id": X1}),
             lambda ctx: ("POST", "/v1/contacts/upsert", {"external_id": X1, "phone": P2}),
             lambda snap, ctx: _phones(snap) == {ctx["x"]: P2} or pytest.fail(str(snap))),
    Scenario("upsert_attach_external_id", _x_with({"phone": P1}),
             lambda ctx: ("POST", "/v1/contacts/upsert", {"phone": P1, "external_id": X1}),
             lambda snap, ctx: _only(snap)["external_id"] == X1 or pytest.fail(str(snap))),
    Scenario("patch", _x_with({"phone": P1}),
             lambda ctx: ("PATCH", f"/v1/contacts/{ctx['x']}", {"first_name": "Nomsa"}),
             lambda snap, ctx: _only(snap)["first_name"] == "Nomsa" or pytest.fail("name")),
    Scenario("patch_identity", _x_with({"phone": P1, "email": E1}),
             lambda ctx: ("PATCH", f"/v1/contacts/{ctx['x']}", {"phone": P2, "email": None}),
             lambda snap, ctx: (_phones(snap) == {ctx["x"]: P2} and "email" not in _only(snap))
             or pytest.fail(str(snap))),
    Scenario("merge", _source_in_two_audiences,
             lambda ctx: ("POST", f"/v1/contacts/{ctx['x']}/merge", {"source_id": ctx["y"]}),
             _merged),
    Scenario("delete", _x_with({"phone": P1}, audience=True),
             lambda ctx: ("DELETE", f"/v1/contacts/{ctx['x']}", None),
             _deleted),
    Scenario("bulk_upsert", _x_with({"phone": P1, "email": E1}),
             lambda ctx: ("POST", "/v1/contacts/bulk", {"contacts": [
                 {"email": E1, "phone": P2}, {"phone": P1, "first_name": "Nomsa"},
                 {"email": E2}]}),
             _bulk_done),
    # a run on one contact: items 2 and 3 are upserted on the contact item 1 wrote (known,
    # not read again), so a crash may fall between any two of those writes
    Scenario("bulk_upsert_run", _x_with({"phone": P1}),
             lambda ctx: ("POST", "/v1/contacts/bulk", {"contacts": [
                 {"phone": P1, "first_name": "Amahle"}, {"phone": P1, "first_name": "Buhle"},
                 {"phone": P1, "first_name": "Nomsa"}, {"phone": P1, "last_name": "Dube"}]}),
             _run_done),
    Scenario("bulk_delete", _two_in_audience,
             lambda ctx: ("POST", "/v1/contacts/bulk-delete",
                          {"contact_ids": [ctx["x"], ctx["y"]]}),
             _deleted),
    Scenario("audience_create", lambda c: {},
             lambda ctx: ("POST", "/v1/audiences", {"name": "Donors"}),
             lambda snap, ctx: len(snap.audiences) == 1 or pytest.fail(str(snap.audiences))),
    Scenario("audience_add", _two_and_empty_audience,
             lambda ctx: ("POST", f"/v1/audiences/{ctx['aud']}/contacts",
                          {"contact_ids": [ctx["x"], ctx["y"]]}),
             lambda snap, ctx: _members(snap, ctx, {ctx["x"], ctx["y"]})),
    Scenario("audience_remove", _two_in_audience,
             lambda ctx: ("POST", f"/v1/audiences/{ctx['aud']}/contacts/remove",
                          {"contact_ids": [ctx["x"]]}),
             lambda snap, ctx: _members(snap, ctx, {ctx["y"]})),
    Scenario("audience_delete", _two_in_audience,
             lambda ctx: ("DELETE", f"/v1/audiences/{ctx['aud']}", None),
             lambda snap, ctx: (snap.audiences, snap.members, snap.name_guards) == ({}, set(), {})
             or pytest.fail(str(snap.audiences)),
             background=_finish_audience_delete),
    Scenario("audience_rename", lambda c: {"aud": c.audience()},
             lambda ctx: ("PATCH", f"/v1/audiences/{ctx['aud']}", {"name": "Patrons"}),
             lambda snap, ctx: set(snap.name_guards) == {"patrons"}
             or pytest.fail(str(snap.name_guards))),
]


def _acceptable(response: Response) -> bool:
    return response.status < 500 and (
        response.status != 409 or response.body.get("code") in CONFLICTS)


def _recorded_calls(api: Api, hooks: Hooks, org_id: str, scenario: Scenario) -> list[Call]:
    """The calls the request makes when nothing fails (and that it then succeeds)."""
    client = Client(api, f"{org_id}_rec")
    ctx = scenario.setup(client)
    hooks.clear()
    with hooks.acting("victim"):
        response = client(*scenario.request(ctx))
    calls = [c for c in hooks.calls if c.actor == "victim" or c.actor is None]
    hooks.clear()
    assert response.status < 300, response.body
    scenario.done(assert_consistent(client.org_id), ctx)
    return calls


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_a_crash_at_any_call_leaves_the_invariants_and_a_retry_finishes_the_request(
        api, hooks: Hooks, org_id, scenario: Scenario):
    # Given the calls the request makes when nothing fails
    calls = _recorded_calls(api, hooks, org_id, scenario)
    failures: list[str] = []
    for k, call in enumerate(calls, start=1):
        for when in ("before", "after"):
            where = f"crash {when} call {k} {call.label()}"
            client = Client(api, f"{org_id}_{k}{when[0]}")
            ctx = scenario.setup(client)
            # When the process dies at that point
            crash = hooks.add(Crash(k, when))  # type: ignore[arg-type]
            with contextlib.suppress(InjectedCrash):
                client(*scenario.request(ctx))
            hooks.rules.remove(crash)
            if crash.crashed_at is None:
                failures.append(f"{where}: never reached (the request made fewer calls)")
                continue
            # Then the invariants hold right away (a multi-step delete may be pending)
            problems = check(client.org_id).violations(allow_pending=True)
            if problems:
                failures.append(f"{where}: right after the crash: {problems}")
                continue
            # And a flagged multi-step delete is finished by its background step alone
            if scenario.background and check(client.org_id).pending:
                scenario.background(client.org_id, ctx)
                try:
                    scenario.done(assert_consistent(client.org_id), ctx)
                except (AssertionError, pytest.fail.Exception) as err:
                    failures.append(f"{where}: after the background step: {err}")
                continue
            # Or the client's retry answers without a 5xx and finishes the request
            retry = client(*scenario.request(ctx))
            if not _acceptable(retry):
                failures.append(f"{where}: retry answered {retry.status} {retry.body}")
                continue
            try:
                scenario.done(assert_consistent(client.org_id), ctx)
            except (AssertionError, pytest.fail.Exception) as err:
                failures.append(f"{where}: after the retry: {err}")
    assert not failures, f"{len(failures)} of {2 * len(calls)} crash points failed:\n" + \
        "\n".join(failures)


# ------------------------------------------------------ contention beyond the retry budget
# Every scenario writes in a transaction: "patch" and "upsert_update" change a name, so
# their name words move with the contact (SPEC §9.3).
@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_endless_contention_answers_409_concurrent_modification_and_writes_nothing(
        api, hooks: Hooks, org_id, scenario: Scenario):
    # Given the world of the request
    client = Client(api, org_id)
    ctx = scenario.setup(client)
    before = check(org_id).snapshot
    assert before is not None
    # When every transaction it tries is cancelled by a (simulated) concurrent one
    hooks.add(Cancel())
    response = client(*scenario.request(ctx))
    hooks.rules.clear()
    after = assert_consistent(org_id, allow_pending=scenario.background is not None)
    # Then it answers 409 concurrent_modification with Retry-After and writes nothing;
    # bulk requests answer 200 with the retryable failures per item
    if scenario.name.startswith("bulk_upsert"):
        assert response.status == 200, response.body
        results = response.body["results"]
        assert {r["error"]["code"] for r in results if r["error"]} == {"concurrent_modification"}
        for result in results:  # what it reports as written is what is stored
            if result["status"] in ("created", "updated"):
                assert after.contacts[result["id"]]["version"] == result["contact"]["version"]
    elif scenario.name == "bulk_delete":
        assert response.status == 200, response.body
        assert response.body["deleted"] == 0
        assert {f["error"]["code"] for f in response.body["failed"]} == {
            "concurrent_modification"}
        assert after == before
    elif scenario.background is not None:
        # the request only flags; the background step does the transactions later
        assert response.status in (202, 204), response.body
        scenario.background(org_id, ctx)
        scenario.done(assert_consistent(org_id), ctx)
    else:
        assert response.status == 409, response.body
        assert response.body["code"] == "concurrent_modification"
        assert int(response.headers["Retry-After"]) >= 1
        assert after == before


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_a_throttled_store_answers_503_with_retry_after_and_changes_nothing(
        api, hooks: Hooks, org_id, scenario: Scenario):
    # Given the world of the request
    client = Client(api, org_id)
    ctx = scenario.setup(client)
    before = check(org_id).snapshot
    # When DynamoDB throttles every call the request makes (the SDK's retries used up)
    throttle = hooks.add(Throttle())
    response = client(*scenario.request(ctx))
    hooks.rules.clear()
    # Then nothing changed, and the request is answered as one to retry, not as a fault
    assert throttle.refused > 0
    assert assert_consistent(org_id, allow_pending=scenario.background is not None) == before
    if scenario.name.startswith("bulk_"):  # bulk reads first: refused there, or per item
        assert response.status in (200, 503), response.body
        if response.status == 200:
            body = response.body
            assert body.get("created", 0) == body.get("deleted", 0) == 0, body
            return
    assert response.status == 503, response.body
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.body["code"] == "service_unavailable"
    assert response.body["retryable"] is True
    assert int(response.headers["Retry-After"]) >= 1


def test_a_bulk_upsert_that_committed_part_never_answers_5xx_when_the_rest_keeps_conflicting(
        api, hooks: Hooks, org_id):
    # Given 52 new contacts: 104 actions, so a transaction of 100 and a small one
    client = Client(api, org_id)
    items = [{"phone": f"+2782100{i:04d}"} for i in range(52)]
    # When the big transaction commits and every other one is cancelled (bug 4)
    cancel = hooks.add(Cancel(let_through=1, min_actions=100))
    response = client("POST", "/v1/contacts/bulk", {"contacts": items})
    hooks.rules.clear()
    # Then it answers 200: the committed items created, the others failed as retryable
    assert response.status == 200, response.body
    assert cancel.cancelled > 0
    body = response.body
    assert body["created"] == 50 and body["failed"] == 2
    failed = [r for r in body["results"] if r["status"] == "failed"]
    assert {r["error"]["code"] for r in failed} == {"concurrent_modification"}
    # And exactly the reported contacts exist
    snap = assert_consistent(org_id)
    created = {r["id"] for r in body["results"] if r["status"] == "created"}
    assert set(snap.contacts) == created
