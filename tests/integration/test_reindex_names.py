"""Letters NFKD keeps whole (ø, ł, đ, æ, ı…) fold to their base letters for name search and
``sort=name`` (SPEC §9.3: accent-insensitive), and contacts an earlier version indexed
without them are re-indexed by ``contacts-reindex-names`` or healed by a write — against
DynamoDB Local, with the invariant checker, a concurrent write and a crash."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

from contacts_core import names
from contacts_core.contacts.reindex import reindex_names
from contacts_core.contacts.store import ContactStore
from devstack import reindex_names as reindex_cli
from tests.support.hooks import (  # noqa: F401 - hooks_fixture
    Background,
    Call,
    Crash,
    InjectedCrash,
    Pause,
    hooks_fixture,
)
from tests.support.invariants import assert_consistent, check

NORDIC = {"first_name": "Søren", "last_name": "Kierkegaard", "email": "soren@example.com"}
POLISH = {"first_name": "Łukasz", "last_name": "Đorđević", "email": "lukasz@example.com"}


@contextlib.contextmanager
def earlier_version(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Writes inside fold names as versions before ``search_fold`` did (NFKD only)."""
    with monkeypatch.context() as patch:
        patch.setattr(names, "search_fold", names.fold)
        yield


class PauseFor(Pause):
    """:class:`Pause` of a call about one contact (the job scans every org's contacts)."""

    def __init__(self, contact_id: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.contact_id = contact_id

    def matches(self, call: Call) -> bool:
        return super().matches(call) and self.contact_id in str(call.params)


def found(call: Any, term: str) -> list[str]:
    page = call("GET", "/v1/contacts", query={"search": term})
    assert page.status == 200, page.body
    return [c["id"] for c in page.body["data"]]


def by_name(call: Any) -> list[str]:
    page = call("GET", "/v1/contacts", query={"sort": "name", "order": "asc", "limit": "100"})
    assert page.status == 200, page.body
    return [c["name"] for c in page.body["data"]]


def test_invisible_characters_in_a_name_neither_split_nor_hide_its_words(call, org_id):
    # Given names pasted with a zero-width space, a soft hyphen and a bidirectional mark
    ahmed = call.create({"first_name": "Ah\u200bmed", "last_name": "Has\u00adsan",
                         "email": "ahmed@example.com"})
    rtl = call.create({"name": "\u200fNour\u200e Ali", "email": "nour@example.com"})
    # Then each is found by the words a user types (and by its own spelling)
    assert found(call, "ahmed") == found(call, "hassan") == [ahmed["id"]]
    assert found(call, "Ah\u200bme") == [ahmed["id"]]
    assert found(call, "nour al") == [rtl["id"]]
    # And the names are kept as sent, and sort as they read
    assert call("GET", f"/v1/contacts/{ahmed['id']}").body["first_name"] == "Ah\u200bmed"
    call.create({"first_name": "Ahab", "email": "ahab@example.com"})
    assert by_name(call) == ["Ahab", "Ah\u200bmed Has\u00adsan", "\u200fNour\u200e Ali"]
    assert_consistent(org_id)


def test_letters_nfkd_keeps_whole_are_searched_by_their_base_letters(call, org_id):
    # Given Søren, Łukasz Đorđević, Æsa Kırık and Þóra, written by this version
    soren, lukasz = call.create(NORDIC), call.create(POLISH)
    aesa = call.create({"first_name": "Æsa", "last_name": "Kırık", "phone": "+4791234567"})
    thora = call.create({"name": "Þóra Œuvre", "email": "thora@example.com"})
    # Then each is found by the letters a user types, and by the original spelling
    assert found(call, "soren") == found(call, "SØR kier") == [soren["id"]]
    assert found(call, "lukasz dorde") == found(call, "łuk đor") == [lukasz["id"]]
    assert found(call, "aesa kirik") == found(call, "æs") == [aesa["id"]]
    assert found(call, "thora oeuvre") == [thora["id"]]
    # And name order reads them as search folds them: "Łukasz" among the l's
    call.create({"first_name": "Lars", "email": "lars@example.com"})
    call.create({"first_name": "Mia", "email": "mia@example.com"})
    assert by_name(call) == ["Æsa Kırık", "Lars", "Łukasz Đorđević", "Mia",
                             "Søren Kierkegaard", "Þóra Œuvre"]
    assert_consistent(org_id)


def test_the_job_reindexes_what_an_earlier_version_indexed(call, org_id, monkeypatch):
    # Given contacts an earlier version wrote: Søren and Łukasz (indexed as "søren",
    # "łukasz"), and Zoë and Lars, whom both versions index alike
    with earlier_version(monkeypatch):
        soren, lukasz = call.create(NORDIC), call.create(POLISH)
        zoe = call.create({"first_name": "Zoë", "email": "zoe@example.com"})
        call.create({"first_name": "Lars", "email": "lars@example.com"})
    before = {c["id"]: c for c in walk_all(call)}
    assert found(call, "soren") == [] and by_name(call)[-1] == "Łukasz Đorđević"
    assert check(org_id).words  # the earlier spellings, as this version sees them
    # When the job runs
    report = reindex_names(org_id=org_id)
    # Then both are found and ordered as this version folds them, nothing else changed
    assert report.reindexed == 2 and not report.left
    assert found(call, "soren") == found(call, "søren") == [soren["id"]]
    assert found(call, "lukasz") == found(call, "Łuk") == [lukasz["id"]]
    assert found(call, "zoe") == [zoe["id"]]
    assert by_name(call) == ["Lars", "Łukasz Đorđević", "Søren Kierkegaard", "Zoë"]
    assert {c["id"]: c for c in walk_all(call)} == before  # no version, no updated_at moved
    assert_consistent(org_id)
    # And a second run finds nothing left to do; with everything, it rewrites all four alike
    assert reindex_names(org_id=org_id).reindexed == 0
    assert reindex_names(everything=True, org_id=org_id).reindexed == 4
    assert {c["id"]: c for c in walk_all(call)} == before
    assert_consistent(org_id)


def walk_all(call: Any) -> list[dict[str, Any]]:
    page = call("GET", "/v1/contacts", query={"limit": "100"})
    assert page.status == 200 and page.body["next_cursor"] is None, page.body
    return list(page.body["data"])


def test_a_write_that_reads_the_contact_heals_its_words(call, org_id, monkeypatch):
    # Given Søren as an earlier version indexed him
    with earlier_version(monkeypatch):
        soren = call.create(NORDIC)
    # When his email changes (a write that reads him and moves a guard)
    changed = call("PATCH", f"/v1/contacts/{soren['id']}", {"email": "s.k@example.com"})
    assert changed.status == 200, changed.body
    # Then his words are this version's: found either way, no earlier spelling left
    assert found(call, "soren") == found(call, "søren") == [soren["id"]]
    assert not [w for w in check(org_id).words if "name word" in w]


def test_a_write_during_the_job_wins_and_the_job_indexes_what_it_wrote(call, org_id,
                                                                          monkeypatch, hooks):
    # Given Søren as an earlier version indexed him
    with earlier_version(monkeypatch):
        soren = call.create(NORDIC)
    # When the job has read him and, before it writes, his name changes to Ørjan
    pause = hooks.add(PauseFor(soren["id"], "TransactWriteItems", when="before", actor="job"))
    job = Background(lambda: reindex_names(org_id=org_id, store=ContactStore()), "job", hooks)
    assert pause.reached.wait(30)
    renamed = call("PATCH", f"/v1/contacts/{soren['id']}", {"first_name": "Ørjan"})
    assert renamed.status == 200, renamed.body
    pause.release.set()
    report = job.result()
    # Then its transaction failed on the version, it read him again, and what it wrote
    # matches his new name: found as Ørjan, not as Søren, every invariant holds
    assert report.retried >= 1 and not report.left
    assert found(call, "orjan") == [soren["id"]] and found(call, "soren") == []
    assert_consistent(org_id)


def test_a_crash_mid_job_leaves_contacts_as_they_were_or_reindexed(call, org_id,
                                                                    monkeypatch, hooks):
    # Given Søren and Łukasz as an earlier version indexed them
    with earlier_version(monkeypatch):
        call.create(NORDIC)
        call.create(POLISH)
    # When the job dies right after its first transaction
    hooks.add(Crash(1, "after", "TransactWriteItems", actor="job"))
    with hooks.acting("job"), pytest.raises(InjectedCrash):
        reindex_names(org_id=org_id, store=ContactStore())
    # Then each contact is whole, one way or the other; running it again finishes the job
    assert reindex_names(org_id=org_id).reindexed == 1
    assert_consistent(org_id)


def test_the_command_reindexes_the_tables_it_is_given(call, org_id, monkeypatch, capsys):
    # Given Søren as an earlier version indexed him
    with earlier_version(monkeypatch):
        soren = call.create(NORDIC)
    # When an operator runs the command with the tables set (as for a deployed stack)
    assert reindex_cli.main(["--org", org_id]) == 0
    # Then he is found, and it says what it did
    assert found(call, "soren") == [soren["id"]]
    assert "re-indexed" in capsys.readouterr().out
    # And with only some of the tables set it refuses to guess
    monkeypatch.delenv("NAME_WORDS_TABLE")
    with pytest.raises(SystemExit) as refused:
        reindex_cli.main(["--org", org_id])
    assert refused.value.code == 2


def test_a_contact_this_version_indexed_costs_no_extra_word_write(call, org_id):
    # Given Søren, written (and indexed) by this version
    soren = call.create(NORDIC)
    store = ContactStore()
    before = store.get(org_id, soren["id"])
    assert before is not None
    # When a write that keeps his names is planned (a new email)
    after = before.model_copy(update={"email": "s.k@example.com", "version": before.version + 1})
    # Then it moves no name word: only a contact an earlier version indexed is healed
    assert store.word_actions(before, after) == []
