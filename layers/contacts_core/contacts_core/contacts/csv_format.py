"""The CSV form of contacts, shared by export (``GET /v1/contacts/export``) and the importer.

Columns, in order: ``id, first_name, last_name, name, phone, email, external_id,
country_code, language, tags, attributes, consent_whatsapp, consent_sms, consent_email,
consent_voice, suppressed, source, created_at, updated_at``. ``tags`` is a JSON array and
``attributes`` a JSON object (so any value round-trips); ``suppressed`` is
``true``/``false``; empty cells are empty. RFC 4180 quoting, UTF-8, a header row.

On import, ``id``, ``created_at`` and ``updated_at`` are ignored (contacts are matched by
external_id, phone and email as upsert does), ``country_code`` is the parsing hint for
national-format phones, ``tags`` may also be ``a;b;c``, and empty cells are left out.

Spreadsheet formulas (OWASP "CSV injection"): a cell whose text begins with ``=``, ``+``,
``-``, ``@``, TAB or CR is written with a single quote ``'`` in front, so a spreadsheet shows
it as text instead of running it. That includes every E.164 phone (``'+27821234567``): the
rule is the same for every column, and it also keeps spreadsheets from turning phones into
numbers. So that the escape can always be undone, a cell that already begins with ``'``
followed by one of those characters or by another ``'`` gets a ``'`` in front too. The
importer removes one leading ``'`` exactly when it is followed by ``=``, ``+``, ``-``,
``@``, TAB, CR or ``'``, which restores every exported value, and leaves cells such as
``'Tis`` alone (see :func:`neutralise` and :func:`restore`).
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from contacts_core.contacts.models import Contact
from contacts_core.contacts.output import CHANNELS
from contacts_core.http.json_body import TooDeep, json_problem, parse_json

COLUMNS = ["id", "first_name", "last_name", "name", "phone", "email", "external_id",
           "country_code",
           "language", "tags", "attributes", *[f"consent_{c}" for c in CHANNELS],
           "suppressed", "source", "created_at", "updated_at"]
_IGNORED_ON_IMPORT = {"id", "created_at", "updated_at"}
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_ESCAPED = (*FORMULA_TRIGGERS, "'")


# Python's csv errors (strict mode) → what the file's author can fix.
_CSV_ERRORS = (
    ("unexpected end of data", "a quoted cell is never closed (its closing \" is missing, so "
                               "every later line would be read into that one cell)"),
    ("expected after", "text after a closing quote (a \" inside a quoted cell is written "
                       "twice: \"\")"),
    ("new-line character seen in unquoted field",
     "a line ends in a carriage return alone (classic Mac line endings): save the file "
     "with LF or CRLF line endings"),
    ("field larger than field limit", "a cell is over 65,536 characters (a contact holds "
                                      "16 KB at most)"),
)


def csv_error_reason(err: Exception) -> str:
    """What a :class:`csv.Error` (from a reader with ``strict=True``) means for the file,
    in words its author can act on; the parser's own message when it is not a known one.

    Both importers read strictly (RFC 4180: a quote that opens a cell closes it, and
    only a delimiter or line end follows), so a file is refused where a lenient reader
    would silently read something else: a missing closing quote would swallow every
    later row into one cell."""
    message = str(err)
    return next((reason for known, reason in _CSV_ERRORS if known in message), message)


def repeated_column(columns: list[str]) -> str | None:
    """The first column name the header gives twice (names compared trimmed; unnamed
    columns are not compared), or None. A file naming ``phone`` twice cannot say which cell
    is the phone, so the importers refuse the file instead of silently taking one."""
    seen: set[str] = set()
    for column in (c.strip() for c in columns):
        if column in seen:
            return column
        if column:
            seen.add(column)
    return None


def header_refusal(cells: list[str], undecodable: bool = False) -> str | None:
    """Why a file whose first row is ``cells`` cannot be imported, or None. Both importers
    (the job and ``contacts-import``) refuse, before any row: a first line that is not
    UTF-8 or names none of :data:`COLUMNS` (an image, a spreadsheet, another CSV), and a
    header naming a column twice (:func:`repeated_column`)."""
    columns = [c.strip() for c in cells]
    if undecodable or not set(columns) & set(COLUMNS):
        seen = "not UTF-8" if undecodable else "names " + ", ".join(columns[:5])[:200]
        return (f"the first line ({seen}) is not a CSV header naming the export's columns "
                "(UTF-8, lower case, e.g. phone,email,first_name): is this the right file?")
    twice = repeated_column(columns)
    if twice is not None:
        return f"the header names the column {twice[:100]!r} twice: which cell holds it?"
    return None


def row_fields(columns: list[str], cells: list[str]) -> dict[str, str]:
    """One CSV row keyed by the header's ``columns``. A row with fewer cells than the
    header leaves its last columns empty (spreadsheets drop trailing empty cells), and
    empty cells past the header or under an unnamed column are ignored (``a,b,,``), but a
    row with text in a cell that no column names — past the last column, or under one
    the header leaves empty (``phone,,email``) — fails: RFC 4180 rows all have the
    header's number of fields, and nothing says what that cell is, so importing the rest
    would lose it silently.

    Raises:
        ValueError: a cell no column names holds text (the message says which).
    """
    orphan = next((n for n, cell in enumerate(cells) if cell.strip()
                   and (n >= len(columns) or not columns[n].strip())), None)
    if orphan is not None:
        shown = f"cell {orphan + 1} ({cells[orphan].strip()[:40]!r}) has no column"
        if orphan >= len(columns):
            raise ValueError(f"the row has {len(cells)} cells but the header names "
                             f"{len(columns)} columns: {shown}")
        raise ValueError(f"{shown}: the header leaves column {orphan + 1} unnamed")
    return dict(zip(columns, cells, strict=False))


def neutralise(cell: str) -> str:
    """``cell`` as written to CSV: ``'`` in front when it begins with a formula trigger, or
    with ``'`` followed by a trigger or ``'`` (so that :func:`restore` undoes it exactly)."""
    if cell.startswith(FORMULA_TRIGGERS) or (cell.startswith("'")
                                             and cell[1:].startswith(_ESCAPED)):
        return "'" + cell
    return cell


def restore(cell: str) -> str:
    """The value of a CSV cell written by :func:`neutralise` (one escaping ``'`` removed)."""
    return cell[1:] if cell.startswith("'") and cell[1:].startswith(_ESCAPED) else cell


def contact_row(contact: Contact) -> list[str]:
    """One CSV row for ``contact``, in :data:`COLUMNS` order."""
    data = contact.model_dump()
    row = []
    for column in COLUMNS:
        if column == "tags":
            row.append(json.dumps(contact.tags, ensure_ascii=False))
        elif column == "attributes":
            row.append(json.dumps(contact.attributes, ensure_ascii=False, sort_keys=True))
        elif column.startswith("consent_"):
            row.append(data["consent"][column.removeprefix("consent_")])
        elif column == "suppressed":
            row.append("true" if contact.suppressed else "false")
        else:
            value = data[column]
            row.append("" if value is None else str(value))
    return row


def write_rows(rows: list[list[str]], header: bool) -> str:
    """Rows as CSV text (with the header row first when ``header``), every cell
    :func:`neutralise`-d."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    if header:
        writer.writerow(COLUMNS)
    writer.writerows([neutralise(cell) for cell in row] for row in rows)
    return buffer.getvalue()


def _json_cell(column: str, value: str, expected: str) -> Any:
    """The JSON in a ``tags``/``attributes`` cell, read as a request body is
    (:mod:`contacts_core.http.json_body`: I-JSON, at most 32 levels deep), so a row fails
    where the same item would fail in a bulk upsert.

    Raises:
        ValueError: not JSON, nested too deep (also too deep for the parser itself), a
            member named twice or an unpaired surrogate; the message names the column
            (and the path inside the cell) and says what is wrong.
    """
    try:
        data = parse_json(value)
    except TooDeep as err:
        raise ValueError(f"{column}: {err}") from err
    except ValueError as err:
        raise ValueError(f"{column}: expected {expected} ({err})") from err
    problem = json_problem(data)
    if problem is not None:
        where = column if problem.field == "body" else f"{column}.{problem.field}"
        raise ValueError(f"{where}: {problem.message}")
    return data


def column_of(field: str) -> str:
    """The CSV column an API field path comes from, for an importer's errors file:
    ``consent.sms`` → ``consent_sms``; other paths start with their column already
    (``phone``, ``tags.0``, ``attributes.tier``) and stay as they are."""
    head, _, rest = field.partition(".")
    if head == "consent" and rest:
        channel, _, deeper = rest.partition(".")
        return f"consent_{channel}" + (f".{deeper}" if deeper else "")
    return field


def upsert_body(row: dict[str, str]) -> dict[str, Any]:
    """An upsert body from one CSV row (keyed by header); unknown columns are kept so the
    API names them in its error. Cells are :func:`restore`-d after trimming.

    Raises:
        ValueError: ``tags``, ``attributes`` or ``suppressed`` cannot be read (the message
            starts with the column's name).
    """
    body: dict[str, Any] = {}
    consent: dict[str, str] = {}
    for column, raw in row.items():
        value = restore((raw or "").strip())
        if column in _IGNORED_ON_IMPORT or not value or column is None:
            continue
        if column == "tags":
            body["tags"] = _json_cell(column, value, "a JSON array or a;b;c") \
                if value.startswith("[") else [t.strip() for t in value.split(";") if t.strip()]
        elif column == "attributes":
            body["attributes"] = _json_cell(column, value, "a JSON object")
        elif column.startswith("consent_"):
            consent[column.removeprefix("consent_")] = value
        elif column == "suppressed":
            if value.lower() not in ("true", "false"):
                raise ValueError("suppressed: must be true or false")
            body["suppressed"] = value.lower() == "true"
        else:
            body[column] = value
    if consent:
        body["consent"] = consent
    return body
