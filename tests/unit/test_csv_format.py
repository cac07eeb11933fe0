"""CSV rows ↔ contacts: every field survives, quoting included."""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contacts_core.contacts.csv_format import (
    COLUMNS,
    contact_row,
    neutralise,
    restore,
    row_fields,
    upsert_body,
    write_rows,
)
from contacts_core.contacts.models import Contact


def test_row_round_trips_to_an_upsert_body():
    contact = Contact.model_validate({
        "id": "con_1", "first_name": "Zoë", "last_name": None, "name": "Zoë, \"Z\"",
        "phone": "+27821234567", "email": None, "external_id": "=HYPERLINK(1)",
        "country_code": "ZA", "language": "en-ZA", "tags": ["a;b", "c"],
        "attributes": {"n": 1.5, "t": True, "s": "x\ny"},
        "channels": {"has_whatsapp": True, "has_sms": True, "has_voice": True,
                     "has_email": False},
        "consent": {"whatsapp": "opted_in", "sms": "unknown", "email": "unknown",
                    "voice": "opted_out"},
        "suppressed": True, "source": "api", "version": 2,
        "created_at": "2026-05-22T10:30:00.000Z", "updated_at": "2026-05-22T10:30:00.000Z"})
    text = write_rows([contact_row(contact)], header=True)
    (row,) = list(csv.DictReader(io.StringIO(text)))
    assert list(row) == COLUMNS
    body = upsert_body(row)
    assert body == {"first_name": "Zoë", "name": "Zoë, \"Z\"", "phone": "+27821234567",
                    "external_id": "=HYPERLINK(1)", "country_code": "ZA", "language": "en-ZA",
                    "tags": ["a;b", "c"],
                    "attributes": {"n": 1.5, "t": True, "s": "x\ny"},
                    "consent": {"whatsapp": "opted_in", "sms": "unknown", "email": "unknown",
                                "voice": "opted_out"},
                    "suppressed": True, "source": "api"}


def test_hand_written_tags_may_be_semicolon_separated():
    assert upsert_body({"email": "a@b.co", "tags": "vip; gold ;"})["tags"] == ["vip", "gold"]


# --- spreadsheet formulas (OWASP "CSV injection", SPEC §9.1) -----------------------------

TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
# Text that leans on the interesting prefixes: triggers, quotes, and anything else.
cells = st.lists(st.sampled_from([*TRIGGERS, "'", "''", "a", " ", "\n", '"', ","])
                 | st.text(max_size=5), max_size=6).map("".join) | st.text()


@given(cells)
def test_neutralise_then_restore_is_the_identity_and_never_leaves_a_trigger(cell):
    written = neutralise(cell)
    assert restore(written) == cell
    assert not written.startswith(TRIGGERS)


@given(st.lists(st.lists(cells, min_size=3, max_size=3), min_size=1, max_size=5))
def test_written_csv_has_no_formula_cell_and_reads_back_every_value(rows):
    text = write_rows(rows, header=False)
    read = list(csv.reader(io.StringIO(text, newline="")))
    assert all(not cell.startswith(TRIGGERS) for row in read for cell in row)
    assert [[restore(cell) for cell in row] for row in read] == rows


@pytest.mark.parametrize(("value", "written"), [
    ("=1+2", "'=1+2"), ("+27821234567", "'+27821234567"), ("-5", "'-5"), ("@SUM(A1)", "'@SUM(A1)"),
    ("\t=x", "'\t=x"), ("\rx", "'\rx"), ("'=1+2", "''=1+2"), ("''", "'''"), ("'Tis", "'Tis"),
    ("'", "'"), ("plain", "plain"), ("", ""), ("a=b", "a=b"),
])
def test_neutralised_cells(value, written):
    assert neutralise(value) == written
    assert restore(written) == value


def test_formula_cells_are_neutralised_on_export_and_restored_on_import():
    # Given a contact whose texts look like formulas, and an E.164 phone
    contact = Contact.model_validate({
        "id": "con_1", "first_name": "=HYPERLINK(\"http://x\")", "last_name": "'=quoted",
        "name": "@SUM(1+1)", "phone": "+27821234567", "email": None, "external_id": None,
        "country_code": "ZA",
        "language": None, "tags": ["=cmd"], "attributes": {"f": "-1"},
        "channels": {"has_whatsapp": True, "has_sms": True, "has_voice": True,
                     "has_email": False},
        "consent": {"whatsapp": "unknown", "sms": "unknown", "email": "unknown",
                    "voice": "unknown"},
        "suppressed": False, "source": "api", "version": 1,
        "created_at": "2026-05-22T10:30:00.000Z", "updated_at": "2026-05-22T10:30:00.000Z"})
    # When it is written as CSV
    text = write_rows([contact_row(contact)], header=True)
    (row,) = list(csv.DictReader(io.StringIO(text, newline="")))
    # Then no cell starts a formula — the phone column is neutralised too
    assert (row["first_name"], row["last_name"], row["name"], row["phone"]) == (
        "'=HYPERLINK(\"http://x\")", "''=quoted", "'@SUM(1+1)", "'+27821234567")
    # And the importer reads back every value
    body = upsert_body(row)
    assert (body["first_name"], body["last_name"], body["name"], body["phone"]) == (
        "=HYPERLINK(\"http://x\")", "'=quoted", "@SUM(1+1)", "+27821234567")
    assert (body["tags"], body["attributes"]) == (["=cmd"], {"f": "-1"})


def test_hand_written_cells_keep_a_quote_that_escapes_nothing():
    assert upsert_body({"email": "a@b.co", "name": "'Tis", "first_name": "'+1"}) == {
        "email": "a@b.co", "name": "'Tis", "first_name": "+1"}


@pytest.mark.parametrize(("column", "cell"), [
    ("tags", '["vip",'), ("attributes", "{tier: gold}"), ("attributes", "[1"),
    ("suppressed", "yes"),
    # what a bulk item may not hold either: too deep (also for the parser itself), a
    # member named twice
    ("tags", "[" * 40 + "]" * 40), ("tags", "[" * 60_000),
    ("attributes", '{"a": ' + "[" * 60_000), ("attributes", '{"a": 1, "a": 2}')],
    ids=lambda v: v[:24])
def test_a_cell_that_cannot_be_read_is_named_in_the_rows_error(column, cell):
    # Given a row whose tags, attributes or suppressed cell is not what the column takes
    # When it becomes an upsert body
    with pytest.raises(ValueError) as refused:
        upsert_body({"phone": "+27821234567", column: cell})
    # Then the reason (a line of the import's errors CSV) starts with the column's name
    # (and the path inside the cell, when there is one: attributes.a)
    assert str(refused.value).partition(": ")[0].split(".")[0] == column, refused.value


def test_text_under_a_column_the_header_leaves_unnamed_fails_the_row_naming_the_cell():
    # Given a header with an unnamed second column
    columns = ["phone", "", "first_name"]
    # When a row has text under it, Then the row fails naming that cell and column
    with pytest.raises(ValueError) as err:
        row_fields(columns, ["+27821234567", "zz", "Sam"])
    assert "cell 2 ('zz') has no column" in str(err.value)
    assert "column 2 unnamed" in str(err.value)
    # … while an empty cell there, or past the header, is no loss and is ignored
    assert upsert_body(row_fields(columns, ["+27821234567", " ", "Sam", ""])) == {
        "phone": "+27821234567", "first_name": "Sam"}
