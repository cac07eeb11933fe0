"""CSV export of an org's contacts (``GET /v1/contacts/export``), in parts under Lambda's
response limit, each part pointing at the next with a cursor.

Lambda caps a synchronous response at 6 MB (6,291,456 bytes) *as serialized*: the CSV is
the ``body`` string of the proxy response, so it counts JSON-escaped — a ``"`` or ``\\``
takes two bytes, a control character six, a non-ASCII character six (twelve outside the
BMP) when the runtime escapes to ASCII. Each part is therefore sized by
``len(json.dumps(text))`` (the largest of those encodings) and holds rows while that stays
within :data:`EXPORT_BUDGET`, which leaves :data:`HEADROOM` for the status, the headers and
the ``Link`` with its cursor. A part holds at least one contact, and one contact (at most
16 KB as sent) encodes to far less than the budget.
"""

from __future__ import annotations

from pydantic import ConfigDict

from contacts_core.base_model import Model
from contacts_core.contacts.csv_format import contact_row, write_rows
from contacts_core.contacts.models import Contact, ContactItem
from contacts_core.contacts.store import ContactStore, Walk
from contacts_core.http.cursor import decode_cursor, encode_cursor
from contacts_core.http.paging import Cursor
from contacts_core.http.responses import RESPONSE_BUDGET, encoded_size


class ExportQuery(Model):
    """Query of ``GET /v1/contacts/export``: only the ``cursor`` of the next part."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cursor: Cursor | None = None


EXPORT_BUDGET = RESPONSE_BUDGET  # of the JSON-encoded body, quotes included
_READ = 100  # contacts per query


def export_contacts(org_id: str, cursor: str | None, store: ContactStore | None = None,
                    budget: int = EXPORT_BUDGET) -> tuple[str, str | None]:
    """The org's contacts as CSV (oldest first), as many as fit ``budget`` once encoded.

    Returns the CSV text (header row only on the first part) and the cursor of the next
    part, or None when this was the last. ``encoded_size(text) <= budget`` unless a single
    contact alone is larger (it is still returned, so every export makes progress).
    Raises:
        ValidationFailed: on ``cursor`` (tampered or foreign).
    """
    db = store or ContactStore()
    signed = {"export": "csv"}
    start = decode_cursor(cursor, org_id, signed) if cursor else None
    parts = [write_rows([], header=cursor is None)]
    size = encoded_size(parts[0])
    taken: dict[str, str] | None = None  # key of the last contact in this part
    while True:
        entries, last = db.walk(Walk("created", org_id), start, _READ)
        for item in (ContactItem(**e) for e in entries):
            row = write_rows([contact_row(Contact.from_item(item))], header=False)
            cost = encoded_size(row) - 2  # JSON escaping is per character: sizes add up
            if taken is not None and size + cost > budget:
                return "".join(parts), encode_cursor(org_id, signed, taken)
            parts.append(row)
            size += cost
            taken = {"org_id": item.org_id, "contact_id": item.contact_id}
        if last is None:
            return "".join(parts), None
        start = last
