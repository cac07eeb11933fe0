"""CSV export of an org's contacts (``GET /v1/contacts/export``), in parts under Lambda's
response limit, each part pointing at the next with a cursor."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from .csv_format import contact_row, write_rows
from .cursor import decode_cursor, encode_cursor
from .models import Contact
from .store import ContactStore


class ExportQuery(BaseModel):
    """Query of ``GET /v1/contacts/export``: only the ``cursor`` of the next part."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cursor: str | None = Field(None, max_length=2048)


EXPORT_BYTES = 4 * 1024 * 1024  # per response: under Lambda's 6 MB with JSON escaping


def export_contacts(org_id: str, cursor: str | None, store: ContactStore | None = None
                    ) -> tuple[str, str | None]:
    """The org's contacts as CSV (oldest first), up to about 4 MB per call.

    Returns the CSV text (header row only on the first part) and the cursor of the next
    part, or None when this was the last.
    Raises:
        ValidationFailed: on ``cursor`` (tampered or foreign).
    """
    db = store or ContactStore()
    signed = {"export": "csv"}
    start = decode_cursor(cursor, org_id, signed) if cursor else None
    text = write_rows([], header=cursor is None)
    size = len(text.encode())
    while True:
        items, last = db.query(org_id, "created", ascending=True, limit=100, start_key=start)
        chunk = write_rows([contact_row(Contact.from_item(i)) for i in items], header=False)
        text += chunk
        size += len(chunk.encode())
        if last is None:
            return text, None
        start = last
        if size >= EXPORT_BYTES:
            return text, encode_cursor(org_id, signed, last)
