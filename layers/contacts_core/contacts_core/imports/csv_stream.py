"""CSV records read from a byte stream, each with the byte offset just after it.

An import reads its file as a stream (never whole in memory) and must be able to stop
after any row and continue later from that point with an S3 ranged GET, so every record
comes with the offset where the next one starts and the physical line it began on.

The bytes are cut into lines at ``\\n`` (so a ``\\r\\n`` file works, and a quoted cell may
hold line breaks: :mod:`csv` joins the lines of a record itself), each line decoded as
UTF-8 on its own (a ``\\n`` byte never falls inside a UTF-8 sequence). :mod:`csv` pulls a
line only when it needs one and yields a record as soon as it is complete, so the bytes
handed to it when it yields are exactly those up to the end of that record. A UTF-8 byte
order mark at the start of the file is skipped. Parsing is strict (RFC 4180; see
:func:`contacts_core.contacts.csv_format.csv_error_reason`). A line that is not valid
UTF-8 marks its
record ``undecodable`` (the import reports that row, with its line, as failed). Records
with no cell, or only empty cells (blank lines), are not rows.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from contacts_core.contacts.csv_format import csv_error_reason, header_refusal

BOM = b"\xef\xbb\xbf"
# Byte order marks of the encodings a spreadsheet's "Unicode text" export writes (Excel:
# UTF-16 LE), longest first (UTF-32 LE begins like UTF-16 LE): such a file is refused at
# its first line, naming its encoding, rather than read as UTF-8 into misleading errors
# (its "\r\0\n\0" line ends look like lone carriage returns to a UTF-8 reader).
OTHER_UNICODE_BOMS = ((b"\xff\xfe\x00\x00", "UTF-32"), (b"\x00\x00\xfe\xff", "UTF-32"),
                      (b"\xff\xfe", "UTF-16"), (b"\xfe\xff", "UTF-16"))
FIELD_LIMIT = 64 * 1024  # chars in one cell; a contact is ≤ 16 KB (SPEC §7)
MAX_LINE_BYTES = 1024 * 1024  # a longer line is not a contact row: the file is refused
NOT_UTF8 = "the row is not valid UTF-8"  # why an ``undecodable`` record's row failed


@dataclass(frozen=True)
class Record:
    """One CSV record: its ``cells``, the physical ``line`` it starts on (1 = first line of
    the file), ``end``: the byte offset just after it, ``end_line``: the physical lines up
    to its end, ``undecodable``: some of its bytes were not UTF-8 (the cells then hold
    replacement characters)."""

    cells: list[str]
    line: int
    end: int
    end_line: int
    undecodable: bool = False

    @property
    def blank(self) -> bool:
        """True for a record with no text in any cell (a blank line)."""
        return not any(cell.strip() for cell in self.cells)


def refused_header(header: Record | None) -> str | None:
    """Why a file whose first non-blank record is ``header`` (None: it has none) cannot be
    imported, or None — the rule both importers (the job and ``contacts-import``) apply
    before any row (:func:`contacts_core.contacts.csv_format.header_refusal`)."""
    if header is None:
        return "the file is empty: it needs a header row naming its columns"
    return header_refusal(header.cells, header.undecodable)


class MalformedCsv(ValueError):
    """The file cannot be read as CSV from ``line`` on (e.g. a cell over the field limit)."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}")
        self.line = line


def _refuse_other_encodings(first_line: bytes) -> None:
    """Raise :class:`MalformedCsv` (line 1) for a file in UTF-16 or UTF-32: a byte order
    mark of either, or a first line whose every other byte is NUL (ASCII text in UTF-16
    without a mark)."""
    marked = [name for mark, name in OTHER_UNICODE_BOMS if first_line.startswith(mark)]
    text = first_line.removesuffix(b"\n")
    if marked:
        encoding = marked[0]
    elif len(text) >= 4 and not (any(text[0::2]) and any(text[1::2])):
        encoding = "UTF-16"
    else:
        return
    raise MalformedCsv(1, f"the file is {encoding}, not UTF-8: save it as \"CSV UTF-8\" "
                          "(comma delimited)")


class CsvRecords:
    """The records of ``chunks`` (the bytes of a file from byte ``offset``, which is on
    line ``line + 1``): iterate to get :class:`Record` objects in file order."""

    def __init__(self, chunks: Iterable[bytes], offset: int = 0, line: int = 0) -> None:
        self._chunks = chunks
        self._consumed = offset
        self._line = line
        self._at_start = offset == 0
        self._undecodable = False

    def _lines(self) -> Iterator[str]:
        rest = b""
        for chunk in self._chunks:
            if not chunk:
                continue
            parts = (rest + chunk).split(b"\n")
            rest = parts.pop()
            if len(rest) > MAX_LINE_BYTES:
                raise MalformedCsv(self._line + 1, f"a line is over {MAX_LINE_BYTES} bytes")
            for part in parts:
                yield self._take(part + b"\n")
        if rest:
            yield self._take(rest)

    def _take(self, raw: bytes) -> str:
        self._consumed += len(raw)
        self._line += 1
        if self._at_start:
            self._at_start = False
            raw = raw.removeprefix(BOM)
            _refuse_other_encodings(raw)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            self._undecodable = True
            return raw.decode("utf-8", errors="replace")

    def __iter__(self) -> Iterator[Record]:
        csv.field_size_limit(FIELD_LIMIT)
        reader = csv.reader(self._lines(), strict=True)
        start = self._line + 1
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as err:
                raise MalformedCsv(start, csv_error_reason(err)) from err
            yield Record(cells, start, self._consumed, self._line, self._undecodable)
            self._undecodable = False
            start = self._line + 1
